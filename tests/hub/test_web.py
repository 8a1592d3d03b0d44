"""The staff web page through FastAPI's TestClient (no browser): logging in,
the live list and alerts, the intake page, exports, admin pages, and every
refusal of the issue's "Bad input" list, each of which leaves the data as
it was. Records reach the hub through the real sync API, sealed to the
clinic key, as a kiosk sends them.
"""

import base64
import datetime as dt
import functools
import html
import json
import logging
import re
import time
import uuid

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from kiosk.crypto import SealedBoxSealer, generate_keypair
from kiosk.hub import cli as hub_cli
from kiosk.hub import retention, sound
from kiosk.hub.app import create_app
from kiosk.hub.auth import hash_password
from kiosk.hub.db import KiosksRepository, open_database
from kiosk.hub.export.table import CELLS
from kiosk.hub.deps import StaffSettings
from kiosk.protocol import CODE_ID_CHARS

from kiosk.questionnaire import load_pack
from kiosk.visit import Visit

from .conftest import PATIENT_NAME

PASSWORD = "correct horse 1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def visit_payload(intake_id: str, tier: str = "emergency", name: str = PATIENT_NAME) -> dict:
    """The payload the kiosk builds (kiosk.visit) for a visit of ``tier``."""
    v = Visit(load_pack(), "en", kiosk_id="front-desk")
    v.intake_id = intake_id
    flag = {"emergency": {"rf-saddle": True}, "urgent": {"rf-cancer": True}}.get(tier, {})
    answers = {"given-name": name, "dob": "1961-04-02", "pain-now": 7, "pain-areas": ["lower-back", "left-leg"],
               "peg-pain": 7, "peg-enjoyment": 6, "peg-activity": 6, "rf-saddle": False, **flag}
    if tier != "emergency":
        for n, value in enumerate(["agree", "agree", "disagree", "agree", "agree", "agree", "agree", "agree",
                                   "very-much"], 1):
            answers[f"sbst-{n}"] = value
    for link_id, value in answers.items():
        v.answer(link_id, value)
    payload = v.payload("emergency" if tier == "emergency" else "complete")
    assert payload["result"]["tier"] == tier
    return payload


def enroll_in_repo(repo: KiosksRepository, name: str, code: str | None = None) -> tuple[str, str]:
    """(kiosk id, device token) of a kiosk enrolled with ``code`` (a new one
    by default), as the hub's side of the SPAKE2 exchange leaves it."""
    code = code or repo.new_enroll_code()
    code_id = code.replace("-", "")[:CODE_ID_CHARS]
    repo.start_enrollment(code_id, max_attempts=3)
    return repo.finish_enrollment(code_id, name)


@functools.cache
def password_hash() -> str:
    """The argon2 hash of PASSWORD, made once: hashing is made slow on
    purpose, and every test here starts with two accounts."""
    return hash_password(PASSWORD)


