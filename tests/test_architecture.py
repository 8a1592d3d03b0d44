"""The architecture contracts of pyproject.toml ([tool.importlinter]): the
core never imports Kivy, the kiosk side never imports the hub's server, the
hub never imports the kiosk's hardware. Run with import-linter's own CLI."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
