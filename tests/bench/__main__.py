"""`make bench`: runs every ``tests/bench/bench_*.py`` module and prints its
figures, one per line, as ``name: value unit`` (ratios as ``name: 1.23x``).

Each module defines ``run() -> list[tuple[str, float, str]]``; a module that
fails prints ``name: error`` lines on stderr and the others still run.
"""

import importlib
import pkgutil
import sys
import traceback

import tests.bench as pkg


def main() -> int:
    failed = 0
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        try:
            module = importlib.import_module(f"tests.bench.{info.name}")
            for name, value, unit in module.run():
                if unit == "x":
                    print(f"{name}: {value:.2f}x", flush=True)
                else:
                    print(f"{name}: {value:.1f} {unit}", flush=True)
        except Exception:
            failed += 1
            print(f"{info.name}: error", file=sys.stderr)
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
