"""Exactly-once sync of the kiosk's outbox to the clinic hub.

* :func:`kiosk.enroll.enroll` (re-exported here) pairs the kiosk with a hub
  over a one-time code: device token, kiosk id, clinic public key and the
  hub's TLS certificate, which the kiosk pins from then on.
* :class:`SyncWorker` runs on its own thread with its own database connection
  and drains the outbox in batches, alerts first. While the hub is away it
  waits :func:`backoff_delay` between attempts.
* Every record carries its UUID. The hub stores a record once and answers an
  identical resend with ``duplicate``, so a lost acknowledgement, a killed
  process or a dropped connection only ever leads to a resend, never to a
  second copy. Only after the hub acknowledged does the kiosk delete its copy
  (after ``hub.retention_s``).

    >>> backoff_delay(3, rand=0.5, base_s=1.0, cap_s=300.0)
    3.0
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import httpx

from . import protocol as p
from .content import MAX_BUNDLE_BYTES, ContentError, ContentStore
from .crypto import HUB_CERT_FILE, CryptoError, NotEnrolled, open_sealed, read_enrollment
from .enroll import enroll, pinned_ssl_context  # noqa: F401  (enroll: re-exported)
from .protocol import cert_fingerprint
from .store import ALERT_KINDS, Store, utcnow

log = logging.getLogger(__name__)

# kiosk_state keys (device facts, never patient data).
STATE_LAST_SYNC = "sync.last_sync"
STATE_REACHABLE = "sync.hub_reachable"
STATE_LAST_ATTEMPT = "sync.last_attempt"
STATE_LAST_ERROR = "sync.last_error"
STATE_CERT_CHANGED = "sync.certificate_changed"
STATE_CONTENT_ERROR = "content.error"


# -- pure rules ---------------------------------------------------------------


def backoff_delay(failures: int, rand: float, *, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Seconds to wait after ``failures`` consecutive failed attempts.

    Exponential (``base_s``, doubling, capped at ``cap_s``) with "equal
    jitter": the wait is between half and all of that, decided by ``rand``
    in [0, 1). The jitter keeps a room of kiosks that lost the hub together
    from all knocking again in the same second when it returns; the floor of
    one half keeps a single kiosk from hammering a hub that is down.

    >>> [backoff_delay(n, rand=0.0) for n in range(5)]
    [0.0, 0.5, 1.0, 2.0, 4.0]
    """
    if failures <= 0:
        return 0.0
    rand = min(max(rand, 0.0), 1.0)
    # Cap the exponent: 2**failures overflows a float long before a kiosk
    # gives up, and the cap has been reached by then anyway.
    ceiling = min(cap_s, base_s * 2.0 ** min(failures - 1, 64))
    return ceiling / 2.0 + ceiling / 2.0 * rand


def purge_before(now: dt.datetime, retention_s: float) -> str:
    """The acknowledgement time at or before which a local copy may go."""
    return (now - dt.timedelta(seconds=max(retention_s, 0))).isoformat(timespec="milliseconds")


def seconds_since(iso: str | None, now: dt.datetime) -> float | None:
    if not iso:
        return None
    try:
        then = dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return max(0.0, (now - then).total_seconds())


# -- transport ----------------------------------------------------------------


class HubUnreachable(Exception):
    """The hub could not be reached or did not answer usefully; try later.
    The message says why without any record content."""


class TokenRefused(HubUnreachable):
    """The hub refused this kiosk's token (revoked): it must enroll again."""


class CertificateChanged(HubUnreachable):
    """The hub presented another certificate than the one pinned at
    enrollment: a re-installed hub (enroll again) or an interception."""


CERT_CHANGED_MESSAGE = (
    "the hub presented a different TLS certificate from the one pinned at enrollment: if the hub was "
    "re-installed, enroll this kiosk again (`clinic-kiosk enroll URL CODE`); otherwise someone may be "
    "intercepting the connection. Nothing was sent"
)


@dataclass
class BatchOutcome:
    """What the hub said about one batch."""

    acked: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    #: The batch must be sent in smaller parts (too large, or refused as a
    #: whole without naming a record).
    split: bool = False
    #: The hub failed on the batch (a 5xx other than "unavailable"): one of
    #: its records may be what breaks it.
    failed: bool = False
    detail: str = ""


