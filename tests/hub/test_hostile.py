"""A hostile client on loopback: slow and idle connections are closed within
seconds while normal requests go on; a request without a valid token is
answered before its body is read; sealed bodies that are deeply nested,
hold invalid text or carry non-timestamps get a 422, never a 500; database
passwords never appear in messages."""

import base64
import json
import socket
import ssl
import time
import uuid

import httpx
import pytest
from click.testing import CliRunner

from kiosk.crypto import read_enrollment
from kiosk.hub import cli as hub_cli

from .conftest import Hub, enroll_kiosk, make_visit
from .test_api import Api, assert_refused

DEADLINE_S = 2.0


@pytest.fixture
def strict_hub(tmp_path, sqlite_url):
    """A hub on SQLite that gives a client two seconds to send a request."""
    h = Hub(tmp_path / "hub-data", sqlite_url, serve_args=("--request-timeout", str(DEADLINE_S)))
    h.start()
    yield h
    h.kill()


@pytest.fixture
def strict_api(strict_hub, tmp_path):
    cfg = enroll_kiosk(strict_hub, tmp_path / "kiosk")
    a = Api(strict_hub, cfg)
    yield a
    a.client.close()


def tls_connect(hub) -> ssl.SSLSocket:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
    return ctx.wrap_socket(raw)


def closed_by_hub(sock: ssl.SSLSocket, trickle: list[bytes], every_s: float = 0.25, bound_s: float = 30.0) -> bool:
    """Sends ``trickle`` one piece per ``every_s`` (then nothing) and reports
    whether the hub closed the connection before ``bound_s`` ran out."""
    sock.settimeout(every_s)
    pieces = iter(trickle)
    end = time.monotonic() + bound_s
    while time.monotonic() < end:  # bounded polling
        piece = next(pieces, None)
        try:
            if piece:
                sock.sendall(piece)
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except (ssl.SSLError, OSError):
            return True
    return False


def read_answer(sock: ssl.SSLSocket, timeout_s: float) -> bytes:
    """Reads one whole HTTP answer (head and Content-Length body)."""
    sock.settimeout(timeout_s)
    data = b""
    for _ in range(100):  # bounded
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
                      if line.startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def assert_still_serving(hub):
    resp = httpx.get(hub.url + "/v1/health", verify=False, timeout=5)
    assert resp.status_code == 200


def test_idle_connection_after_tls_is_closed(strict_hub):
    sock = tls_connect(strict_hub)
    assert_still_serving(strict_hub)
    assert closed_by_hub(sock, [])
    sock.close()


def test_headers_sent_a_trickle_at_a_time_are_cut_off(strict_hub):
    sock = tls_connect(strict_hub)
    head = b"GET /v1/health HTTP/1.1\r\nHost: hub\r\n" + b"".join(b"X-Slow-%d: y\r\n" % i for i in range(200))
    assert_still_serving(strict_hub)
    assert closed_by_hub(sock, [head[i : i + 3] for i in range(0, len(head), 3)])
    sock.close()
    assert_still_serving(strict_hub)


def test_a_body_sent_a_trickle_at_a_time_is_cut_off(strict_hub, strict_api):
    sock = tls_connect(strict_hub)
    body = json.dumps({"records": [strict_api.record(make_visit(0))]}).encode()
    head = (f"POST /v1/records HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {strict_api.token}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    assert closed_by_hub(sock, [head] + [body[i : i + 2] for i in range(0, len(body), 2)])
    sock.close()
    assert strict_hub.count() == 0
    assert strict_api.post({"records": [strict_api.record(make_visit(1))]}).status_code == 200


def test_a_request_without_a_valid_token_is_answered_before_its_body(strict_hub, strict_api):
    for path, auth in (("/v1/records", "Bearer not-a-token"), ("/v1/heartbeat", None)):
        sock = tls_connect(strict_hub)
        head = f"POST {path} HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n"
        if auth:
            head += f"Authorization: {auth}\r\n"
        sock.sendall((head + "\r\n").encode())
        # The answer comes before the deadline would close the connection.
        answer = read_answer(sock, DEADLINE_S / 2)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 401"), answer[:60]
        assert b"token" in answer


@pytest.fixture
def api(sqlite_hub, tmp_path):
    a = Api(sqlite_hub, enroll_kiosk(sqlite_hub, tmp_path / "kiosk"))
    yield a
    a.client.close()


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory):
    """One hub on SQLite and its kiosk for the bad bodies below, each of
    which changes nothing on it (starting a hub per case cost more than
    the case)."""
    base = tmp_path_factory.mktemp("shared-hub")
    hub = Hub(base / "hub-data", f"sqlite:///{base / 'hub-data' / 'hub.db'}")
    hub.start()
    a = Api(hub, enroll_kiosk(hub, base / "kiosk"))
    yield a
    a.client.close()
    hub.kill()


def sealed_record(api, text: str, kind: str = "visit") -> dict:
    sealed = api.sealer.seal(text.encode("utf-8", "surrogatepass"))
    return {"id": str(uuid.uuid4()), "kind": kind, "sealed": base64.b64encode(sealed).decode()}


def visit_text(ensure_ascii: bool = True, **fields) -> str:
    base = {"intake_id": str(uuid.uuid4()), "submitted_at": "2026-11-21T09:00:00.000+00:00",
            "language": "en", "answers": {}}
    base.update(fields)
    return json.dumps(base, ensure_ascii=ensure_ascii)


@pytest.mark.parametrize("text, words", [
    ('{"intake_id": "%s", "submitted_at": "2026-11-21T09:00:00+00:00", "answers": {"x": %s}}'
     % (uuid.uuid4(), "[" * 5000 + "]" * 5000), "nested"),
    ('{"intake_id": "%s", "submitted_at": "2026-11-21T09:00:00+00:00", "answers": {"x": %s}}'
     % (uuid.uuid4(), "[" * 40 + "]" * 40), "nested deeper"),
    (visit_text(intake_id="LONE").replace("LONE", "\\ud800abc"), "not valid Unicode"),
    (visit_text(answers={"given-name": "LONE"}).replace("LONE", "\\udfff"), "not valid Unicode"),
    (visit_text(answers={"given-name": "\udfff"}, ensure_ascii=False), "not valid Unicode"),  # raw bytes
    (visit_text(submitted_at="yesterday"), "submitted_at"),
    (visit_text(submitted_at="2026-11-21T09:00:00"), "submitted_at"),  # no time zone
    (visit_text(intake_id="../../etc/passwd"), "intake_id"),
    ('"just a string"', "JSON object"),
    ('{"kind": "emergency", "created_at": 12}', "created_at"),
])
def test_bad_sealed_bodies_get_422_and_change_nothing(shared_api, text, words):
    api = shared_api
    before = api.hub.count()
    kind = "alert" if '"kind"' in text else "visit"
    resp = api.post({"records": [sealed_record(api, text, kind)]})
    assert_refused(resp, 422, words)
    assert api.hub.count() == before
    assert api.post({"records": [api.record(make_visit(0))]}).status_code == 200


def test_one_intake_is_stored_once_even_under_another_record_id(hub, kiosk):
    api = Api(hub, kiosk)
    visit = make_visit(0)
    assert api.post({"records": [api.record(visit)]}).status_code == 200
    again = api.post({"records": [api.record(visit, rid=str(uuid.uuid4()))]})
    assert_refused(again, 409, "intake id")
    twice = api.post({"records": [api.record(make_visit(1)), api.record(make_visit(1), rid=str(uuid.uuid4()))]})
    assert_refused(twice, 409, "intake id")
    assert hub.visit_copies() == {visit["intake_id"]: 1}
    api.client.close()


