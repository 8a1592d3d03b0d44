"""Publishing content from the hub: an admin uploads a pack on the admin
page, publishes it, and an enrolled kiosk takes it on its next heartbeat,
only after checking the hub's signature, and only between visits.

A real `clinic-hub serve` on 127.0.0.1, the admin's browser as an httpx
client (login, CSRF), and the kiosk's own sync worker and intake session.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest

from kiosk.content import ContentStore
from kiosk.questionnaire import DEFAULT_PACK
from kiosk.runtime import Runtime
from kiosk.session import IntakeSession
from kiosk.sync import SyncWorker, status_info

from .conftest import enroll_kiosk

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ADMIN_PASSWORD = "correct-horse-battery"
NEW_TEXT = "NEW WORDING: any numbness between your legs since the pain began?"


def pack_zip(tmp_path: Path, version: str = "2.0.0-test", edit=None, top: str = "mypack") -> bytes:
    """The default pack with another version and one question reworded, zipped under a top folder."""
    folder = tmp_path / top
    shutil.copytree(DEFAULT_PACK, folder)
    manifest = json.loads((folder / "pack.json").read_text())
    manifest["version"] = version
    (folder / "pack.json").write_text(json.dumps(manifest))
    q = (folder / "questionnaire.json").read_text()
    assert "have you had numbness, tingling" in q
    q = re.sub(r'"text": "Since this pain began, have you had numbness[^"]*"', f'"text": "{NEW_TEXT}"', q, count=1)
    (folder / "questionnaire.json").write_text(q)
    if edit:
        edit(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            zf.write(path, f"{top}/{path.relative_to(folder)}")
    return buf.getvalue()


class Admin:
    def __init__(self, hub):
        result = hub.cli("user", "add", "boss", "--role", "admin", input=ADMIN_PASSWORD + "\n")
        assert result.exit_code == 0, result.output
        self.client = httpx.Client(base_url=hub.url, verify=False, follow_redirects=False, timeout=30)
        page = self.client.get("/login")
        r = self.client.post("/login", data={"username": "boss", "password": ADMIN_PASSWORD,
                                             "csrf": CSRF.search(page.text).group(1)})
        assert r.status_code == 303, r.text

    def csrf(self) -> str:
        return CSRF.search(self.client.get("/admin/content").text).group(1)

    def upload(self, name: str, data: bytes) -> httpx.Response:
        return self.client.post("/admin/content", data={"csrf": self.csrf()},
                                files={"file": (name, data, "application/octet-stream")})

    def publish(self, version: str) -> None:
        page = self.client.get("/admin/content").text
        row = next(r for r in page.split("<tr>") if version in r)
        vid = re.search(r'/admin/content/([0-9a-f]+)/publish', row).group(1)
        r = self.client.post(f"/admin/content/{vid}/publish", data={"csrf": self.csrf()})
        assert r.status_code == 303, r.text

    def close(self):
        self.client.close()


@pytest.fixture
def admin(sqlite_hub):
    a = Admin(sqlite_hub)
    yield a
    a.close()


def submit_visit(session: IntakeSession) -> str:
    """Answers the reworded question (no) and sends the visit; returns its intake id."""
    session.start_questions()
    session.visit.answer("rf-saddle", False)
    saved = []
    assert session.submit(on_saved=lambda: saved.append(1), on_failed=lambda: pytest.fail("save failed"))
    session.writer.submit(lambda: None).result(10)  # the write queued before this one is done
    assert saved
    return session.last_submitted["intake_id"]


def test_published_pack_reaches_a_running_kiosk_between_visits(sqlite_hub, admin, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    assert ContentStore(cfg.data_path).verify_key() is not None  # came with enrollment
    runtime = Runtime.create(cfg)
    session = IntakeSession(runtime, deliver=lambda fn: fn())
    worker = SyncWorker(cfg, content_version=runtime.pack.content_version, on_content=session.offer_pack)
    old_version = runtime.pack.content_version
    try:
        r = admin.upload("mypack.zip", pack_zip(tmp_path))
        assert r.status_code == 200, r.text
        assert "Checked and kept as default@2.0.0-test" in r.text
        assert "red-flag screening" not in r.text  # the default pack has it
        admin.publish("default@2.0.0-test")

        session.begin()  # a patient is already answering when the new version arrives
        assert worker.drain().reachable
        assert session.offered_pack is not None
        assert session.take_offered_pack("question") is None
        first = submit_visit(session)
        assert session.take_offered_pack("thanks") is None
        session.discard()
        assert session.take_offered_pack("welcome").content_version == "default@2.0.0-test"
        worker.set_content_version(runtime.pack.content_version)

        session.begin()
        assert session.visit.pack.item("rf-saddle").label("en") == NEW_TEXT
        second = submit_visit(session)
        assert worker.drain().reachable
        assert status_info(worker.store, cfg)["content_error"] is None

        shown_first = admin.client.get(f"/intakes/{first}").text
        shown_second = admin.client.get(f"/intakes/{second}").text
        assert f"content {old_version}" in shown_first and NEW_TEXT not in shown_first
        assert "content default@2.0.0-test" in shown_second and NEW_TEXT in shown_second
        kiosks = admin.client.get("/admin/kiosks").text
        assert "default@2.0.0-test" in kiosks
        # The next start asks the published version too.
        assert Runtime.create(cfg).pack.content_version == "default@2.0.0-test"
    finally:
        worker.close()
        session.close()
        runtime.close()


def test_tampered_bundle_is_refused_and_the_kiosk_keeps_the_old_pack(sqlite_hub, admin, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    runtime = Runtime.create(cfg)
    session = IntakeSession(runtime, deliver=lambda fn: fn())
    worker = SyncWorker(cfg, content_version=runtime.pack.content_version, on_content=session.offer_pack)
    old_version = runtime.pack.content_version
    try:
        assert admin.upload("mypack.zip", pack_zip(tmp_path)).status_code == 200
        admin.publish("default@2.0.0-test")
        with sqlite_hub.repo() as repo, repo.backend.transaction() as tx:
            (bundle,) = tx.execute("select bundle from content_versions where published = 1").fetchone()
            at = bundle.index('"questionnaire.json":"') + 400
            swapped = "B" if bundle[at] != "B" else "C"
            tx.execute("update content_versions set bundle = ?", [bundle[:at] + swapped + bundle[at + 1:]])

        assert worker.drain().reachable
        assert session.offered_pack is None
        assert ContentStore(cfg.data_path).current() is None
        error = status_info(worker.store, cfg)["content_error"]
        assert "signature" in error and "refused" in error
        session.begin()
        assert session.visit.pack.content_version == old_version
        assert Runtime.create(cfg).pack.content_version == old_version

        worker.drain()  # the refusal reaches the hub with the next heartbeat
        kiosks = admin.client.get("/admin/kiosks").text
        assert "Refused new content" in kiosks and "signature" in kiosks
        assert old_version in kiosks
    finally:
        worker.close()
        session.close()
        runtime.close()


def test_a_pack_that_fails_validation_is_refused_at_upload_with_its_message(sqlite_hub, admin, tmp_path):
    def break_rules(folder: Path) -> None:
        rules = json.loads((folder / "rules.json").read_text())
        rules["rules"][0]["when"] = {"yes": "no-such-item"}
        (folder / "rules.json").write_text(json.dumps(rules))

    r = admin.upload("broken.zip", pack_zip(tmp_path, edit=break_rules))
    assert r.status_code == 422
    assert "Not uploaded" in r.text and "rules.json:" in r.text and "no-such-item" in r.text
    assert "Nothing uploaded yet" in r.text
    audit = sqlite_hub.cli("audit")
    assert "content.refused" in audit.output


@pytest.mark.parametrize("member", ["../evil.json", "/etc/evil.json", "pack/../../evil.json"])
def test_a_zip_with_paths_out_of_the_pack_is_refused(sqlite_hub, admin, tmp_path, member):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pack.json", "{}")
        zf.writestr(member, "{}")
    r = admin.upload("slip.zip", buf.getvalue())
    assert r.status_code == 422
    assert "not allowed" in r.text
    assert "Nothing uploaded yet" in r.text
    assert not (tmp_path.parent / "evil.json").exists()


def test_a_zip_bomb_is_refused_before_it_is_unpacked(sqlite_hub, admin):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pack.json", "{}")
        zf.writestr("questionnaire.json", b"\0" * (20 * 1024 * 1024))
    assert len(buf.getvalue()) < 1024 * 1024
    r = admin.upload("bomb.zip", buf.getvalue())
    assert r.status_code == 422 and "over the size limit" in r.text


def test_a_single_questionnaire_file_is_a_version_too(sqlite_hub, admin):
    data = (Path(__file__).parents[1] / "data" / "questionnaires").glob("*.json")
    path = sorted(data)[0]
    r = admin.upload(path.name, path.read_bytes())
    assert r.status_code == 200, r.text
    assert "Checked and kept as" in r.text
    # The admin is told, before publishing, that kiosks refuse it as it is.
    assert "It has no red-flag screening: kiosks refuse it unless" in html.unescape(r.text)


def test_a_kiosk_enrolled_before_content_signing_takes_the_key_over_the_pinned_connection(sqlite_hub, admin,
                                                                                          tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    key_file = Path(cfg.data_path) / "content-key.pub"
    enrolled_key = key_file.read_text()
    key_file.unlink()  # as a kiosk paired with a hub that had no content key yet
    assert admin.upload("mypack.zip", pack_zip(tmp_path)).status_code == 200
    admin.publish("default@2.0.0-test")
    worker = SyncWorker(cfg)
    try:
        assert worker.drain().reachable
        assert key_file.read_text() == enrolled_key
        assert worker.content_version == "default@2.0.0-test"
        assert ContentStore(cfg.data_path).current()["version"] == "default@2.0.0-test"
    finally:
        worker.close()


def test_a_selftest_visit_that_does_not_fit_the_pack_is_refused_at_upload(sqlite_hub, admin, tmp_path):
    def add_selftest(folder: Path) -> None:
        (folder / "selftest.json").write_text(json.dumps({"language": "en", "answers": {"pain-now": 4}}))

    r = admin.upload("mypack.zip", pack_zip(tmp_path, edit=add_selftest))
    assert r.status_code == 422 and "selftest.json" in r.text
    good = json.loads((Path(__file__).parents[1] / "data" / "selftest.json").read_text())
    r = admin.upload("mypack.zip", pack_zip(tmp_path / "ok", version="2.0.1-test",
                                            edit=lambda f: (f / "selftest.json").write_text(json.dumps(good))))
    assert r.status_code == 200, r.text
