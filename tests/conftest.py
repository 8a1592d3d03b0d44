import json
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")

from kiosk.questionnaire import DEFAULT_PACK, load_pack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pack():
    return load_pack()


@pytest.fixture
def pack_copy(tmp_path):
    """A writable copy of the default pack, for breaking it on purpose."""
    dest = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, dest)
    return dest


def edit_json(path: Path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def negative_visit(**answers) -> dict:
    """A complete visit with every screening answer 'no', then ``answers``."""
    base = {"given-name": "Test", "dob": "1980-01-01", "pain-now": 4, "pain-duration": "over-12-weeks"}
    pk = load_pack()
    for item in pk.questions:
        if item.section == "safety":
            base[item.link_id] = False
    base.update(answers)
    return {"language": "en", "visit_date": "2026-11-21", "answers": base}


def enroll_offline(cfg) -> bytes:
    """Writes an enrollment for ``cfg`` as `clinic-kiosk enroll` would, with a
    fresh clinic key pair and no hub; returns the clinic's private key so a
    test can open what the kiosk sealed."""
    from kiosk.crypto import ENROLLMENT_FILE, encode_key, generate_keypair, write_secret_file

    private, public = generate_keypair()
    cfg.data_path.mkdir(parents=True, exist_ok=True)
    write_secret_file(cfg.data_path / ENROLLMENT_FILE, json.dumps({
        "hub_url": "https://127.0.0.1:9", "kiosk_id": cfg.kiosk.kiosk_id, "token": "test-token",
        "public_key": encode_key(public), "cert_sha256": "0" * 64}))
    return private


# -- spreading the suite over the xdist workers (`make test`) ----------------

#: The slowest files (each 45 s or more of a 2-core run), handed out first so
#: that the workers finish together instead of one waiting on a slow file
#: that started last; `make test` keeps this order (``--dist loadfile
#: --no-loadscope-reorder``: xdist hands out files in collection order, two
#: to each worker to begin with, then one more whenever a worker finishes one).
#: test_update.py comes fourth, after test_install.py on the other worker:
#: both use the run's one fresh kiosk install (tests/deploy/conftest.py), and
#: by then it is built, so no worker waits for it. Only the order changes; a
#: file not named here runs in its usual place.
SLOW_FIRST = [
    "tests/deploy/test_install.py", "tests/hub/test_faults.py", "tests/test_ui.py",
    "tests/deploy/test_update.py", "tests/test_questionnaires.py", "tests/hub/test_web.py",
]


def pytest_collection_modifyitems(items):
    """The slowest files first (see SLOW_FIRST)."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable
