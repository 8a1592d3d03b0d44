"""The hub refuses what it cannot use with a clear 4xx and keeps its data as
it was; it stores what it can use exactly once."""

import base64
import json
import uuid

import httpx
import pytest

from kiosk.crypto import SealedBoxSealer, generate_keypair, read_enrollment, read_key_file
from kiosk.sync import pinned_ssl_context

from .conftest import PATIENT_NAME, make_visit


class Api:
    """A raw client of the sync API, as a kiosk (or an attacker) would use it."""

    def __init__(self, hub, kiosk_cfg):
        info = read_enrollment(kiosk_cfg.data_path)
        self.token = info["token"]
        self.hub = hub
        self.hub_kiosk_cfg = kiosk_cfg
        self.sealer = SealedBoxSealer(read_key_file(hub.data / "clinic.pub"))
        cert = (kiosk_cfg.data_path / "hub-cert.pem").read_text()
        self.client = httpx.Client(base_url=hub.url, verify=pinned_ssl_context(cert), timeout=10)

    def record(self, payload: dict, rid: str | None = None, kind: str = "visit") -> dict:
        sealed = self.sealer.seal(json.dumps(payload, sort_keys=True).encode())
        return {"id": rid or payload.get("intake_id") or str(uuid.uuid4()), "kind": kind,
                "sealed": base64.b64encode(sealed).decode()}

    def post(self, body=None, *, token: str | None = "default", **kw):
        headers = kw.pop("headers", {})
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            kw["json"] = body
        return self.client.post("/v1/records", headers=headers, **kw)


@pytest.fixture
def api(hub, kiosk):
    a = Api(hub, kiosk)
    yield a
    a.client.close()


def assert_refused(resp, status: int, *words: str):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body["detail"], str) and body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]
    assert PATIENT_NAME not in resp.text


def test_visits_are_stored_once_and_identical_resends_are_accepted_silently(api, hub):
    batch = {"records": [api.record(make_visit(i)) for i in range(3)]}
    first = api.post(batch)
    assert first.status_code == 200
    assert [r["status"] for r in first.json()["results"]] == ["stored"] * 3
    again = api.post(batch)
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 3
    # Re-sealed (different ciphertext), same content: still the same record.
    resealed = api.post({"records": [api.record(make_visit(0))]})
    assert resealed.json()["results"][0]["status"] == "duplicate"
    assert hub.visit_copies() == {make_visit(i)["intake_id"]: 1 for i in range(3)}


def test_bad_requests_are_refused_without_changing_the_hub(api, hub):
    assert api.post({"records": [api.record(make_visit(0))]}).status_code == 200
    before = hub.count()
    good = api.record(make_visit(1))
    _, stranger = generate_keypair()
    foreign = {**good, "sealed": base64.b64encode(SealedBoxSealer(stranger).seal(b"{}")).decode()}
    changed = make_visit(0)
    changed["answers"]["pain-now"] = 10

    assert_refused(api.post({"records": [good]}, token=None), 401, "token")
    assert_refused(api.post({"records": [good]}, token="not-a-token"), 401, "token")
    assert_refused(
        api.post(content=json.dumps({"records": [good]}), headers={"Content-Type": "text/plain"}),
        415, "application/json",
    )
    big = {"records": [good], "padding": "x" * (5 * 1024 * 1024)}
    assert_refused(api.post(big), 413, "limit")
    assert_refused(
        api.post(content=b'{"records": [', headers={"Content-Type": "application/json"}), 400, "JSON"
    )
    assert_refused(api.post({"records": [good, foreign]}), 422, "records[1]", "does not open")
    assert_refused(api.post({"records": [{**good, "id": "visit-1"}]}), 422, "records[0].id", "UUID")
    assert_refused(api.post({"records": [{**good, "sealed": "%%%"}]}), 422, "base64")
    assert_refused(api.post({"records": []}), 422, "records")
    conflict = api.post({"records": [good, api.record(changed)]})
    assert_refused(conflict, 409, "different content")
    assert conflict.json()["ids"] == [make_visit(0)["intake_id"]]

    assert hub.count() == before  # not even the good record of a refused batch


def test_revoked_kiosk_is_refused(api, hub):
    assert api.post({"records": [api.record(make_visit(0))]}).status_code == 200
    result = hub.cli("revoke", read_enrollment(api.hub_kiosk_cfg.data_path)["kiosk_id"])
    assert result.exit_code == 0, result.output
    assert_refused(api.post({"records": [api.record(make_visit(1))]}), 401, "revoked")
    assert hub.count() == 1


def test_kiosk_trusts_only_the_hub_certificate_it_pinned(sqlite_hub, tmp_path):
    from kiosk.crypto import sealer_for
    from kiosk.store import Store
    import types

    from click.testing import CliRunner

    from kiosk.cli import sync_command
    from kiosk.sync import SyncWorker, status_info

    from .conftest import Hub, enroll_kiosk

    impostor = Hub(tmp_path / "impostor", f"sqlite:///{tmp_path / 'impostor' / 'hub.db'}")
    impostor.start()
    try:
        cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
        store = Store.open(cfg.database_path, sealer_for(cfg))
        store.add("visit", make_visit(0))
        moved = cfg.replace("hub", url=impostor.url)
        result = SyncWorker(moved).drain()
        assert not result.reachable and result.certificate_changed
        assert impostor.count() == 0
        assert store.depth() == 1
        status = status_info(store, moved)
        assert status["hub_certificate_changed"] is True and status["hub_reachable"] is False
        once = CliRunner().invoke(sync_command, ["--once"], obj=types.SimpleNamespace(config=moved))
        assert once.exit_code == 1
        assert "different TLS certificate from the one pinned at enrollment" in once.output
        assert SyncWorker(cfg).drain().remaining == 0
        store.close()
    finally:
        impostor.kill()


def test_enrolling_with_a_wrong_code_says_so(sqlite_hub, tmp_path):
    import types

    from click.testing import CliRunner

    from kiosk.cli import enroll_command

    from .conftest import kiosk_config

    cfg = kiosk_config(tmp_path / "kiosk")
    result = CliRunner().invoke(enroll_command, [sqlite_hub.url, "AAAA-BBBB-CCCC"],
                                obj=types.SimpleNamespace(config=cfg))
    assert result.exit_code == 1
    assert "enrollment code is not valid" in result.output
    assert not (cfg.data_path / "enrollment.json").exists()
    nohub = CliRunner().invoke(enroll_command, ["https://127.0.0.1:9", "AAAA-BBBB-CCCC"],
                               obj=types.SimpleNamespace(config=cfg))
    assert nohub.exit_code == 1 and "cannot reach the hub" in nohub.output
