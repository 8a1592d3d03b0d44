"""Published content: a content pack as one signed bundle, from hub to kiosk.

An admin uploads a pack (a folder as a .zip, or one FHIR Questionnaire
.json) on the hub; the hub checks it as ``clinic-kiosk validate`` does and
keeps it as a *bundle*: canonical JSON holding every file of the pack
(so a pack of several questionnaires travels whole) and the version it
declares::

    {"content_version": "default@1.3.0", "entry": ".", "files": {"pack.json": "<base64>", ...},
     "format": 1}

``entry`` is what the kiosk loads: ``"."`` for a folder, else the name of the
one questionnaire file. The hub signs the exact bytes of the bundle with its
Ed25519 content key; the kiosk checks that signature with the key it got at
enrollment before it unpacks a byte, so a machine in the middle (or a changed
row in the hub's database) cannot change what patients are asked.

On the kiosk (:class:`ContentStore`), verified content lives in
``DATA/content/<version>-<sha>/`` and ``DATA/content/current.json`` names the
version in use; :func:`selftest` checks a new version before it is used.

>>> files = {"q.json": b'{"resourceType": "Questionnaire"}'}
>>> read_bundle(make_bundle("q@1", "q.json", files)).files == files
True
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
#: Most files, bytes per file and bytes in all of one pack (uncompressed).
MAX_FILES = 200
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_TOTAL_BYTES = 8 * 1024 * 1024
#: Largest bundle a kiosk downloads (base64 makes it about 4/3 of the files).
MAX_BUNDLE_BYTES = MAX_TOTAL_BYTES * 4 // 3 + 64 * 1024

CONTENT_KEY_FILE = "content-key.pub"
CONTENT_DIR = "content"
CURRENT_FILE = "current.json"
#: The optional visit file in a pack folder that the kiosk scores before it
#: uses a new version (the replay format of ``clinic-kiosk score``).
SELFTEST_FILE = "selftest.json"

_NAME_PART = re.compile(r"^[A-Za-z0-9._@+-]{1,100}$")


class ContentError(Exception):
    """Content that cannot be used; ``problems`` are ``path:location: message``
    lines (never patient data: content holds none)."""

    def __init__(self, problems: list[str] | str):
        problems = [problems] if isinstance(problems, str) else problems
        super().__init__("; ".join(problems))
        self.problems = problems


def name_problem(name: str) -> str | None:
    """Why ``name`` may not be a file of a pack (absolute, ``..``, odd
    characters, too deep), or None. Checked on the hub when unpacking an
    upload and on the kiosk when unpacking a bundle.

    >>> [name_problem(n) for n in ("rules.json", "../etc/passwd", "/abs", "a\\\\b")]
    [None, "'..' is not allowed", 'absolute paths are not allowed', 'use letters, digits and . _ - @ + only']
    """
    if not name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute paths are not allowed"
    parts = PurePosixPath(name).parts
    if ".." in name.split("/"):
        return "'..' is not allowed"
    if len(parts) > 8:
        return "nested too deeply"
    if not all(_NAME_PART.match(p) and p not in (".",) for p in parts):
        return "use letters, digits and . _ - @ + only"
    return None


def make_bundle(content_version: str, entry: str, files: dict[str, bytes]) -> bytes:
    """The canonical bytes of a bundle (what the hub signs and serves)."""
    doc = {
        "format": BUNDLE_FORMAT,
        "content_version": content_version,
        "entry": entry,
        "files": {name: base64.b64encode(data).decode("ascii") for name, data in sorted(files.items())},
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class Bundle:
    content_version: str
    entry: str
    files: dict[str, bytes]


def read_bundle(data: bytes, where: str = "bundle") -> Bundle:
    """Parses and checks a bundle; raises :class:`ContentError`."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise ContentError(f"{where}:1: larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ContentError(f"{where}:1: not a content bundle (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != BUNDLE_FORMAT:
        raise ContentError(f"{where}:format: not a content bundle of format {BUNDLE_FORMAT}")
    version, entry, raw = doc.get("content_version"), doc.get("entry"), doc.get("files")
    if not isinstance(version, str) or not version or len(version) > 200:
        raise ContentError(f"{where}:content_version: missing or too long")
    if not isinstance(raw, dict) or not raw or len(raw) > MAX_FILES:
        raise ContentError(f"{where}:files: must hold 1 to {MAX_FILES} files")
    files: dict[str, bytes] = {}
    total = 0
    for name, text in raw.items():
        problem = name_problem(name) if isinstance(name, str) else "not a name"
        if problem:
            raise ContentError(f"{where}:files.{str(name)[:80]}: {problem}")
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ContentError(f"{where}:files.{name}: not base64") from None
        total += len(blob)
        if len(blob) > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
            raise ContentError(f"{where}:files.{name}: over the size limit")
        files[name] = blob
    if not isinstance(entry, str) or (entry != "." and entry not in files):
        raise ContentError(f"{where}:entry: names no file of the bundle")
    return Bundle(version, entry, files)


def write_tree(files: dict[str, bytes], dest: Path) -> None:
    """Writes ``files`` (names already checked) under ``dest``."""
    for name, data in files.items():
        target = dest.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def selftest(pack_path: Path) -> tuple[object | None, list[str]]:
    """(the loaded pack, problems) of content about to be used: the checks
    ``clinic-kiosk validate`` makes of a pack (loading it: every problem of
    the questionnaires, rules and translations) and, when the pack has a
    ``selftest.json`` visit, a scoring of it with the pack's rules. No UI,
    no storage, no media (so the hub runs it too, without the video stack)."""
    from .questionnaire import PackError, load_pack

    try:
        pack = load_pack(pack_path)
    except PackError as exc:
        return None, exc.problems
    visit_file = pack_path / SELFTEST_FILE if pack_path.is_dir() else None
    if visit_file is not None and visit_file.is_file():
        from .visit import VisitFileError, read_visit_file, score_visit_file

        try:
            score_visit_file(read_visit_file(visit_file, pack), pack)
        except VisitFileError as exc:
            return None, [str(exc)]
        except Exception as exc:  # a rule that breaks on a real visit must not reach patients
            return None, [f"{visit_file}:1: scoring the self-test visit failed ({type(exc).__name__})"]
    return pack, []


def _slug(version: str, sha256: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", version)[:80]
    return f"{safe}-{sha256[:12]}"


class ContentStore:
    """The published content a kiosk holds, in ``DATA/content``.

    :meth:`install` takes a downloaded bundle and its signature; only a
    bundle that verifies, unpacks and passes :func:`selftest` is written to
    ``current.json``, so a bad one leaves the kiosk on what it had.
    """

    def __init__(self, data_dir: str | os.PathLike):
        self.data = Path(data_dir)
        self.root = self.data / CONTENT_DIR

    # -- the hub's content key --------------------------------------------------

    def verify_key(self) -> bytes | None:
        try:
            key = base64.b64decode((self.data / CONTENT_KEY_FILE).read_text(encoding="ascii").strip(), validate=True)
        except (OSError, ValueError, binascii.Error):
            return None
        return key if len(key) == 32 else None

    def save_verify_key(self, key_b64: str) -> None:
        from .crypto import write_secret_file

        key = base64.b64decode(key_b64, validate=True)
        if len(key) != 32:
            raise ContentError(f"{self.data / CONTENT_KEY_FILE}:1: an Ed25519 key has 32 bytes")
        self.data.mkdir(parents=True, exist_ok=True)
        write_secret_file(self.data / CONTENT_KEY_FILE, key_b64 + "\n")

    # -- what is in use ----------------------------------------------------------

    def current(self) -> dict | None:
        """``{"version", "sha256", "dir", "entry"}`` of the content in use, or None."""
        try:
            info = json.loads((self.root / CURRENT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in ("version", "sha256",
                                                                                        "dir", "entry")):
            return None
        if name_problem(info["dir"]) or "/" in info["dir"]:
            return None
        return info

    def pack_path(self) -> Path | None:
        """Where the content in use is loaded from, or None (the configured pack)."""
        info = self.current()
        if info is None:
            return None
        folder = self.root / info["dir"]
        path = folder if info["entry"] == "." else folder / info["entry"]
        return path if path.exists() else None

    def install(self, data: bytes, signature_b64: str, offered_version: str, offered_sha256: str,
                config=None):
        """Verifies, unpacks and self-tests a downloaded bundle; on success
        makes it current and returns the loaded pack. Raises
        :class:`ContentError` (and keeps what was current) otherwise. With
        the kiosk's ``config``, content without the red-flag screening is
        refused too unless it says ``[kiosk] screening = "off"``."""
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        key = self.verify_key()
        if key is None:
            raise ContentError(f"{self.data / CONTENT_KEY_FILE}:1: no hub content key; enroll the kiosk again")
        try:
            signature = base64.b64decode(signature_b64, validate=True)
            VerifyKey(key).verify(data, signature)
        except (BadSignatureError, ValueError, binascii.Error):
            raise ContentError(f"content {offered_version[:80]}:signature: does not verify with the hub's "
                               "content key; refused (changed on the way or on the hub)") from None
        sha = hashlib.sha256(data).hexdigest()
        if sha != offered_sha256:
            raise ContentError(f"content {offered_version[:80]}:sha256: does not match the hub's offer; refused")
        bundle = read_bundle(data, f"content {offered_version[:80]}")
        if bundle.content_version != offered_version:
            raise ContentError(f"content {offered_version[:80]}:content_version: the bundle says "
                               f"{bundle.content_version[:80]}; refused")
        self.root.mkdir(parents=True, exist_ok=True)
        name = _slug(bundle.content_version, sha)
        final = self.root / name
        if not final.exists():
            work = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
            try:
                write_tree(bundle.files, work)
                work.rename(final)
            except OSError as exc:
                shutil.rmtree(work, ignore_errors=True)
                raise ContentError(f"{final}:1: cannot unpack ({exc.strerror or type(exc).__name__})") from None
        path = final if bundle.entry == "." else final / bundle.entry
        pack, problems = selftest(path)
        if not problems and config is not None:
            problems = config_problems(config, pack)[0]
        if problems:
            raise ContentError(problems[:5])
        info = {"version": bundle.content_version, "sha256": sha, "dir": name, "entry": bundle.entry}
        tmp = self.root / f".{CURRENT_FILE}.tmp"
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        os.replace(tmp, self.root / CURRENT_FILE)
        self._forget_old(keep={name})
        log.info("content: %s verified and installed", bundle.content_version)
        return pack

    def _forget_old(self, keep: set[str], spare: int = 2) -> None:
        """Removes unpacked versions beyond the newest few (a kiosk's SD card is small)."""
        dirs = sorted((d for d in self.root.iterdir() if d.is_dir() and d.name not in keep),
                      key=lambda d: d.stat().st_mtime, reverse=True)
        for old in dirs[spare:]:
            shutil.rmtree(old, ignore_errors=True)


def pack_source(config) -> str | None:
    """What the kiosk loads its pack from: the published content it verified,
    else ``[kiosk] content_pack`` (None: the built-in pack)."""
    published = ContentStore(config.data_path).pack_path()
    if published is not None:
        return str(published)
    return config.kiosk.content_pack or None


def config_problems(config, pack) -> tuple[list[str], list[str]]:
    """(problems, notices) of running ``pack`` with ``config``: the red-flag
    screening (:func:`kiosk.questionnaire.compose.screening_problems`) and
    a ``[kiosk] staff_language`` the pack offers."""
    from .questionnaire.compose import screening_problems

    problems, notices = screening_problems(pack, config.kiosk.screening, config.source)
    if config.kiosk.staff_language not in pack.languages:
        problems.append(f"{config.source}:kiosk.staff_language: {config.kiosk.staff_language!r} is not a "
                        f"language of the content pack (it offers {', '.join(pack.languages)})")
    return problems, notices


def load_current_pack(config):
    """The pack in use: the published content when it loads, else the
    configured one (a published version that no longer loads, e.g. after a
    kiosk software update, is logged and set aside). Raises PackError only
    for the configured pack.

    A pack without the red-flag screening is used only when the
    configuration says ``[kiosk] screening = "off"``, and only a pack that
    offers ``[kiosk] staff_language`` (see :func:`config_problems`);
    published content that fails them is set aside like content that does
    not load."""
    from .questionnaire import PackError

    published = ContentStore(config.data_path).pack_path()
    if published is not None:
        try:
            return _usable_pack(config, published)
        except PackError as exc:
            log.error("content: the published content cannot be used (%s); using the configured pack",
                      exc.problems[0] if exc.problems else "unknown")
    return _usable_pack(config, config.kiosk.content_pack or None)


def _usable_pack(config, path):
    """The pack at ``path`` (None: the built-in one), loaded and checked
    against the configuration (:func:`config_problems`); its notices are
    logged. Raises PackError."""
    from .questionnaire import PackError, load_pack

    pack = load_pack(path)
    problems, notices = config_problems(config, pack)
    if problems:
        raise PackError(problems, notices)
    for line in notices:
        log.warning("content: %s", line)
    return pack
