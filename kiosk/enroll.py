"""Enrollment: pairing a kiosk with the clinic hub over a one-time code.

The kiosk takes the certificate the hub presents and from then on talks to
it trusting only that certificate. It runs SPAKE2 over the code's secret
(only the code's id travels; see :mod:`kiosk.protocol`), and accepts the hub
only once the hub has proven, with a MAC under the shared key, that it
knows the code AND that the certificate this kiosk saw and the clinic key it
received are its own. A relay with its own certificate or key cannot make
that proof, so enrollment fails before the kiosk confirms anything, and the
kiosk stays unenrolled.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import ssl
import urllib.parse
from pathlib import Path

import httpx
from nacl.secret import SecretBox
from spake2 import SPAKE2_A

from . import protocol as p
from .crypto import ENROLLMENT_FILE, HUB_CERT_FILE, CryptoError, write_secret_file
from .protocol import cert_fingerprint
from .store import utcnow

log = logging.getLogger(__name__)


class EnrollError(Exception):
    """Enrollment did not complete; the message says why and what to do.
    The kiosk is left as it was (unenrolled, or enrolled as before)."""


def pinned_ssl_context(cert_pem: str) -> ssl.SSLContext:
    """An SSL context that trusts exactly the hub's own self-signed
    certificate and nothing else, so no public CA can vouch for an impostor.
    The host name is not checked: the kiosk may reach the hub by IP or by a
    name the certificate does not carry, and the pin already fixes the peer."""
    ctx = ssl.create_default_context(cadata=cert_pem)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise EnrollError(f"hub URL {p.redact_url(url)!r} must be https://HOST[:PORT]")
    return parts.hostname, parts.port or 443


def fetch_certificate(url: str, timeout_s: float = 10.0) -> str:
    """The PEM certificate the hub at ``url`` presents (first contact)."""
    host, port = _host_port(url)
    try:
        return ssl.get_server_certificate((host, port), timeout=timeout_s)
    except (OSError, ssl.SSLError) as exc:
        raise EnrollError(f"cannot reach the hub at {p.redact_url(url)}: {exc}") from None


def enroll(config, url: str, code: str) -> dict:
    """Pairs this kiosk with the hub at ``url`` using a one-time ``code``.

    The kiosk takes the certificate the hub presents and from then on talks
    to it trusting only that certificate. It runs SPAKE2 over the code's
    secret (only the code's id travels), and accepts the hub only once the
    hub has proven, with a MAC under the shared key, that it knows the code
    AND that the certificate this kiosk saw and the clinic key it received
    are its own. A relay with its own certificate or key cannot make that
    proof, so enrollment fails before the kiosk confirms anything. Then the
    token arrives encrypted under the shared key, with the kiosk id the hub
    assigned. Writes the token, clinic key and certificate (mode 0600) into
    the kiosk's data dir; returns what was stored, without the token.
    """
    url = url.rstrip("/")
    try:
        code_id, secret = p.split_code(code)
    except p.CodeFormatError as exc:
        raise EnrollError(str(exc)) from None
    name = config.kiosk.kiosk_id
    cert_pem = fetch_certificate(url)
    fingerprint = cert_fingerprint(cert_pem)
    spake = SPAKE2_A(p.code_password(code_id, secret), idA=p.SPAKE2_ID_KIOSK, idB=p.SPAKE2_ID_HUB)
    msg_kiosk = p.b64(spake.start())
    try:
        with httpx.Client(base_url=url, verify=pinned_ssl_context(cert_pem), timeout=15.0) as client:
            body = _enroll_post(client, p.ENROLL_START_PATH, {"code_id": code_id, "name": name, "spake2": msg_kiosk})
            challenge = _enroll_answer(p.EnrollChallenge, body)
            try:
                key = spake.finish(base64.b64decode(challenge.spake2))
            except Exception:  # spake2 raises unrelated types for a bad message
                raise EnrollError(_NOT_THE_HUB) from None
            transcript = p.enroll_transcript(code_id, name, msg_kiosk, challenge.spake2, fingerprint,
                                             challenge.public_key, challenge.content_key)
            if not hmac.compare_digest(challenge.confirm, p.enroll_mac(key, "hub", transcript)):
                raise EnrollError(_NOT_THE_HUB)
            body = _enroll_post(client, p.ENROLL_FINISH_PATH,
                                {"session": challenge.session, "confirm": p.enroll_mac(key, "kiosk", transcript)})
            granted = _enroll_answer(p.EnrollGranted, body)
    except httpx.HTTPError as exc:
        raise EnrollError(f"cannot reach the hub at {p.redact_url(url)}: {type(exc).__name__}") from None
    try:
        grant = p.Grant.model_validate_json(
            SecretBox(p.enroll_box_key(key)).decrypt(base64.b64decode(granted.sealed))
        )
        public_key = base64.b64decode(challenge.public_key, validate=True)
    except (CryptoError, ValueError):
        raise EnrollError("the hub's answer does not open with the exchanged key; not enrolled") from None
    if len(public_key) != 32:
        raise EnrollError("the hub sent a clinic key of the wrong length; not enrolled")
    info = {
        "hub_url": url,
        "kiosk_id": grant.kiosk_id,
        "name": name,
        "token": grant.token,
        "public_key": challenge.public_key,
        "cert_sha256": fingerprint,
        "enrolled_at": utcnow(),
    }
    data = Path(config.data_path)
    data.mkdir(parents=True, exist_ok=True)
    # The database's -wal/-shm files are created with the process umask; a
    # private directory keeps them (and everything else here) from others.
    data.chmod(0o700)
    write_secret_file(data / HUB_CERT_FILE, cert_pem)
    write_secret_file(data / ENROLLMENT_FILE, json.dumps(info, indent=2) + "\n")
    if challenge.content_key:
        # Covered by the hub's confirmation above, like the clinic key.
        from .content import ContentError, ContentStore

        try:
            ContentStore(data).save_verify_key(challenge.content_key)
        except (ContentError, ValueError):
            log.error("enrollment: the hub's content key is malformed; published content will be refused")
    log.info("enrolled with the hub as %s", grant.kiosk_id)
    return {k: v for k, v in info.items() if k != "token"}


_NOT_THE_HUB = (
    "the hub could not prove that it issued this code: either the code was mistyped, or the connection "
    "is being intercepted (another certificate or key was swapped in); not enrolled. Check the code; "
    "if it is right, do not enroll over this network"
)


def _enroll_post(client: httpx.Client, path: str, payload: dict) -> dict:
    resp = client.post(path, json=payload)
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code != 200:
        detail = body.get("detail", "") if isinstance(body, dict) else ""
        raise EnrollError(f"hub refused enrollment ({resp.status_code}): {str(detail)[:300]}")
    return body


def _enroll_answer(model, body: dict):
    try:
        return model.model_validate(body)
    except ValueError:
        raise EnrollError("hub sent an enrollment answer this kiosk does not understand") from None
