"""The systemd notify protocol (Type=notify with a watchdog) against a
stand-in notify socket: the real app says READY once its first screen is
drawn, pings from its UI loop, and stops pinging when that loop stalls. A
broken config or an unwritable data folder shows the out-of-order screen and
keeps the watchdog fed instead of crash-looping."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.notify import Notifier
from kiosk.staff import hash_pin

from .conftest import enroll_offline


class NotifySocket:
    """What systemd listens on: a datagram socket in a temporary folder."""

    def __init__(self, folder):
        self.path = str(folder / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received: list[str] = []

    def env(self, watchdog_usec: int) -> dict:
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(watchdog_usec)}

    def receive(self, timeout: float) -> str | None:
        """The next datagram, or None when none comes within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            line = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.received.append(line)
        return line

    def drain(self) -> list[str]:
        out = []
        while (line := self.receive(0.001)) is not None:
            out.append(line)
        return out

    def close(self):
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path):
    s = NotifySocket(tmp_path)
    yield s
    s.close()


def test_notifier_sends_to_the_socket_and_reads_the_watchdog_interval(notify_socket):
    n = Notifier(env=notify_socket.env(3_000_000))
    assert n.watchdog_interval_s() == 1.5
    assert n.ready() and n.watchdog() and n.status("out of order")
    assert [notify_socket.receive(1) for _ in range(3)] == ["READY=1", "WATCHDOG=1", "STATUS=out of order"]
    n.close()
    # the watchdog of another process of the unit is not ours to feed
    assert Notifier(env={**notify_socket.env(3_000_000), "WATCHDOG_PID": "1"}).watchdog_interval_s() is None


def test_notifier_never_raises_when_systemd_is_gone(tmp_path, caplog):
    n = Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "1000000"})
    assert n.watchdog() is False and n.watchdog() is False
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_abstract_socket_names_start_with_a_nul_byte():
    name = f"kiosk-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    try:
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        server.settimeout(1)
        assert server.recv(100) == b"READY=1"
    finally:
        server.close()


def test_app_is_ready_after_the_first_frame_pings_from_the_ui_loop_and_stops_when_it_stalls(tmp_path, notify_socket):
    from kiosk.config import Config
    from kiosk.runtime import Runtime
    from screens.replay import Harness

    cfg = Config().with_data_dir(tmp_path / "data")
    enroll_offline(cfg)
    runtime = Runtime.create(cfg)
    interval = 0.05
    h = Harness(runtime)
    h.app.notifier = Notifier(env=notify_socket.env(int(interval * 2 * 1_000_000)))
    try:
        assert notify_socket.drain() == []  # nothing before the app runs
        h.start()

        def frames_until(predicate, seconds=20.0):
            deadline = time.monotonic() + seconds
            while not predicate() and time.monotonic() < deadline:
                h.frames(1)
                notify_socket.drain()
            return predicate()

        assert frames_until(lambda: "READY=1" in notify_socket.received)
        assert h.app.sm.current == "welcome"
        first = notify_socket.received.index("READY=1")
        assert all(line == "WATCHDOG=1" for line in notify_socket.received[:first])
        assert frames_until(lambda: notify_socket.received[first:].count("WATCHDOG=1") >= 3)
        # The UI loop stalls (no frame is stepped) while the app's threads
        # (writer, GPIO) go on: no ping for many intervals.
        notify_socket.drain()
        assert notify_socket.receive(timeout=interval * 8) is None
        # The loop runs again: so do the pings.
        before = len(notify_socket.received)
        assert frames_until(lambda: "WATCHDOG=1" in notify_socket.received[before:])
    finally:
        h.stop()
        runtime.close()
    assert notify_socket.drain()[-1:] == ["STOPPING=1"]


