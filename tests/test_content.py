"""The content bundle and upload checks, without a hub (see tests/hub/test_content.py for the whole path)."""

import base64
import io
import json
import stat
import zipfile

import pytest
from nacl.signing import SigningKey

from kiosk.content import ContentError, ContentStore, make_bundle, read_bundle
from kiosk.hub.content import read_upload, sign


def zip_of(*members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info, data in members:
            zf.writestr(info, data)
    return buf.getvalue()


def test_a_link_in_an_uploaded_zip_is_refused():
    link = zipfile.ZipInfo("rules.json")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(ContentError, match="links are not allowed"):
        read_upload("pack.zip", zip_of(("pack.json", "{}"), (link, "/etc/passwd")))


def test_a_bundle_naming_a_file_outside_its_folder_is_refused_by_the_kiosk():
    doc = json.loads(make_bundle("x@1", ".", {"pack.json": b"{}"}))
    doc["files"]["../../.bashrc"] = base64.b64encode(b"evil").decode()
    with pytest.raises(ContentError, match=r"\.\."):
        read_bundle(json.dumps(doc).encode())


def test_the_kiosk_installs_only_what_the_hubs_key_signed(tmp_path):
    hub_key = SigningKey.generate()
    store = ContentStore(tmp_path)
    store.save_verify_key(base64.b64encode(bytes(hub_key.verify_key)).decode())
    bundle = make_bundle("q@1", "q.json", {"q.json": b"{}"})
    other = sign(bytes(SigningKey.generate()), bundle)
    import hashlib

    with pytest.raises(ContentError, match="signature"):
        store.install(bundle, other, "q@1", hashlib.sha256(bundle).hexdigest())
    assert store.current() is None and not (tmp_path / "content").exists()


def test_published_content_without_the_red_flag_screening_needs_screening_off_on_the_kiosk(tmp_path):
    import hashlib
    from pathlib import Path

    from kiosk.config import Config
    from kiosk.content import load_current_pack

    bluebook = Path(__file__).parent / "data" / "questionnaires" / "hl7-questionnaire-example-bluebook.json"
    hub_key = SigningKey.generate()
    bundle = make_bundle("bb@1", "bb.json", {"bb.json": bluebook.read_bytes()})
    signature = sign(bytes(hub_key), bundle)
    on = Config().with_data_dir(tmp_path)
    store = ContentStore(tmp_path)
    store.save_verify_key(base64.b64encode(bytes(hub_key.verify_key)).decode())
    # the hub's newest content cannot switch the screening off behind the clinic's back
    with pytest.raises(ContentError, match="has no red-flag screening"):
        store.install(bundle, signature, "bb@1", hashlib.sha256(bundle).hexdigest(), config=on)
    assert store.current() is None
    off = on.replace("kiosk", screening="off")
    pack = store.install(bundle, signature, "bb@1", hashlib.sha256(bundle).hexdigest(), config=off)
    assert pack.has("birthWeight") and load_current_pack(off).has("birthWeight")
    # installed while off, then the kiosk's config says on again: it is set aside at start
    assert load_current_pack(on).has("rf-saddle")
