"""``make run``: the whole system on one machine.

Starts a clinic hub on 127.0.0.1, pairs a kiosk with it, and opens the kiosk
in a window with mock GPIO (F12 stands in for the call button). Everything
lives under ``var/demo/`` in the checkout; delete that folder to start over.

    python -m kiosk.demo [--port 8443] [--fresh]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from .staff import DEMO_PIN, hash_pin

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "var" / "demo"
#: The demo's front-desk account on the staff page (demo data only).
DEMO_DESK = ("desk", "front-desk-2468")


def _hub(*args: str, data: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.hub.cli", *args, "--data", str(data)],
        text=True, capture_output=True, **kw,
    )


def _wait_for_hub(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    import ssl
    import urllib.request

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # only asking "are you up?" on loopback
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise click.ClickException(f"the demo hub stopped; see {DEMO / 'hub.log'}")
        try:
            urllib.request.urlopen(url + "/openapi.json", context=ctx, timeout=2)
            return
        except OSError:
            time.sleep(0.3)
    raise click.ClickException(f"the demo hub did not answer on {url}")


def _write_config(path: Path, kiosk_data: Path, url: str) -> None:
    path.write_text(
        "# Demo configuration written by `make run`; see deploy/kiosk.toml for every key.\n"
        "[clinic]\n"
        'name = "Demo Back Clinic"\n'
        "[kiosk]\n"
        f'data_dir = "{kiosk_data}"\n'
        f'staff_pin_hash = "{hash_pin(DEMO_PIN)}"\n'
        "fullscreen = false\n"
        'kiosk_id = "demo-kiosk"\n'
        "[hub]\n"
        f'url = "{url}"\n'
        "sync_interval_s = 3.0\n"
        "[gpio]\n"
        'demo_key = "f12"\n'
    )


@click.command()
@click.option("--port", default=8443, show_default=True, help="Port of the demo hub on 127.0.0.1.")
@click.option("--fresh", is_flag=True, help="Forget the previous demo's hub, kiosk and records.")
def main(port: int, fresh: bool) -> None:
    """Runs the demo: a hub on 127.0.0.1 and the kiosk in a window."""
    if fresh and DEMO.exists():
        shutil.rmtree(DEMO)
    hub_data, kiosk_data = DEMO / "hub", DEMO / "kiosk"
    DEMO.mkdir(parents=True, exist_ok=True)
    url = f"https://127.0.0.1:{port}"
    if not (hub_data / "hub.json").exists():
        out = _hub("init", data=hub_data, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise click.ClickException(out.stderr.strip() or "clinic-hub init failed")
        click.echo(out.stdout.strip())
        _hub("user", "add", DEMO_DESK[0], "--role", "staff", data=hub_data, input=DEMO_DESK[1] + "\n")
    hub_log = (DEMO / "hub.log").open("a")
    hub = subprocess.Popen(
        [sys.executable, "-m", "kiosk.hub.cli", "serve", "--data", str(hub_data),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=hub_log, stderr=hub_log, text=True,
    )
    try:
        _wait_for_hub(url, hub)
        config_path = DEMO / "kiosk.toml"
        _write_config(config_path, kiosk_data, url)
        from . import config as config_mod
        from .crypto import NotEnrolled, read_enrollment
        from .sync import enroll

        cfg = config_mod.load(config_path)
        try:
            read_enrollment(cfg.data_path)
        except NotEnrolled:
            code = _hub("enroll-code", data=hub_data).stdout.strip().split()[-1]
            enroll(cfg, url, code)
        click.echo("")
        click.echo(f"Clinic hub: {url}  (self-signed certificate; API documentation at {url}/docs)")
        click.echo("Kiosk: F12 is the call button (hold 3 s to acknowledge); staff PIN 2468 "
                   "(hold the top-left corner for 2 s).")
        click.echo(f"Staff page: {url}/  (log in as {DEMO_DESK[0]!r}, password {DEMO_DESK[1]!r})")
        click.echo("Staff export: .venv/bin/clinic-hub export --data var/demo/hub --format csv")
        env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
        subprocess.run([sys.executable, "-m", "kiosk.cli", "run", "--config", str(config_path), "--windowed"], env=env)
    finally:
        hub.terminate()
        try:
            hub.wait(timeout=10)
        except subprocess.TimeoutExpired:
            hub.kill()
        hub_log.close()


if __name__ == "__main__":
    main()