class Transport(Protocol):
    """Carries batches of outbox rows to the hub."""

    def submit(self, rows: list[dict]) -> BatchOutcome: ...

    def heartbeat(self, beat: p.Heartbeat) -> p.HeartbeatResponse: ...

    def fetch(self, path: str, max_bytes: int) -> bytes:
        """The body of ``GET path`` (a content bundle); raises
        :class:`HubUnreachable`, or :class:`ContentError` for a refusal."""
        ...

    def close(self) -> None: ...


def encode_batch(rows: list[dict]) -> dict:
    return {
        "records": [
            {"id": r["id"], "kind": r["kind"], "sealed": base64.b64encode(r["body"]).decode("ascii")}
            for r in rows
        ]
    }


def read_outcome(status: int, body: dict | None, sent_ids: list[str]) -> BatchOutcome:
    """Interprets the hub's answer to a batch (pure, so it is tested alone).

    Raises :class:`HubUnreachable` for answers that mean "try again later".
    """
    body = body if isinstance(body, dict) else {}
    detail = str(body.get("detail", ""))[:300]
    if status == 200:
        results = body.get("results")
        if not isinstance(results, list):
            raise HubUnreachable("hub answered 200 without results")
        sent = set(sent_ids)
        acked = [
            str(r.get("id"))
            for r in results
            if isinstance(r, dict) and r.get("status") in ("stored", "duplicate") and str(r.get("id")) in sent
        ]
        return BatchOutcome(acked=acked)
    if status in (401, 403):
        raise TokenRefused(f"hub refused this kiosk's token ({status}): enroll again")
    ids = [i for i in body.get("ids", []) if isinstance(i, str) and i in sent_ids] if status in (409, 422) else []
    if ids:
        return BatchOutcome(rejected=ids, detail=detail)
    if status in (400, 409, 413, 422):
        if len(sent_ids) == 1:
            return BatchOutcome(rejected=list(sent_ids), detail=detail)
        return BatchOutcome(split=True, detail=detail)
    if status >= 500 and status not in UNAVAILABLE:
        return BatchOutcome(failed=True, detail=f"hub answered {status}")
    raise HubUnreachable(f"hub answered {status}")


#: Answers that say the hub (or a proxy before it) is away or overloaded,
#: not that something in the batch broke it.
UNAVAILABLE = (502, 503, 504)


