"""Fixtures for the hub and sync tests: a real hub process on 127.0.0.1 over
TLS, on SQLite or on a throwaway PostgreSQL cluster, and enrolled kiosks.

Nothing here mocks HTTP: kiosks talk to a `clinic-hub serve` subprocess, which
the fault tests kill and restart for real.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import uuid
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from kiosk.cli import enroll_command
from kiosk.config import Config
from kiosk.hub import cli as hub_cli
from kiosk.hub.db import open_database
from tests.tools import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
PATIENT_NAME = "Zebediah Quackenbush"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_visit(i: int, kiosk_id: str = "kiosk-1", name: str = PATIENT_NAME) -> dict:
    """A visit payload as the kiosk stores it, with a deterministic id."""
    intake = str(uuid.uuid5(uuid.NAMESPACE_URL, f"visit-{i}"))
    return {
        "intake_id": intake,
        "kiosk_id": kiosk_id,
        "submitted_at": f"2026-11-21T09:{(i // 60) % 60:02d}:{i % 60:02d}.000+00:00",
        "language": "en",
        "visit_date": "2026-11-21",
        "status": "complete",
        "content_version": "test-1",
        "answers": {"given-name": name, "dob": "1961-04-02", "pain-now": i % 11,
                    "rf-saddle": False, "pain-areas": ["lower-back", "left-leg"]},
        "result": {"tier": "routine", "codes": ["b-code", "a-code"],
                   "scores": {"pain-now": i % 11, "peg": 5.3,
                              "startback": {"total": 4, "psychosocial": 2, "risk": "medium"}}},
        "summary": [],
    }


# -- PostgreSQL ---------------------------------------------------------------


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PgCluster:
    """A private PostgreSQL cluster in a temp dir on 127.0.0.1:port."""

    def __init__(self):
        self.bin = Path(PG_BINS[-1]).parent
        # /tmp, not $TMPDIR: the postgres user must be able to reach the dir.
        self.root = Path(tempfile.mkdtemp(prefix="clinic-hub-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = free_port()
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_pg:
            shutil.chown(self.root, "postgres")

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_pg, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                 "--no-sync", "-E", "UTF8")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=200")
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts,
                 "-l", str(self.root / "log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self) -> str:
        import psycopg

        name = "hub_" + secrets.token_hex(6)
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"create database {name}")
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def require_postgres() -> None:
    """A PostgreSQL server this suite can start, or a failure naming what
    is missing (a skip only outside CI and ``make test``)."""
    if not PG_BINS:
        missing("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin/initdb): "
                "install them with `apt-get install postgresql` (tests/system-deps.sh does)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
        missing("running as root needs `runuser` and the `postgres` user to start PostgreSQL: "
                "`apt-get install postgresql` creates the user (tests/system-deps.sh does)")


@pytest.fixture(scope="session")
def pg_cluster():
    require_postgres()
    cluster = PgCluster()
    try:
        cluster.start()
    except subprocess.CalledProcessError as exc:
        cluster.stop()
        pytest.fail(f"could not start a test PostgreSQL cluster: {exc.stderr.decode(errors='replace')}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The hub database, on each back-end in turn."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hub-data' / 'hub.db'}"
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'hub-data' / 'hub.db'}"


# -- the hub ------------------------------------------------------------------


class Hub:
    """A `clinic-hub` on 127.0.0.1: initialised in a temp dir, served by a
    subprocess that tests may kill and start again on the same port."""

    def __init__(self, data: Path, db: str, serve_args: tuple[str, ...] = ()):
        self.data = data
        self.db = db
        self.serve_args = serve_args
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = data.parent / "hub.log"
        result = self.cli("init", input="")
        assert result.exit_code == 0, result.output

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def cli(self, *args: str, input: str | None = None):
        return CliRunner().invoke(
            hub_cli.main, [*args, "--data", str(self.data), "--db", self.db], input=input
        )

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk.hub.cli", "serve", "--data", str(self.data), "--db", self.db,
             "--host", "127.0.0.1", "--port", str(self.port), *self.serve_args],
            stdout=logf, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"hub exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/v1/health", verify=False, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.02)  # ~1 s to start, ~100 starts a run: poll finely
        raise AssertionError("hub did not come up in time")

    def kill(self) -> None:
        """SIGKILL, as a power cut or an OOM kill would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def enroll_code(self) -> str:
        result = self.cli("enroll-code")
        assert result.exit_code == 0, result.output
        return result.output.strip()

    @contextlib.contextmanager
    def repo(self):
        """The hub's records (``db.records``), read beside the running hub."""
        with open_database(self.db, migrate=False) as db:
            yield db.records

    def visit_copies(self) -> dict[str, int]:
        """intake_id -> how many visit rows the hub holds for it."""
        with self.repo() as repo, repo.backend.transaction() as tx:
            rows = tx.execute(
                "select intake_id, count(*) from records where kind = 'visit' group by intake_id"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def count(self) -> int:
        with self.repo() as repo:
            return repo.count_records()


@pytest.fixture
def hub(tmp_path, db_url):
    """A running hub on each back-end."""
    h = Hub(tmp_path / "hub-data", db_url)
    h.start()
    yield h
    h.kill()


@pytest.fixture
def sqlite_hub(tmp_path, sqlite_url):
    """A running hub on SQLite only (API checks that do not depend on the back-end)."""
    h = Hub(tmp_path / "hub-data", sqlite_url)
    h.start()
    yield h
    h.kill()


# -- kiosks -------------------------------------------------------------------


def kiosk_config(data: Path, kiosk_id: str = "kiosk-1", **hub) -> Config:
    cfg = Config().with_data_dir(data)
    cfg = cfg.replace("kiosk", kiosk_id=kiosk_id)
    settings = dict(batch_size=20, backoff_base_s=0.05, backoff_max_s=0.5,
                    sync_interval_s=0.2, request_timeout_s=5.0)
    settings.update(hub)
    return cfg.replace("hub", **settings)


def enroll_kiosk(hub: Hub, data: Path, url: str | None = None, kiosk_id: str = "kiosk-1", **hub_settings) -> Config:
    cfg = kiosk_config(data, kiosk_id, **hub_settings)
    result = CliRunner().invoke(
        enroll_command, [url or hub.url, hub.enroll_code()], obj=types.SimpleNamespace(config=cfg)
    )
    assert result.exit_code == 0, result.output
    return cfg


@pytest.fixture
def kiosk(hub, tmp_path):
    return enroll_kiosk(hub, tmp_path / "kiosk-data")


# -- the browser tests (Debian's Chromium, see tests/hub/browser.py) ------------------


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium under Playwright, one per test module (missing:
    a failure under CI and make test, a skip by hand; see tests.tools)."""
    from playwright import sync_api as playwright_api

    from .browser import NoChromium, chromium_path, launch

    try:
        chromium_path()
    except NoChromium as exc:
        missing(str(exc))
    with playwright_api.sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


@pytest.fixture
def desk(sqlite_hub, tmp_path):
    """The hub with a staff account (maria) and an admin (boss), and an enrolled kiosk."""
    from .browser import PASSWORD, KioskSide

    for name, role in (("maria", "staff"), ("boss", "admin")):
        r = sqlite_hub.cli("user", "add", name, "--role", role, input=PASSWORD + "\n")
        assert r.exit_code == 0, r.output
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk-data", kiosk_id="front-desk", sync_interval_s=30.0)
    kiosk = KioskSide(cfg)
    yield sqlite_hub, kiosk
    kiosk.close()