def test_heartbeat_is_validated_and_answers_for_this_kiosk_only(api, sqlite_hub):
    headers = {"Authorization": f"Bearer {api.token}"}
    ok = api.client.post("/v1/heartbeat", json={"queue_depth": 3, "open_alerts": [str(uuid.uuid4())]},
                         headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["acknowledged"] == []
    assert ok.json()["kiosk_id"] == read_enrollment(api.hub_kiosk_cfg.data_path)["kiosk_id"]
    assert_refused(api.client.post("/v1/heartbeat", json={"queue_depth": -1}, headers=headers), 422, "queue_depth")
    assert_refused(api.client.post("/v1/heartbeat", json={"queue_depth": 1, "open_alerts": ["x"]},
                                   headers=headers), 422, "open_alerts")


def test_database_passwords_never_appear_in_messages(tmp_path):
    hub = Hub(tmp_path / "hub-data", f"sqlite:///{tmp_path / 'hub-data' / 'hub.db'}")
    secret = "Sekr1tQuux"
    for url in (f"postgresql://hub:{secret}@127.0.0.1:9/clinic?sslmode=disable&password={secret}",
                f"mysql://hub@127.0.0.1/clinic?password={secret}"):
        result = CliRunner().invoke(hub_cli.main, ["enroll-code", "--data", str(hub.data), "--db", url])
        assert result.exit_code == 1
        assert secret not in result.output
        assert "***" in result.output and "Traceback" not in result.output


def test_one_address_cannot_take_every_connection(tmp_path, sqlite_url):
    from kiosk.hub.serving import MAX_PER_CLIENT

    hub = Hub(tmp_path / "hub-data", sqlite_url, serve_args=("--request-timeout", "60"))
    hub.start()
    socks = []
    try:
        socks = [tls_connect(hub) for _ in range(MAX_PER_CLIENT)]
        # One more from the same address is closed at once, long before the deadline would.
        extra = socket.create_connection(("127.0.0.1", hub.port), timeout=5)
        extra.settimeout(30)
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            wrapped = ctx.wrap_socket(extra)
            closed = wrapped.recv(1) == b""
        except (ssl.SSLError, OSError):
            closed = True
        assert closed
        # The connections it already holds are served as usual.
        socks[0].sendall(b"GET /v1/health HTTP/1.1\r\nHost: hub\r\n\r\n")
        assert read_answer(socks[0], 10).startswith(b"HTTP/1.1 200")
    finally:
        for s in socks:
            s.close()
        hub.kill()


def tls_connect_from(hub, source: str, timeout: float = 5) -> ssl.SSLSocket | None:
    """A TLS connection to the hub from the loopback address ``source``
    (Linux routes all of 127.0.0.0/8 to lo), or None if the hub refused it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", hub.port), timeout=timeout, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw)
    except (ssl.SSLError, OSError):
        raw.close()
        return None


def probe(hub) -> list[int]:
    """What a staff browser and a kiosk get from 127.0.0.1 right now: the
    login page and the health check, each on a new connection."""
    statuses = []
    for path in ("/login", "/v1/health"):
        try:
            statuses.append(httpx.get(hub.url + path, verify=False, timeout=5).status_code)
        except httpx.HTTPError:
            statuses.append(0)
    return statuses


@pytest.mark.parametrize("attackers", [1, 4])
def test_a_flood_of_idle_tls_connections_from_other_machines_does_not_lock_staff_out(tmp_path, sqlite_url, attackers):
    """Each attacking address opens 200 connections that finish TLS and then
    send nothing, twice over; staff and kiosks on another address are served
    throughout. The hub's deadline is long (60 s), so only freeing refused
    connections at once can keep the slots free."""
    hub = Hub(tmp_path / "hub-data", sqlite_url, serve_args=("--request-timeout", "60"))
    hub.start()
    held: list[ssl.SSLSocket] = []
    seen: list[list[int]] = []
    try:
        for _wave in range(2):  # the attacker comes back: bounded, two waves
            for n in range(attackers):
                source = f"127.0.0.{2 + n}"
                for _ in range(200):
                    sock = tls_connect_from(hub, source)
                    if sock is not None:
                        held.append(sock)  # never read, never closed: no close_notify back
            for _ in range(3):
                seen.append(probe(hub))
                time.sleep(0.2)
        assert all(s == [200, 200] for s in seen), f"staff/kiosk answers during the flood: {seen}"
    finally:
        for s in held:
            try:
                s.close()
            except OSError:
                pass
        hub.kill()