class HttpsTransport:
    """The sync API over HTTPS with the pinned certificate (httpx)."""

    def __init__(self, url: str, token: str, cert_pem: str, timeout_s: float = 15.0):
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.url,
            verify=pinned_ssl_context(cert_pem),
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            headers={"Authorization": f"Bearer {token}", "User-Agent": "clinic-kiosk"},
        )

    @classmethod
    def from_enrollment(cls, config) -> "HttpsTransport":
        info = read_enrollment(config.data_path)
        cert_path = Path(config.data_path) / HUB_CERT_FILE
        try:
            cert_pem = cert_path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError):
            raise NotEnrolled(
                f"{cert_path}: the pinned hub certificate is missing; enroll again with "
                "`clinic-kiosk enroll URL CODE`"
            ) from None
        if cert_fingerprint(cert_pem) != info["cert_sha256"]:
            raise NotEnrolled(f"{cert_path}: does not match the enrolled fingerprint; enroll again")
        url = config.hub.url or info["hub_url"]
        return cls(url, info["token"], cert_pem, config.hub.request_timeout_s)

    def submit(self, rows: list[dict]) -> BatchOutcome:
        ids = [r["id"] for r in rows]
        resp = self._post(p.RECORDS_PATH, encode_batch(rows))
        try:
            body = resp.json()
        except ValueError:
            body = None
        return read_outcome(resp.status_code, body, ids)

    def heartbeat(self, beat: p.Heartbeat) -> p.HeartbeatResponse:
        resp = self._post(p.HEARTBEAT_PATH, beat.model_dump(mode="json"))
        if resp.status_code in (401, 403):
            raise TokenRefused(f"hub refused this kiosk's token ({resp.status_code}): enroll again")
        if resp.status_code != 200:
            raise HubUnreachable(f"hub answered {resp.status_code} to the heartbeat")
        try:
            return p.HeartbeatResponse.model_validate_json(resp.content)
        except ValueError:
            raise HubUnreachable("hub answered the heartbeat with something this kiosk does not understand") from None

    def fetch(self, path: str, max_bytes: int) -> bytes:
        if not path.startswith(p.CONTENT_PATH + "/"):
            raise ContentError(f"content:url: {path[:80]!r} is not a content address of this hub")
        try:
            with self._client.stream("GET", path) as resp:
                if resp.status_code in (401, 403):
                    raise TokenRefused(f"hub refused this kiosk's token ({resp.status_code}): enroll again")
                if resp.status_code != 200:
                    raise ContentError(f"content:download: hub answered {resp.status_code}")
                chunks, size = [], 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ContentError(f"content:download: larger than {max_bytes} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.ConnectError as exc:
            if _is_cert_failure(exc):
                raise CertificateChanged(CERT_CHANGED_MESSAGE) from None
            raise HubUnreachable(f"hub not reachable: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"hub not reachable: {type(exc).__name__}") from None

    def _post(self, path: str, payload: dict) -> httpx.Response:
        try:
            return self._client.post(path, json=payload)
        except httpx.ConnectError as exc:
            if _is_cert_failure(exc):
                raise CertificateChanged(CERT_CHANGED_MESSAGE) from None
            raise HubUnreachable(f"hub not reachable: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"hub not reachable: {type(exc).__name__}") from None

    def close(self) -> None:
        self._client.close()


def _is_cert_failure(exc: BaseException) -> bool:
    """Whether a connection failed because the peer's certificate is not the pinned one."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


# -- the worker ---------------------------------------------------------------


@dataclass
class DrainResult:
    sent: int = 0
    rejected: int = 0
    set_aside: int = 0
    reachable: bool = True
    remaining: int = 0
    acknowledged: list[str] = field(default_factory=list)
    certificate_changed: bool = False
    error: str = ""


class SyncWorker:
    """Drains the outbox to the hub from a background thread.

    It opens its own :class:`Store` (own SQLite connection) on the kiosk's
    database, so it never shares a connection with the UI. Use :meth:`start`
    and :meth:`stop` around the app's life, :meth:`wake` after storing an
    alert to send it without waiting, or :meth:`drain` to sync in the
    calling thread (``clinic-kiosk sync --once``).

    Each cycle sends every waiting alert in a request of its own, then the
    heartbeat (the kiosk's facts and the alerts it still shows open; the
    answer says which of them staff acknowledged), then visits in batches.
    ``on_acknowledged(ids)`` is called, on the worker's thread, with the
    alerts staff have just acknowledged: the app hands it to the UI thread
    to turn the call light off.

    >>> worker = SyncWorker(config, on_acknowledged=print)   # doctest: +SKIP
    >>> worker.start(); ...; worker.stop()                   # doctest: +SKIP
    """

    def __init__(
        self,
        config,
        *,
        transport: Transport | None = None,
        store: Store | None = None,
        rng: random.Random | None = None,
        on_acknowledged: Callable[[list[str]], None] | None = None,
        content_version: str | None = None,
        on_content: Callable[[object], None] | None = None,
    ):
        self.config = config
        self._transport = transport
        self._store = store
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.on_acknowledged = on_acknowledged
        self._content_version = content_version
        self.on_content = on_content

    # The store and transport are made on first use, in the thread that
    # uses them.
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.config.database_path)
        return self._store

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = HttpsTransport.from_enrollment(self.config)
        return self._transport

    @property
    def content_version(self) -> str:
        if self._content_version is None:
            from .questionnaire import PackError, load_pack

            from .content import load_current_pack

            try:
                self._content_version = load_current_pack(self.config).content_version
            except PackError:
                self._content_version = ""
        return self._content_version

    def set_content_version(self, version: str) -> None:
        """What the kiosk asks now (the app calls it when it swaps packs between visits)."""
        self._content_version = version

    def drain(self, max_batches: int | None = None) -> DrainResult:
        """One sync cycle: alerts, heartbeat, then visits until the outbox is
        empty or the hub is away. ``max_batches`` bounds the record requests.

        Raises :class:`NotEnrolled` when the kiosk has no hub to send to.
        """
        try:
            transport = self.transport  # raises NotEnrolled before touching anything
        except NotEnrolled:
            self.store.set_state(STATE_LAST_ATTEMPT, utcnow())
            raise
        store = self.store
        result = DrainResult()
        store.set_state(STATE_LAST_ATTEMPT, utcnow())
        budget = [max_batches]
        try:
            self._send(transport, result, budget, kinds=ALERT_KINDS, size=1)
            self._heartbeat(transport, result)
            self._send(transport, result, budget, kinds=("visit",), size=max(1, self.config.hub.batch_size))
        except HubUnreachable as exc:
            result.reachable = False
            result.certificate_changed = isinstance(exc, CertificateChanged)
            result.error = str(exc)
            log.warning("sync: %s; %d record(s) waiting", exc, store.sync_depth())
        if self.config.hub.retention_s > 0:
            store.purge_acked(purge_before(dt.datetime.now(dt.timezone.utc), self.config.hub.retention_s))
        store.set_state(STATE_REACHABLE, "1" if result.reachable else "0")
        store.set_state(STATE_CERT_CHANGED, "1" if result.certificate_changed else "0")
        store.set_state(STATE_LAST_ERROR, result.error)
        if result.reachable:
            store.set_state(STATE_LAST_SYNC, utcnow())
            self.failures = 0
        else:
            self.failures += 1
        result.remaining = store.sync_depth()
        if result.sent:
            log.info("sync: %d record(s) acknowledged, %d waiting", result.sent, result.remaining)
        return result

    def _send(self, transport: Transport, result: DrainResult, budget: list, *, kinds, size: int) -> None:
        """Sends records of ``kinds`` in requests of at most ``size``.

        A batch the hub fails on (5xx) or refuses as a whole is split; a
        record that fails alone is skipped for this cycle and, after
        ``hub.max_attempts`` failures, set aside, so one bad record never
        holds up the rest. Raises :class:`HubUnreachable` when the hub is away.
        """
        store = self.store
        skip: set[str] = set()
        while budget[0] is None or budget[0] > 0:
            rows = store.sync_pending(size, kinds=kinds, exclude=skip)
            if not rows:
                return
            if budget[0] is not None:
                budget[0] -= 1
            ids = [r["id"] for r in rows]
            outcome = transport.submit(rows)
            if outcome.failed:
                if len(rows) > 1:
                    size = max(1, len(rows) // 2)
                    continue
                skip.update(ids)
                aside = store.bump_attempts(ids, set_aside_after=self.config.hub.max_attempts)
                if aside:
                    result.set_aside += len(aside)
                    log.error("sync: set aside %d record(s) the hub failed on %d times (%s); kept on the "
                              "device", len(aside), self.config.hub.max_attempts, outcome.detail)
                continue
            if not (outcome.acked or outcome.rejected or outcome.split):
                # An answer that settles nothing: resending at once would loop.
                store.bump_attempts(ids)
                raise HubUnreachable("hub acknowledged none of the batch")
            store.mark_acked(outcome.acked, self.config.hub.retention_s)
            if outcome.rejected:
                store.mark_rejected(outcome.rejected)
                log.error(
                    "sync: hub refused %d record(s) for good (%s); kept on the device for export",
                    len(outcome.rejected), outcome.detail,
                )
            if outcome.split:
                size = max(1, len(rows) // 2)
            result.sent += len(outcome.acked)
            result.rejected += len(outcome.rejected)

    def _heartbeat(self, transport: Transport, result: DrainResult) -> None:
        """Reports the kiosk's facts; closes the alerts staff acknowledged."""
        store = self.store
        now = dt.datetime.now(dt.timezone.utc)
        oldest = seconds_since(store.oldest_pending_created(), now)
        gpio = _gpio_facts(store)
        beat = p.Heartbeat(
            audio=_gpio_facts(store, "audio"),
            queue_depth=store.sync_depth(),
            oldest_unsynced_s=round(oldest, 1) if oldest is not None else None,
            content_version=self.content_version[:200],
            gpio=gpio,
            open_alerts=store.open_alert_ids()[: p.MAX_BATCH],
            set_aside=store.rejected_count(),
            content_error=(store.get_state(STATE_CONTENT_ERROR) or "")[:500],
        )
        answer = transport.heartbeat(beat)
        self._take_content(transport, answer)
        closed = store.close_alerts(str(i) for i in answer.acknowledged)
        if closed:
            result.acknowledged = closed
            log.info("sync: staff acknowledged %d alert(s)", len(closed))
            if self.on_acknowledged is not None:
                try:
                    self.on_acknowledged(closed)
                except Exception:  # the light is the app's business; sync goes on
                    log.exception("sync: on_acknowledged callback failed")

    def _take_content(self, transport: Transport, answer: p.HeartbeatResponse) -> None:
        """Fetches, verifies and installs the published content when it is
        not what this kiosk has; a refusal keeps what it had and is reported
        (``content.error``, in ``status`` and on the next heartbeat)."""
        content = ContentStore(self.config.data_path)
        if answer.content_key and content.verify_key() is None:
            # Enrolled before the hub signed content: take the key once, over
            # the connection pinned to the hub's certificate at enrollment.
            try:
                content.save_verify_key(answer.content_key)
                log.warning("content: took the hub's content key over the pinned connection")
            except (ContentError, ValueError):
                log.error("content: the hub sent a malformed content key")
        offer = answer.content
        if offer is None:
            return
        current = content.current()
        if current is not None and current["sha256"] == offer.sha256:
            if self.store.get_state(STATE_CONTENT_ERROR):
                self.store.set_state(STATE_CONTENT_ERROR, "")  # e.g. rolled back to what it has
            return
        try:
            data = transport.fetch(offer.url, MAX_BUNDLE_BYTES)
            pack = content.install(data, offer.signature, offer.version, offer.sha256, config=self.config)
        except ContentError as exc:
            reason = "; ".join(exc.problems)[:500]
            if self.store.get_state(STATE_CONTENT_ERROR) != reason:
                log.error("content: refused %s, keeping %s: %s", offer.version[:80], self.content_version, reason)
            self.store.set_state(STATE_CONTENT_ERROR, reason)
            return
        self.store.set_state(STATE_CONTENT_ERROR, "")
        if self.on_content is None:
            self._content_version = pack.content_version
            return
        try:
            self.on_content(pack)
        except Exception:  # the swap is the app's business; sync goes on
            log.exception("sync: on_content callback failed")

    def next_wait(self, result: DrainResult | None) -> float:
        """Seconds until the next attempt after ``result``."""
        if result is not None and not result.reachable:
            return backoff_delay(
                self.failures,
                self._rng.random(),
                base_s=self.config.hub.backoff_base_s,
                cap_s=self.config.hub.backoff_max_s,
            )
        return self.config.hub.sync_interval_s

    def run(self) -> None:
        """The loop of the background thread (or of `clinic-kiosk sync`)."""
        while not self._stop.is_set():
            result: DrainResult | None
            try:
                result = self.drain()
            except NotEnrolled as exc:
                log.warning("sync: %s", exc)
                result = None
            except Exception:  # a bad moment (disk full, locked db) must not end sync for good
                log.exception("sync: unexpected failure; trying again later")
                self.failures += 1
                result = DrainResult(reachable=False)
            self._wake.wait(self.next_wait(result))
            self._wake.clear()
        self.close()

    def start(self) -> threading.Thread:
        """Starts the background thread (a daemon, so it never holds the app open)."""
        if self._thread and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="clinic-sync", daemon=True)
        self._thread.start()
        return self._thread

    def wake(self) -> None:
        """Asks for an attempt now (e.g. an alert was just stored)."""
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        if self._store is not None:
            self._store.close()
            self._store = None


def status_info(store: Store, config, now: dt.datetime | None = None) -> dict:
    """The sync part of `clinic-kiosk status`: no network, only what the
    worker found on its last real contact attempt, so the command answers at
    once even with the hub away."""
    now = now or dt.datetime.now(dt.timezone.utc)
    reachable = store.get_state(STATE_REACHABLE)
    try:
        info = read_enrollment(config.data_path)
    except NotEnrolled:
        info = None
    oldest = seconds_since(store.oldest_pending_created(), now)
    return {
        "queue_depth": store.depth(),
        "oldest_unsynced_s": round(oldest, 1) if oldest is not None else 0.0,
        "last_sync": store.get_state(STATE_LAST_SYNC),
        "last_attempt": store.get_state(STATE_LAST_ATTEMPT),
        "hub_reachable": None if reachable is None else reachable == "1",
        "hub_certificate_changed": store.get_state(STATE_CERT_CHANGED) == "1",
        "last_error": store.get_state(STATE_LAST_ERROR) or None,
        "open_alerts": store.open_alert_ids(),
        "enrolled": info is not None,
        "kiosk_id": info["kiosk_id"] if info else None,
        "set_aside": store.rejected_count(),
        "content_error": store.get_state(STATE_CONTENT_ERROR) or None,
    }


def _gpio_facts(store: Store, key: str = "gpio") -> dict:
    """What the running kiosk recorded about its GPIO, or under ``key`` its
    sound device (see kiosk.status)."""
    try:
        saved = json.loads(store.get_state(key) or "{}")
    except ValueError:
        return {}
    if not isinstance(saved, dict):
        return {}
    return {str(k)[:40]: v[:300] if isinstance(v, str) else v
            for k, v in saved.items() if isinstance(v, (str, bool, int, type(None)))}


# -- recovery -----------------------------------------------------------------


def recover_records(store: Store, private_key: bytes):
    """Yields (row, payload or None) for every record on the device, opened
    with the clinic's private key; None when a body does not open."""
    for row in store.all_records():
        try:
            payload = json.loads(open_sealed(private_key, row["body"]))
        except (CryptoError, ValueError):
            payload = None
        yield row, payload