class Web:
    """The hub app with a kiosk enrolled through the sync API and a browser-
    like client per staff member."""

    def __init__(self, db_url: str, **settings):
        self.db = open_database(db_url, cells=CELLS)
        private, public = generate_keypair()
        self.sealer = SealedBoxSealer(public)
        self.app = create_app(self.db, private, "0" * 64, public, StaffSettings(**settings))
        self.db.accounts.add_user("ana", "staff", password_hash())
        self.db.accounts.add_user("boss", "admin", password_hash())
        api = self.client()
        # The SPAKE2 exchange itself is tested in test_enroll.py; here the
        # kiosk is enrolled by the repository, under a hub-assigned id.
        self.kiosk_id, self.token = enroll_in_repo(self.db.kiosks, "Front desk")
        self.api = api

    def client(self) -> TestClient:
        return TestClient(self.app, base_url="https://testserver", follow_redirects=False)

    def submit(self, kind: str, payload: dict, rid: str | None = None) -> str:
        rid = rid or str(uuid.uuid4())
        sealed = base64.b64encode(self.sealer.seal(json.dumps(payload).encode())).decode()
        r = self.api.post("/v1/records", json={"records": [{"id": rid, "kind": kind, "sealed": sealed}]},
                          headers={"Authorization": f"Bearer {self.token}"})
        assert r.status_code == 200, r.text
        return rid

    def emergency(self, with_visit: bool = True) -> tuple[str, str]:
        intake = str(uuid.uuid4())
        alert = str(uuid.uuid4())
        self.submit("alert", {"kind": "emergency", "kiosk_id": "front-desk", "intake_id": intake,
                              "created_at": now_iso(), "id": alert}, alert)
        if with_visit:
            self.submit("visit", visit_payload(intake), intake)
        return intake, alert

    def login(self, user: str = "ana", password: str = PASSWORD, client: TestClient | None = None):
        client = client or self.client()
        page = client.get("/login")
        token = CSRF.search(page.text).group(1)
        r = client.post("/login", data={"username": user, "password": password, "csrf": token})
        return client, r

    def staff(self, user: str = "ana", password: str = PASSWORD) -> tuple[TestClient, str]:
        client, r = self.login(user, password)
        assert r.status_code == 303, r.text
        page = client.get("/")
        assert page.status_code == 200
        return client, CSRF.search(page.text).group(1)

    def snapshot(self) -> dict:
        """Everything a refusal must leave as it was."""
        with self.db.backend.transaction() as tx:
            out = {}
            for table in ("records", "alert_acks", "intake_reviews", "users", "kiosk_tokens", "hub_settings"):
                out[table] = sorted(map(tuple, tx.execute(f"select * from {table}").fetchall()))
        return out

    def audit(self, action: str) -> list[dict]:
        return [e for e in self.db.accounts.audit_entries() if e["action"] == action]


@pytest.fixture
def web(db_url):
    """On SQLite and on PostgreSQL in turn (see conftest.db_url)."""
    w = Web(db_url)
    yield w
    w.db.close()


# -- logging in ---------------------------------------------------------------------


def test_login_form_has_the_contract_fields_and_unknown_pages_send_you_there(web):
    page = web.client().get("/login")
    assert page.status_code == 200
    assert 'name="username"' in page.text and 'name="password"' in page.text
    r = web.client().get("/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_login_sets_a_secure_httponly_strict_cookie_and_is_audited(web):
    client, r = web.login()
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"].lower()
    assert "hub_session=" in cookie and "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/").status_code == 200
    assert [(e["user"], e["target"]) for e in web.audit("login")] == [("ana", "ana")]


