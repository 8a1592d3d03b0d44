"""Published content on the hub: uploads checked, every version kept, one published.

An admin uploads a pack folder as a .zip, or one FHIR Questionnaire .json
(:func:`read_upload`); it is unpacked into a temporary folder (never the
hub's data folder) and loaded as ``clinic-kiosk validate`` loads a pack. A
pack that loads becomes a version: its canonical bundle
(:func:`kiosk.content.make_bundle`), sha256 and Ed25519 signature, kept for
good in ``content_versions`` (:class:`ContentRepository`). Publishing one
version (the newest, or an older one to roll back) is what kiosks fetch on
their next heartbeat.
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from nacl.signing import SigningKey

from ..content import (MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, ContentError, make_bundle, name_problem,
                       selftest, write_tree)
from ..protocol import CONTENT_PATH
from .db import Backend, utcnow

#: Largest upload the admin form takes (the zip or .json as sent).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024

@dataclass(frozen=True)
class ContentVersion:
    id: str
    content_version: str
    uploaded_at: str
    uploaded_by: str
    sha256: str
    signature: str
    published: bool
    published_at: str | None

    @property
    def url(self) -> str:
        return f"{CONTENT_PATH}/{self.id}"


_COLUMNS = "id, content_version, uploaded_at, uploaded_by, sha256, signature, published, published_at"


def _version(row) -> ContentVersion:
    return ContentVersion(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


class ContentRepository:
    """The ``content_versions`` table, over the hub's :class:`Backend`."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def add(self, content_version: str, bundle: bytes, signature: str, user: str) -> ContentVersion:
        """Stores a version; the same bundle uploaded again is the same
        version. Raises :class:`ContentError` when ``content_version`` is
        already stored with other content (the version must be raised)."""
        sha = hashlib.sha256(bundle).hexdigest()
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_COLUMNS} from content_versions where content_version = ?",
                              [content_version]).fetchall()
            for row in rows:
                if row[4] == sha:
                    return _version(row)
            if rows:
                raise ContentError(f"pack.json:version: {content_version} is already stored with other content; "
                                   "raise the version and upload again")
            vid = secrets.token_hex(8)
            tx.execute("insert into content_versions (id, content_version, uploaded_at, uploaded_by, sha256, "
                       "signature, bundle) values (?, ?, ?, ?, ?, ?, ?)",
                       [vid, content_version, utcnow(), user, sha, signature, bundle.decode("ascii")])
            row = tx.execute(f"select {_COLUMNS} from content_versions where id = ?", [vid]).fetchone()
        return _version(row)

    def versions(self) -> list[ContentVersion]:
        """Every version, newest first."""
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_COLUMNS} from content_versions order by uploaded_at desc, id").fetchall()
        return [_version(r) for r in rows]

    def get(self, vid: str) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where id = ?", [vid]).fetchone()
        return _version(row) if row else None

    def by_content_version(self, content_version: str) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where content_version = ? "
                             "order by uploaded_at desc limit 1", [content_version]).fetchone()
        return _version(row) if row else None

    def bundle(self, vid: str) -> bytes | None:
        with self.backend.transaction() as tx:
            row = tx.execute("select bundle from content_versions where id = ?", [vid]).fetchone()
        return row[0].encode("ascii") if row else None

    def publish(self, vid: str) -> bool:
        """Makes ``vid`` the one version kiosks fetch; False when unknown."""
        with self.backend.transaction() as tx:
            if not tx.execute("select 1 from content_versions where id = ?", [vid]).fetchone():
                return False
            tx.execute("update content_versions set published = 0 where published = 1")
            tx.execute("update content_versions set published = 1, published_at = ? where id = ?", [utcnow(), vid])
        return True

    def published(self) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where published = 1").fetchone()
        return _version(row) if row else None


# -- uploads ----------------------------------------------------------------------


def read_upload(filename: str, data: bytes) -> tuple[str, dict[str, bytes]]:
    """(entry, files) of an upload: a .zip of a pack folder (its files, with
    a single top folder stripped) or one Questionnaire .json. Refuses
    absolute paths, ``..``, links, too many files and too much data
    uncompressed (a zip bomb) with :class:`ContentError`, before writing anything."""
    where = PurePosixPath(filename.replace("\\", "/")).name[:100] or "upload"
    if len(data) > MAX_UPLOAD_BYTES:
        raise ContentError(f"{where}:1: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if not data:
        raise ContentError(f"{where}:1: empty file")
    if where.lower().endswith(".json"):
        if name_problem(where):
            where = "questionnaire.json"
        return where, {where: data}
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ContentError(f"{where}:1: not a .zip of a pack folder nor a Questionnaire .json")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        # Folders, and what a Mac's "Compress" adds beside the files, are not the pack's.
        infos = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")
                 and PurePosixPath(i.filename).name != ".DS_Store"]
        if len(infos) > MAX_FILES:
            raise ContentError(f"{where}:1: more than {MAX_FILES} files")
        total = 0
        for info in infos:
            problem = name_problem(info.filename)
            if problem:
                raise ContentError(f"{where}:{info.filename[:100]}: {problem}")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ContentError(f"{where}:{info.filename}: links are not allowed")
            total += info.file_size
            if info.file_size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
                raise ContentError(f"{where}:{info.filename}: over the size limit once unpacked")
        files: dict[str, bytes] = {}
        for info in infos:
            # Read at most the declared size (+1): a member lying about its size is refused.
            with archive.open(info) as fh:
                blob = fh.read(info.file_size + 1)
            if len(blob) != info.file_size:
                raise ContentError(f"{where}:{info.filename}: size does not match the archive's directory")
            files[info.filename] = blob
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, RuntimeError):
        raise ContentError(f"{where}:1: a damaged or unsupported zip file") from None
    if not files:
        raise ContentError(f"{where}:1: the zip holds no files")
    tops = {PurePosixPath(n).parts[0] for n in files}
    if "pack.json" not in files and len(tops) == 1 and all(len(PurePosixPath(n).parts) > 1 for n in files):
        top = tops.pop()
        files = {n[len(top) + 1:]: b for n, b in files.items()}
    if "pack.json" not in files:
        raise ContentError(f"{where}:pack.json: missing (zip the pack folder, with pack.json at its top)")
    return ".", files


def check_upload(filename: str, data: bytes) -> tuple[str, str, dict[str, bytes]]:
    """(content_version, entry, files) of an upload that passes the checks a
    kiosk runs before using content; raises :class:`ContentError` with the
    ``path:location: message`` lines otherwise (paths inside the pack)."""
    entry, files = read_upload(filename, data)
    with tempfile.TemporaryDirectory(prefix="clinic-hub-upload-") as tmp:
        root = Path(tmp) / "pack"
        write_tree(files, root)
        pack, problems = selftest(root if entry == "." else root / entry)
        if problems:
            raise ContentError([line.replace(str(root) + "/", "").replace(str(root), ".") for line in problems])
    return pack.content_version, entry, files


def sign(signing_key: bytes, bundle: bytes) -> str:
    return base64.b64encode(SigningKey(signing_key).sign(bundle).signature).decode("ascii")


def verify_key_b64(signing_key: bytes) -> str:
    return base64.b64encode(bytes(SigningKey(signing_key).verify_key)).decode("ascii")


def store_upload(repo: ContentRepository, signing_key: bytes, filename: str, data: bytes,
                 user: str) -> ContentVersion:
    content_version, entry, files = check_upload(filename, data)
    bundle = make_bundle(content_version, entry, files)
    return repo.add(content_version, bundle, sign(signing_key, bundle), user)
