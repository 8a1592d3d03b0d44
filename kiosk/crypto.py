"""Encryption of what rests on the kiosk: sealed boxes to the clinic's key.

The kiosk holds only the clinic's *public* key. Every record body goes through
:class:`SealedBoxSealer` before it reaches the disk, so the kiosk (and anyone
who walks off with its SD card) cannot read back what patients entered; only
the clinic hub, holding the private key, can open it.

>>> private, public = generate_keypair()
>>> sealed = SealedBoxSealer(public).seal(b'{"given-name": "Ana"}')
>>> open_sealed(private, sealed)
b'{"given-name": "Ana"}'

Key files are written with mode 0600 through :func:`write_secret_file`.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

#: File (inside the kiosk's data dir) that enrollment writes; see kiosk.enroll.
ENROLLMENT_FILE = "enrollment.json"
#: The hub certificate the kiosk pins after enrollment.
HUB_CERT_FILE = "hub-cert.pem"

KEY_BYTES = 32


class NotEnrolled(Exception):
    """The kiosk has no clinic key yet, so it must not store patient data."""


class KeyFileError(ValueError):
    """A key file is missing or does not hold a key; the message names the file."""


class SealedBoxSealer:
    """Encrypts record bodies to the clinic's public key (libsodium sealed box).

    Sealing needs no secret on the kiosk, and nothing the kiosk holds opens the
    result: that is the point.
    """

    def __init__(self, public_key: bytes):
        if len(public_key) != KEY_BYTES:
            raise ValueError(f"clinic public key must be {KEY_BYTES} bytes, got {len(public_key)}")
        self._box = SealedBox(PublicKey(public_key))

    def seal(self, plaintext: bytes) -> bytes:
        return self._box.encrypt(plaintext)


def generate_keypair() -> tuple[bytes, bytes]:
    """A new clinic key pair as (private, public) raw bytes."""
    key = PrivateKey.generate()
    return bytes(key), bytes(key.public_key)


def open_sealed(private_key: bytes | PrivateKey, ciphertext: bytes) -> bytes:
    """Opens a sealed body with the clinic's private key.

    Raises :class:`nacl.exceptions.CryptoError` when the body was not sealed
    to this key or was altered.
    """
    key = private_key if isinstance(private_key, PrivateKey) else PrivateKey(private_key)
    return SealedBox(key).decrypt(ciphertext)


def write_secret_file(path: str | os.PathLike, data: bytes | str) -> Path:
    """Writes ``data`` to ``path`` with mode 0600, atomically.

    The temporary file is created 0600 before any byte is written, so the
    secret is never readable by others, even for a moment; the rename makes a
    power cut leave either the old file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def encode_key(key: bytes) -> str:
    """A key as one line of base64 text, the form key files hold."""
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str | bytes, where: str = "key") -> bytes:
    """Reads a key from base64 text (or raw bytes); raises :class:`KeyFileError`
    naming ``where`` when it is not a 32-byte key."""
    if isinstance(text, bytes):
        if len(text) == KEY_BYTES:
            return text
        text = text.decode("ascii", errors="replace")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise KeyFileError(f"{where}: not a base64-encoded key") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"{where}: expected a {KEY_BYTES}-byte key, found {len(key)} bytes")
    return key


def write_key_file(path: str | os.PathLike, key: bytes) -> Path:
    """Writes a key as base64 text with mode 0600."""
    return write_secret_file(path, encode_key(key) + "\n")


def read_key_file(path: str | os.PathLike) -> bytes:
    """Reads a key written by :func:`write_key_file`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: key file not found") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    return decode_key(raw, str(path))


def read_enrollment(data_path: str | os.PathLike) -> dict:
    """The facts enrollment stored (hub URL, token, clinic key, pinned cert).

    Raises :class:`NotEnrolled` saying what to run when there are none.
    """
    path = Path(data_path) / ENROLLMENT_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotEnrolled(
            f"this kiosk is not enrolled with a clinic hub ({path} is missing): "
            "run `clinic-hub enroll-code` on the hub, then "
            "`clinic-kiosk enroll URL CODE` on the kiosk"
        ) from None
    except (OSError, ValueError) as exc:
        raise NotEnrolled(
            f"{path}: enrollment file cannot be read ({type(exc).__name__}); "
            "enroll again with `clinic-kiosk enroll URL CODE`"
        ) from None
    for key in ("hub_url", "token", "public_key", "cert_sha256", "kiosk_id"):
        if not isinstance(info.get(key), str) or not info[key]:
            raise NotEnrolled(
                f"{path}: enrollment file lacks {key!r}; enroll again with "
                "`clinic-kiosk enroll URL CODE`"
            )
    return info


def sealer_for(config) -> SealedBoxSealer:
    """The sealer for the clinic public key this kiosk got at enrollment.

    Raises :class:`NotEnrolled` (with the commands to run) when the kiosk has
    not been enrolled, because storing a visit unsealed is not an option.
    """
    info = read_enrollment(config.data_path)
    try:
        key = decode_key(info["public_key"], str(Path(config.data_path) / ENROLLMENT_FILE))
    except KeyFileError as exc:
        raise NotEnrolled(f"{exc}; enroll again with `clinic-kiosk enroll URL CODE`") from None
    return SealedBoxSealer(key)


__all__ = [
    "CryptoError",
    "KeyFileError",
    "NotEnrolled",
    "SealedBoxSealer",
    "decode_key",
    "encode_key",
    "generate_keypair",
    "open_sealed",
    "read_enrollment",
    "read_key_file",
    "sealer_for",
    "write_key_file",
    "write_secret_file",
]
