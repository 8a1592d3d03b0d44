"""The hub's data directory: clinic key pair, TLS certificate, settings.

Layout of ``--data DIR``::

    clinic.key   clinic private key (base64, 0600): opens every submission
    clinic.pub   clinic public key (base64): kiosks seal to it
    tls.key      TLS private key (PEM, 0600)
    tls.crt      self-signed TLS certificate (PEM); kiosks pin its SHA-256
    content.key  Ed25519 key the hub signs published content with (base64, 0600)
    hub.json     settings written by ``init`` (the database URL, 0600)
    hub.db       the SQLite database, unless a PostgreSQL URL is configured
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ..crypto import encode_key, generate_keypair, read_key_file, write_key_file, write_secret_file
from ..protocol import cert_fingerprint


@dataclass(frozen=True)
class HubFiles:
    data: Path

    @property
    def private_key(self) -> Path:
        return self.data / "clinic.key"

    @property
    def public_key(self) -> Path:
        return self.data / "clinic.pub"

    @property
    def tls_key(self) -> Path:
        return self.data / "tls.key"

    @property
    def tls_cert(self) -> Path:
        return self.data / "tls.crt"

    @property
    def content_key(self) -> Path:
        return self.data / "content.key"

    @property
    def settings(self) -> Path:
        return self.data / "hub.json"

    @property
    def sqlite(self) -> Path:
        return self.data / "hub.db"

    def initialised(self) -> bool:
        return self.private_key.exists() and self.tls_cert.exists()


class NotInitialised(Exception):
    pass


def require_init(files: HubFiles) -> None:
    if not files.initialised():
        raise NotInitialised(
            f"{files.data}: no clinic hub here (clinic.key or tls.crt missing): "
            f"run `clinic-hub init --data {files.data}` first"
        )


def database_url(files: HubFiles, override: str | None = None) -> str:
    """``--db`` when given, else what ``init`` recorded, else SQLite in the data dir."""
    if override:
        return override
    try:
        saved = json.loads(files.settings.read_text(encoding="utf-8")).get("db")
    except (FileNotFoundError, ValueError):
        saved = None
    return saved or f"sqlite:///{files.sqlite}"


def save_settings(files: HubFiles, db_url: str | None) -> None:
    write_secret_file(files.settings, json.dumps({"db": db_url}, indent=2) + "\n")


def create_keys(files: HubFiles) -> bytes:
    """Creates the clinic key pair; returns the public key. Refuses to
    overwrite: losing the private key means losing every unsynced visit."""
    if files.private_key.exists():
        raise FileExistsError(f"{files.private_key}: clinic key already exists; not overwriting it")
    private, public = generate_keypair()
    write_key_file(files.private_key, private)
    files.public_key.write_text(encode_key(public) + "\n")
    return public


def load_keys(files: HubFiles) -> tuple[bytes, bytes]:
    private = read_key_file(files.private_key)
    public = read_key_file(files.public_key)
    return private, public


def create_tls_certificate(files: HubFiles, hostnames: list[str] | None = None) -> str:
    """Writes a self-signed certificate (EC P-256, ten years) for this host;
    returns its SHA-256 fingerprint. Kiosks pin it at enrollment, so no CA
    is involved."""
    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    names = hostnames or sorted({"localhost", host, f"{host}.local"})
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64]),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "clinic-hub")])
    now = dt.datetime.now(dt.timezone.utc)
    san = [x509.DNSName(n) for n in names] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_secret_file(
        files.tls_key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    files.tls_cert.write_bytes(pem)
    return cert_fingerprint(pem)


def content_signing_key(files: HubFiles) -> bytes:
    """The hub's Ed25519 content signing key (32-byte seed), created on first
    use, so a hub initialised before published content existed keeps working.
    Kiosks learn its public half at enrollment (or once over the pinned
    connection, see :mod:`kiosk.sync`); a new one means they refuse content
    until enrolled again, so it is never replaced."""
    from nacl.signing import SigningKey

    if files.content_key.exists():
        return read_key_file(files.content_key)
    seed = bytes(SigningKey.generate())
    write_key_file(files.content_key, seed)
    return seed
