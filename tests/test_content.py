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
