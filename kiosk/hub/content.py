"""Published content on the hub: uploads checked, every version kept, one published.

An admin uploads a pack folder as a .zip, or one FHIR Questionnaire .json
(:func:`read_upload`); it is unpacked into a temporary folder (never the
hub's data folder) and loaded as ``clinic-kiosk validate`` loads a pack. A
pack that loads becomes a version: its canonical bundle
(:func:`kiosk.content.make_bundle`), sha256 and Ed25519 signature, kept for
good in ``content_versions`` (:class:`kiosk.hub.db.content.ContentRepository`,
reached as ``db.content``). Publishing one
version (the newest, or an older one to roll back) is what kiosks fetch on
their next heartbeat.
"""

from __future__ import annotations

import base64
import io
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from nacl.signing import SigningKey

from ..content import (MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, ContentError, make_bundle, name_problem,
                       selftest, write_tree)
from ..questionnaire.compose import has_screening
from .db.content import ContentRepository, ContentVersion

#: Largest upload the admin form takes (the zip or .json as sent).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024


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


def check_upload(filename: str, data: bytes) -> tuple[str, str, dict[str, bytes], bool]:
    """(content_version, entry, files, whether it asks the red-flag
    screening) of an upload that passes the checks a kiosk runs before
    using content; raises :class:`ContentError` with the
    ``path:location: message`` lines otherwise (paths inside the pack)."""
    entry, files = read_upload(filename, data)
    with tempfile.TemporaryDirectory(prefix="clinic-hub-upload-") as tmp:
        root = Path(tmp) / "pack"
        write_tree(files, root)
        pack, problems = selftest(root if entry == "." else root / entry)
        if problems:
            raise ContentError([line.replace(str(root) + "/", "").replace(str(root), ".") for line in problems])
    return pack.content_version, entry, files, has_screening(pack)


def sign(signing_key: bytes, bundle: bytes) -> str:
    return base64.b64encode(SigningKey(signing_key).sign(bundle).signature).decode("ascii")


def verify_key_b64(signing_key: bytes) -> str:
    return base64.b64encode(bytes(SigningKey(signing_key).verify_key)).decode("ascii")


def store_upload(repo: ContentRepository, signing_key: bytes, filename: str, data: bytes,
                 user: str) -> tuple[ContentVersion, list[str]]:
    """The new version kept, and what the admin should know of it (a pack
    without the red-flag screening, which kiosks refuse unless told)."""
    content_version, entry, files, screening = check_upload(filename, data)
    bundle = make_bundle(content_version, entry, files)
    return repo.add(content_version, bundle, sign(signing_key, bundle), user), [] if screening else [NO_SCREENING]


#: Said on the admin page when an upload has no red-flag screening.
NO_SCREENING = ("It has no red-flag screening: kiosks refuse it unless their own configuration says "
                '[kiosk] screening = "off". To use another tool\'s questionnaire, upload a pack folder whose '
                'pack.json "parts" list {"builtin": "default"} first, then the questionnaire.')