def test_wrong_password_and_unknown_account_get_the_same_answer(web):
    before = web.snapshot()
    _, wrong = web.login("ana", "not the password")
    _, unknown = web.login("nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.text and "Wrong user name or password." in unknown.text
    assert "hub_session" not in wrong.headers.get("set-cookie", "")
    assert web.snapshot() == before
    assert [e["target"] for e in web.audit("login.failed")] == ["ana", "nobody"]


def test_login_without_the_form_token_is_refused(web):
    client = web.client()
    client.get("/login")
    r = client.post("/login", data={"username": "ana", "password": PASSWORD})
    assert r.status_code == 403 and "hub_session" not in r.headers.get("set-cookie", "")


def test_lockout_per_account_does_not_reveal_whether_it_exists(web):
    for name in ("ana", "ghost"):
        answers = [web.login(name, f"guess-{i}")[1].status_code for i in range(6)]
        assert answers == [401] * 5 + [429]
    # Now even the right password is refused, with the same words for both.
    _, real = web.login("ana", PASSWORD)
    _, ghost = web.login("ghost", PASSWORD)
    assert real.status_code == ghost.status_code == 429
    assert re.sub(r'value="[^"]*"', "", real.text) == re.sub(r'value="[^"]*"', "", ghost.text)
    assert "hub_session" not in real.headers.get("set-cookie", "")


def test_lockout_per_address_spans_account_names(web):
    answers = [web.login(f"name-{i}", "guess")[1].status_code for i in range(21)]
    assert answers == [401] * 20 + [429]
    _, r = web.login("boss", PASSWORD)
    assert r.status_code == 429


def test_expired_session_is_refused_and_changes_nothing(web):
    _, alert = web.emergency()
    client, csrf = web.staff()
    with web.db.backend.transaction() as tx:
        tx.execute("update staff_sessions set last_seen = ?",
                   [(dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).isoformat()])
    before = web.snapshot()
    r = client.post(f"/alerts/{alert}/ack", data={"csrf": csrf})
    assert r.status_code == 401 and "Your session has ended" in r.text
    page = client.get("/")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert web.snapshot() == before


def test_second_tab_after_logout_is_refused(web):
    intake, alert = web.emergency()
    tab1, csrf = web.staff()
    tab2 = web.client()
    tab2.cookies.update(tab1.cookies)
    assert tab2.get("/").status_code == 200
    assert tab1.post("/logout", data={"csrf": csrf}).status_code == 303
    before = web.snapshot()
    assert tab2.get("/").status_code == 303
    assert tab2.get(f"/intakes/{intake}").status_code == 303
    r = tab2.post(f"/alerts/{alert}/ack", data={"csrf": csrf})
    assert r.status_code == 401
    assert tab2.get("/whoami").status_code == 401
    assert tab2.get("/events").status_code == 401
    assert web.snapshot() == before
    assert [e["user"] for e in web.audit("logout")] == ["ana"]


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_missing_or_wrong_csrf_is_refused_on_every_form(web, token):
    intake, alert = web.emergency()
    client, _ = web.staff("boss")
    data = {} if token is None else {"csrf": token}
    before = web.snapshot()
    for path, extra in [(f"/alerts/{alert}/ack", {}), (f"/intakes/{intake}/review", {}),
                        ("/exports/download", {"format": "csv"}), ("/logout", {}),
                        ("/admin/users", {"name": "eve", "role": "admin", "password": "x" * 12}),
                        ("/admin/users/ana/disable", {}), ("/admin/kiosks/enroll-code", {}),
                        (f"/admin/kiosks/{web.kiosk_id}/revoke", {}), ("/admin/retention", {"days": "1"})]:
        r = client.post(path, data={**data, **extra})
        assert r.status_code == 403, path
        assert "nothing was changed" in r.text, path
    assert web.snapshot() == before
    assert client.get("/").status_code == 200  # still logged in: logout was refused too
    assert web.audit("export") == []


def test_staff_account_gets_403_on_admin_pages_and_changes_nothing(web):
    client, csrf = web.staff("ana")
    before = web.snapshot()
    for path in ("/admin/users", "/admin/kiosks", "/admin/audit", "/admin/retention"):
        r = client.get(path)
        assert r.status_code == 403 and "This page is for admin accounts." in r.text, path
    for path, extra in [("/admin/users", {"name": "eve", "role": "admin", "password": "x" * 12}),
                        ("/admin/users/boss/disable", {}), ("/admin/kiosks/enroll-code", {}),
                        (f"/admin/kiosks/{web.kiosk_id}/revoke", {}), ("/admin/retention", {"days": "1"})]:
        assert client.post(path, data={"csrf": csrf, **extra}).status_code == 403, path
    assert web.snapshot() == before
    assert "/admin/" not in client.get("/").text  # no admin links for staff


def test_unknown_and_forged_intake_ids_get_the_same_404(web):
    web.emergency()
    client, csrf = web.staff()
    before = web.snapshot()
    bodies = set()
    for forged in (str(uuid.uuid4()), "not-an-id", "1%20or%201=1", "..%2F..%2Fetc%2Fpasswd", "%00"):
        for path in (f"/intakes/{forged}", f"/intakes/{forged}/print"):
            r = client.get(path)
            assert r.status_code == 404, path
            bodies.add(r.text)
        r = client.post(f"/intakes/{forged}/review", data={"csrf": csrf})
        assert r.status_code == 404
        bodies.add(r.text)
    assert len(bodies) == 1 and "no intake with this id" in bodies.pop()
    assert web.snapshot() == before
    assert web.audit("intake.view") == []


def test_forms_and_json_are_kept_apart(web):
    client, csrf = web.staff()
    r = client.post("/login", json={"username": "ana", "password": PASSWORD})
    assert r.status_code == 415
    r = web.api.post("/v1/records", data={"records": "x"}, headers={"Authorization": f"Bearer {web.token}"})
    assert r.status_code == 415
    r = client.post("/logout", data={"csrf": csrf, "pad": "x" * 70_000})
    assert r.status_code == 413


# -- the live list, alerts and the intake page ------------------------------------------


def test_emergency_shows_as_an_alert_banner_until_acknowledged(web):
    intake, alert = web.emergency()
    client, csrf = web.staff()
    page = client.get("/").text
    banner = re.search(r'<div role="alert"[^>]*data-alert="([^"]+)".*?</div>', page, re.S)
    assert banner and banner.group(1) == alert
    assert "Acknowledge" in banner.group(0) and "EMERGENCY" in banner.group(0) and "front-desk" in banner.group(0)
    assert f"/intakes/{intake}" in page
    r = client.post(f"/alerts/{alert}/ack", data={"csrf": csrf})
    assert r.status_code == 303
    assert web.db.records.acknowledged_among(web.kiosk_id, [alert]) == [alert]
    assert 'role="alert"' not in client.get("/").text
    assert [(e["user"], e["target"]) for e in web.audit("alert.ack")] == [("ana", alert)]
    # A second acknowledgement (another tab) is harmless and not audited twice.
    assert client.post(f"/alerts/{alert}/ack", data={"csrf": csrf}).status_code == 303
    assert len(web.audit("alert.ack")) == 1


def test_alert_shows_even_when_its_visit_never_arrived(web):
    intake, alert = web.emergency(with_visit=False)
    web.submit("staff-call", {"kind": "staff-call", "kiosk_id": "front-desk", "intake_id": None,
                              "created_at": now_iso(), "id": (call := str(uuid.uuid4()))}, call)
    client, _ = web.staff()
    page = client.get("/").text
    assert page.count('role="alert"') == 2
    assert page.index(alert) < page.index(call)  # emergencies first
    assert "Staff call" in page and "(answers not received)" in page
    intake_page = client.get(f"/intakes/{intake}")
    assert intake_page.status_code == 200 and "Only the alert reached the hub" in intake_page.text


def test_list_puts_emergencies_and_urgent_first_with_words_not_colour_alone(web):
    routine = str(uuid.uuid4())
    web.submit("visit", visit_payload(routine, "none", "Routine Person"), routine)
    urgent = str(uuid.uuid4())
    web.submit("visit", visit_payload(urgent, "urgent", "Urgent Person"), urgent)
    web.emergency()
    client, _ = web.staff()
    page = client.get("/").text
    rows = re.findall(r"<tr class=\"tier-(\w+)[^\"]*\">\s*<td class=\"flag\">([^<]+)", page)
    assert [t for t, _ in rows] == ["emergency", "urgent", "none"]
    assert [label.strip() for _, label in rows] == ["⚠ EMERGENCY", "! Urgent", "Routine"]
    assert "○ Not yet" in page and "front-desk" in page


def test_intake_page_summary_body_map_answers_review_and_print(web):
    intake, _ = web.emergency()
    client, csrf = web.staff()
    page = client.get(f"/intakes/{intake}").text
    assert intake in page and PATIENT_NAME in page
    summary = page.index("Clinician summary")
    assert summary < page.index("Where it hurts") < page.index("Every answer")
    assert "rf-saddle" in page and "possible cauda equina syndrome: saddle sensory change" in page
    # The scores under the pack's labels; STarT Back comes after the stop.
    assert re.search(r"<dt>PEG \(0-10\) †</dt>\s*<dd><b>6.3</b></dd>", page)
    assert re.search(r"<dt>STarT Back total \(0-9\) †</dt>\s*<dd>could not be computed</dd>", page)
    assert "paraphrase" in page
    marked = re.findall(r'class="region marked"[^>]*><title>([^<]+)</title>', page)
    assert marked == ["Lower back (marked)", "Left leg (marked)"]
    assert [(e["user"], e["target"]) for e in web.audit("intake.view")] == [("ana", intake)]
    r = client.post(f"/intakes/{intake}/review", data={"csrf": csrf})
    assert r.status_code == 303
    page = client.get(f"/intakes/{intake}").text
    assert "Reviewed by ana" in page and "Mark reviewed" not in page
    assert "✓ ana" in client.get("/").text
    printed = client.get(f"/intakes/{intake}/print").text
    assert "Reviewed by ana" in printed and 'action="/logout"' not in printed
    assert len(web.audit("intake.view")) == 3 and len(web.audit("intake.review")) == 1


def test_a_visit_from_an_older_kiosk_is_shown_by_linkid_and_value(web):
    old = str(uuid.uuid4())
    payload = visit_payload(old, "urgent")
    del payload["display"]  # as kiosks sent visits before the display block
    web.submit("visit", payload, old)
    client, _ = web.staff()
    page = client.get(f"/intakes/{old}").text
    assert "(no name given)" in page and "sent by an older kiosk" in page
    assert re.search(r"<th scope=\"row\"><span lang=\"en\">pain-areas</span> <small>pain-areas</small></th>\s*"
                     r"<td><span lang=\"en\">lower-back, left-leg</span>", page)
    assert re.search(r"<dt>startback †</dt>\s*<dd><b>8</b> · psychosocial <b>5</b> · risk <b>high</b></dd>", page)
    assert "(no name given)" in client.get("/").text


def test_pages_are_not_cached_and_cannot_be_framed(web):
    intake, _ = web.emergency()
    client, _ = web.staff()
    r = client.get(f"/intakes/{intake}")
    assert r.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for asset in ("/static/hub.js", "/static/hub.css", "/static/alert.wav"):
        assert client.get(asset).status_code == 200, asset


def test_alert_sound_is_the_generated_chime():
    assert sound.PATH.read_bytes() == sound.chime()


# -- exports ----------------------------------------------------------------------------


def test_csv_export_downloads_and_is_audited(web):
    intake, _ = web.emergency()
    client, csrf = web.staff()
    assert 'name="format"' in client.get("/exports").text
    r = client.post("/exports/download", data={"csrf": csrf, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    lines = r.text.splitlines()
    assert lines[0].startswith("intake_id,submitted_at,kiosk_id,language,tier,codes")
    assert lines[1].startswith(intake)
    assert [(e["user"], e["target"]) for e in web.audit("export")] == [("ana", "csv start..now")]
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    later = client.post("/exports/download", data={"csrf": csrf, "format": "csv", "since": tomorrow})
    assert later.text.splitlines()[1:] == []


def test_export_with_a_bad_date_or_format_is_refused(web):
    client, csrf = web.staff()
    r = client.post("/exports/download", data={"csrf": csrf, "format": "csv", "since": "yesterday"})
    assert r.status_code == 422 and "since: 'yesterday' is not a date" in html.unescape(r.text)
    r = client.post("/exports/download", data={"csrf": csrf, "format": "xls"})
    assert r.status_code == 422 and "format" in r.text
    assert web.audit("export") == []


# -- admin ------------------------------------------------------------------------------


def test_admin_adds_and_disables_accounts_and_disabling_ends_sessions(web):
    admin, csrf = web.staff("boss")
    r = admin.post("/admin/users", data={"csrf": csrf, "name": "carl", "role": "staff", "password": "long enough 1"})
    assert r.status_code == 303
    carl, _ = web.staff("carl", "long enough 1")
    r = admin.post("/admin/users", data={"csrf": csrf, "name": "carl", "role": "staff", "password": "long enough 1"})
    assert r.status_code == 422 and "name: an account 'carl' already exists" in html.unescape(r.text)
    r = admin.post("/admin/users", data={"csrf": csrf, "name": "dora", "role": "staff", "password": "short"})
    assert r.status_code == 422 and "password: at least 8 characters" in r.text
    assert admin.post("/admin/users/carl/disable", data={"csrf": csrf}).status_code == 303
    assert carl.get("/").status_code == 303
    _, again = web.login("carl", "long enough 1")
    assert again.status_code == 401
    assert admin.post("/admin/users/boss/disable", data={"csrf": csrf}).status_code == 409
    assert [e["target"] for e in web.audit("user.add")] == ["carl"]
    assert [e["target"] for e in web.audit("user.disable")] == ["carl"]


def test_kiosks_page_issues_a_code_with_a_qr_code_and_revokes(web):
    admin, csrf = web.staff("boss")
    page = admin.get("/admin/kiosks").text
    assert "front-desk" in page and "Revoke" in page
    r = admin.post("/admin/kiosks/enroll-code", data={"csrf": csrf})
    code = re.search(r'id="enroll-code">([A-Z0-9-]+)<', r.text).group(1)
    assert "<svg" in r.text and f"clinic-kiosk enroll https://testserver {code}" in r.text
    other_id, other_token = enroll_in_repo(web.db.kiosks, "Waiting room", code)
    assert other_id.startswith("waiting-room-")
    assert admin.post(f"/admin/kiosks/{web.kiosk_id}/revoke", data={"csrf": csrf}).status_code == 303
    assert web.db.kiosks.kiosk_for_token(web.token) is None
    assert web.db.kiosks.kiosk_for_token(other_token) == other_id  # revoking one kiosk leaves the other
    assert admin.post(f"/admin/kiosks/{web.kiosk_id}/revoke", data={"csrf": csrf}).status_code == 404
    assert [e["target"] for e in web.audit("kiosk.revoke")] == [web.kiosk_id]
    assert len(web.audit("kiosk.enroll-code")) == 1


def test_audit_page_lists_every_step_and_offers_no_way_to_change_it(web):
    intake, alert = web.emergency()
    admin, csrf = web.staff("boss")
    admin.get(f"/intakes/{intake}")
    admin.post(f"/alerts/{alert}/ack", data={"csrf": csrf})
    page = admin.get("/admin/audit").text
    for action in ("login", "intake.view", "alert.ack"):
        assert f"<td>{action}</td>" in page
    assert "<form method=\"post\"" not in page.split("<main>")[1]
    assert not hasattr(web.db.accounts, "delete_audit") and not hasattr(web.db.accounts, "update_audit")
    assert admin.get("/admin/audit?since=last-week").status_code == 422


def test_retention_setting_deletes_old_intakes_and_audits_it(web):
    old, old_alert = web.emergency()
    fresh, _ = web.emergency()
    with web.db.backend.transaction() as tx:
        tx.execute("update records set received_at = ? where intake_id = ? or id = ?",
                   [(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)).isoformat(), old, old_alert])
    admin, csrf = web.staff("boss")
    r = admin.post("/admin/retention", data={"csrf": csrf, "days": "abc"})
    assert r.status_code == 422 and retention.days(web.db) is None
    r = admin.post("/admin/retention", data={"csrf": csrf, "days": "30"})
    assert r.status_code == 200 and "1 intake(s)" in r.text
    assert admin.get(f"/intakes/{old}").status_code == 404
    assert admin.get(f"/intakes/{fresh}").status_code == 200
    assert web.db.records.count_records() == 2
    deleted = web.audit("retention.delete")
    assert len(deleted) == 1 and deleted[0]["target"] == "1 intake(s), 2 record(s)"


def test_retention_rule_keeps_an_intake_while_any_of_its_records_is_recent():
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.timezone.utc)
    old = (now - dt.timedelta(days=31)).isoformat()
    new = (now - dt.timedelta(days=1)).isoformat()
    rows = [("v1", "visit", old, "i1"), ("a1", "alert", old, "i1"),
            ("v2", "visit", old, "i2"), ("a2", "alert", new, "i2"),
            ("c1", "staff-call", old, None), ("c2", "staff-call", new, None)]
    found = retention.due(rows, now, dt.timedelta(days=30))
    assert found.record_ids == ["a1", "c1", "v1"] and found.intake_ids == ["i1"]
    assert retention.due(rows, now, dt.timedelta(days=60)).record_ids == []


# -- privacy ----------------------------------------------------------------------------


def test_no_patient_data_in_the_hubs_logs(web, caplog):
    caplog.set_level(logging.DEBUG)
    intake, alert = web.emergency()
    client, csrf = web.staff()
    client.get("/")
    client.get(f"/intakes/{intake}")
    client.get(f"/intakes/{intake}/print")
    client.post(f"/intakes/{intake}/review", data={"csrf": csrf})
    client.post(f"/alerts/{alert}/ack", data={"csrf": csrf})
    client.post("/exports/download", data={"csrf": csrf, "format": "csv"})
    web.login("ana", "wrong password")
    assert caplog.records, "the hub logged nothing: the capture is not working"
    assert PATIENT_NAME not in caplog.text and "1961-04-02" not in caplog.text
    assert PASSWORD not in caplog.text and "wrong password" not in caplog.text


# -- the command line -----------------------------------------------------------------------


def test_cli_user_list_disable_audit_and_retention(tmp_path):
    data = tmp_path / "hub"
    run = lambda *a, input=None: CliRunner().invoke(hub_cli.main, [*a, "--data", str(data)], input=input)  # noqa: E731
    assert run("init", input="admin-secret-1\n").exit_code == 0
    assert run("user", "add", "ana", "--role", "staff", input="ana-secret-1\n").exit_code == 0
    listed = run("user", "list")
    assert listed.exit_code == 0
    assert [line.split("\t")[:2] for line in listed.output.splitlines()] == [["admin", "admin"], ["ana", "staff"]]
    assert run("user", "disable", "ana").exit_code == 0
    assert "disabled" in run("user", "list").output.splitlines()[1]
    again = run("user", "disable", "ana")
    assert again.exit_code == 1 and "no enabled account 'ana'" in again.output
    assert run("retention", "--days", "90").output.strip() == "retention: 90 days"
    bad = run("retention", "--days", "0")
    assert bad.exit_code == 2
    lines = [json.loads(line) for line in run("audit").output.splitlines()]
    assert [e["action"] for e in lines] == ["user.add", "user.add", "user.disable", "retention.set"]
    assert all({"at", "user", "action", "target"} <= set(e) for e in lines)
    assert [e["target"] for e in lines[:2]] == ["admin", "ana"]
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert run("audit", "--since", tomorrow).output == ""
    assert run("audit", "--since", "soon").exit_code == 2


def test_the_hub_applies_the_retention_period_when_it_starts(web, caplog):
    caplog.set_level(logging.ERROR, logger="kiosk.hub.app")
    old, _ = web.emergency()
    with web.db.backend.transaction() as tx:
        tx.execute("update records set received_at = ?",
                   [(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)).isoformat()])
    retention.set_days(web.db, 7, "boss")
    assert web.db.records.count_records() == 2
    with web.client():  # runs the app's start-up, which starts the hourly job
        for _ in range(300):  # bounded: ~30 s (a loaded CI machine)
            # Done when the deletion is audited too: the job audits just after
            # deleting, so a count of 0 alone can be seen between the two.
            if web.db.records.count_records() == 0 and web.audit("retention.delete"):
                break
            time.sleep(0.1)
    assert web.db.records.count_records() == 0, caplog.text  # the job's own error, if it failed
    assert [e["user"] for e in web.audit("retention.delete")] == ["retention"]