def _run_kiosk(tmp_path, notify_socket, *args):
    env = dict(os.environ, **notify_socket.env(400_000), KIVY_NO_ARGS="1", GPIOZERO_PIN_FACTORY="mock")
    return subprocess.Popen([sys.executable, "-m", "kiosk.cli", "run", "--windowed", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("problem", ["config", "pin", "unenrolled", "pack", "data", "screening"])
def test_a_broken_config_pack_or_data_folder_shows_out_of_order_and_keeps_the_watchdog_fed(
        tmp_path, notify_socket, pack_copy, problem):
    if problem == "pack":
        (pack_copy / "rules.json").write_text("{")
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[kiosk]\ncontent_pack = "{pack_copy}"\nstaff_pin_hash = "{hash_pin("8642")}"\n')
        args = ["--config", config, "--data", tmp_path / "data"]
        expected = f"{pack_copy / 'rules.json'}:1: broken JSON"
    elif problem == "screening":  # a questionnaire of its own, without the red-flag screening
        bluebook = Path(__file__).parent / "data" / "questionnaires" / "hl7-questionnaire-example-bluebook.json"
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[kiosk]\ncontent_pack = "{bluebook}"\nstaff_pin_hash = "{hash_pin("8642")}"\n')
        args = ["--config", config, "--data", tmp_path / "data"]
        expected = f"{config}:kiosk.content_pack: {bluebook} has no red-flag screening"
    elif problem == "config":
        config = tmp_path / "kiosk.toml"
        config.write_text("[display]\nrotation = 45\n")
        args = ["--config", config, "--data", tmp_path / "data"]
        expected = f"{config}:display.rotation: 45 is not a rotation (0, 90, 180 or 270)"
    elif problem == "unenrolled":
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[kiosk]\nstaff_pin_hash = "{hash_pin("8642")}"\n')
        args = ["--config", config, "--data", tmp_path / "data"]
        expected = f"{config}: this kiosk is not enrolled with a clinic hub"
    elif problem == "pin":
        config = tmp_path / "kiosk.toml"
        config.write_text('[clinic]\nname = "Riverside"\n')
        args = ["--config", config, "--data", tmp_path / "data"]
        expected = f"{config}:kiosk.staff_pin_hash: no staff PIN set"
    else:
        blocker = tmp_path / "not-a-folder"
        blocker.write_text("")
        config = tmp_path / "kiosk.toml"
        config.write_text(f'[kiosk]\nstaff_pin_hash = "{hash_pin("8642")}"\n')
        args = ["--config", config, "--data", blocker / "data"]
        expected = f"{config}:kiosk.data_dir: cannot write to {blocker / 'data'} (Not a directory)"
    proc = _run_kiosk(tmp_path, notify_socket, *args)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            notify_socket.receive(0.2)
            if notify_socket.received.count("WATCHDOG=1") >= 3 and "READY=1" in notify_socket.received:
                break
        assert proc.poll() is None, proc.communicate()[1][-2000:]  # still running: no crash loop
        lines = notify_socket.received
        assert "READY=1" in lines and lines.count("WATCHDOG=1") >= 3
        assert any(line.startswith("STATUS=out of order: " + expected) for line in lines)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr
    assert not (tmp_path / "data" / "kiosk.db").exists()  # nothing opened, nothing lost
    logged = [line for line in stderr.splitlines() if "out of order" in line]
    assert len(logged) == 1 and logged[0].split("out of order: ", 1)[1].startswith(expected)


def test_out_of_order_screen_is_calm_and_shows_no_detail(tmp_path):
    from screens.outoforder import OutOfOrderApp
    from screens.replay import Harness

    problem = f"{tmp_path}/kiosk.toml:display.rotation: 45 is not a rotation (0, 90, 180 or 270)"
    app = OutOfOrderApp([problem], languages=["en", "es"])
    app.notifier = Notifier(env={})
    h = Harness(None, app=app).start()
    try:
        text = app.root.ids.message.text
        assert "out of order" in text and "Staff have been told" in text
        assert "fuera de servicio" in text  # every language the clinic offers
        assert "rotation" not in text and "kiosk.toml" not in text
        h.screenshot(tmp_path, "out-of-order")
        assert h.window.dispatch("on_request_close") is True  # not closable by a patient
    finally:
        h.stop()
