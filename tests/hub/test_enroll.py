"""Enrollment completes only with the hub that issued the code: a relay that
swaps in its own certificate or key makes it fail, learns nothing of the
code's secret, and leaves the kiosk unenrolled. Each kiosk gets an id of
its own."""

import json
import types

import httpx
import pytest
from click.testing import CliRunner

from kiosk import protocol as p
from kiosk.cli import enroll_command
from kiosk.crypto import generate_keypair, read_enrollment

from .conftest import enroll_kiosk, kiosk_config
from .proxy import InterceptingProxy

NOT_THE_HUB = "could not prove that it issued this code"


def run_enroll(cfg, url: str, code: str):
    return CliRunner().invoke(enroll_command, [url, code], obj=types.SimpleNamespace(config=cfg))


@pytest.mark.parametrize("swap_key", [False, True], ids=["own-cert", "own-cert-and-key"])
def test_a_relay_in_the_middle_makes_enrollment_fail_and_learns_no_secret(sqlite_hub, tmp_path, swap_key):
    _, attacker_public = generate_keypair()
    mitm = InterceptingProxy(sqlite_hub.url, tmp_path / "mitm", swap_key=attacker_public if swap_key else None)
    cfg = kiosk_config(tmp_path / "kiosk")
    code = sqlite_hub.enroll_code()
    try:
        result = run_enroll(cfg, mitm.url, code)
    finally:
        mitm.close()
    assert result.exit_code == 1
    assert NOT_THE_HUB in result.output and "Traceback" not in result.output
    assert not (cfg.data_path / "enrollment.json").exists()
    assert mitm.seen, "the relay saw the exchange"
    code_id, secret = p.split_code(code)
    relayed = b"".join(mitm.seen).decode()
    assert code_id in relayed
    assert secret not in relayed and secret.lower() not in relayed
    # Only the start went through: the kiosk never sent its confirmation.
    assert all("confirm" not in json.loads(body) for body in mitm.seen)
    with sqlite_hub.repo() as repo, repo.backend.transaction() as tx:
        assert tx.execute("select count(*) from kiosk_tokens").fetchone()[0] == 0
    assert "exchange started" in sqlite_hub.log.read_text()


def test_a_code_is_burned_after_a_few_failed_attempts(sqlite_hub, tmp_path):
    code = sqlite_hub.enroll_code()
    code_id, secret = p.split_code(code)
    wrong = code_id + ("A" if secret[0] != "A" else "B") + secret[1:]
    cfg = kiosk_config(tmp_path / "kiosk")
    for _ in range(3):
        result = run_enroll(cfg, sqlite_hub.url, wrong)
        assert result.exit_code == 1 and NOT_THE_HUB in result.output
    burned = run_enroll(cfg, sqlite_hub.url, code)
    assert burned.exit_code == 1
    assert "burned after 3 failed attempts" in burned.output
    assert not (cfg.data_path / "enrollment.json").exists()


def test_a_code_works_once_and_a_typo_in_its_form_is_explained(sqlite_hub, tmp_path):
    code = sqlite_hub.enroll_code()
    first = run_enroll(kiosk_config(tmp_path / "k1"), sqlite_hub.url, code.lower().replace("-", " "))
    assert first.exit_code == 0, first.output
    assert "token" not in json.loads(first.output)
    again = run_enroll(kiosk_config(tmp_path / "k2"), sqlite_hub.url, code)
    assert again.exit_code == 1 and "already used" in again.output
    typo = run_enroll(kiosk_config(tmp_path / "k3"), sqlite_hub.url, "K7QF-93XM")
    assert typo.exit_code == 1 and "looks like ABCD-EFGH-JKLM" in typo.output


def test_attempts_from_one_address_are_throttled(sqlite_hub):
    msg = p.b64(b"A" + b"\0" * 32)
    statuses = []
    with httpx.Client(base_url=sqlite_hub.url, verify=False, timeout=10) as client:
        for _ in range(12):
            resp = client.post(p.ENROLL_START_PATH, json={"code_id": "ZZZZ", "name": "x", "spake2": msg})
            statuses.append(resp.status_code)
    assert statuses[:10] == [403] * 10
    assert statuses[10:] == [429, 429]
    assert "too many enrollment attempts" in resp.json()["detail"]


def test_two_kiosks_on_the_default_config_get_ids_of_their_own(sqlite_hub, tmp_path):
    from kiosk.store import Store
    from kiosk.crypto import sealer_for
    from kiosk.sync import SyncWorker

    from .conftest import make_visit

    cfgs = [enroll_kiosk(sqlite_hub, tmp_path / f"kiosk{n}") for n in (1, 2)]
    ids = [read_enrollment(c.data_path)["kiosk_id"] for c in cfgs]
    assert ids[0] != ids[1]
    assert all(i.startswith("kiosk-1-") for i in ids)
    for n, cfg in enumerate(cfgs):
        store = Store.open(cfg.database_path, sealer_for(cfg))
        store.add("visit", make_visit(n))
        store.close()
        assert SyncWorker(cfg).drain().remaining == 0
    with sqlite_hub.repo() as repo:
        stored = {kiosk for _, kiosk, _ in repo.iter_visits()}
    assert stored == set(ids)

    assert sqlite_hub.cli("revoke", ids[0]).exit_code == 0
    results = []
    for n, cfg in enumerate(cfgs):
        store = Store.open(cfg.database_path, sealer_for(cfg))
        store.add("visit", make_visit(10 + n))
        store.close()
        results.append(SyncWorker(cfg).drain())
    assert "enroll again" in results[0].error and results[0].remaining == 1
    assert results[1].remaining == 0


def test_an_installer_enrolling_many_kiosks_from_one_address_is_not_throttled(sqlite_hub, tmp_path):
    ids = {read_enrollment(enroll_kiosk(sqlite_hub, tmp_path / f"k{n}").data_path)["kiosk_id"] for n in range(12)}
    assert len(ids) == 12
