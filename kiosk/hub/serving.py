"""How `clinic-hub serve` runs the app: uvicorn with bounded connections.

uvicorn bounds concurrency (``limit_concurrency``), the size of a request
head (``h11_max_incomplete_event_size``) and idle keep-alive
(``timeout_keep_alive``), but it waits for ever for a client that finished
the TLS handshake and then sends nothing, or sends its headers or body a
byte at a time. :class:`DeadlineProtocol` adds that deadline: a request must
arrive whole (head and body) within ``request_deadline_s`` of the
connection being made, or of the previous answer, else the connection is
closed. A slow or idle client then costs the hub a few seconds, not a slot
for ever; and one address may hold at most ``MAX_PER_CLIENT`` connections.

Refused and timed-out connections are aborted, not closed politely: a polite
TLS close waits for the peer's close_notify (up to 30 s, asyncio's shutdown
timeout), and all that while the connection still counts against
``limit_concurrency``. An attacker who never answers would keep every slot
full by reconnecting. Aborting frees the slot at once, so a few machines
flooding the hub leave room for staff and kiosks.
"""

from __future__ import annotations

import asyncio
import collections

from uvicorn.protocols.http.h11_impl import H11Protocol

#: Most connections and requests in flight at once; beyond it uvicorn answers 503 (a kiosk backs off).
LIMIT_CONCURRENCY = 128
#: Seconds an idle keep-alive connection stays open after an answer.
KEEP_ALIVE_S = 5
#: Largest request head (request line and headers) uvicorn buffers.
MAX_HEAD_BYTES = 16 * 1024
#: Seconds a client has to send a whole request.
REQUEST_DEADLINE_S = 10.0
#: Most connections open at once from one address (a kiosk needs one, a
#: browser at most six), so even four flooding machines leave half of
#: ``LIMIT_CONCURRENCY`` for everyone else.
MAX_PER_CLIENT = 16


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each whole request and a
    cap on connections per client address."""

    request_deadline_s = REQUEST_DEADLINE_S
    max_per_client = MAX_PER_CLIENT
    #: Open connections per client address (all protocol instances share the one event loop).
    _per_client: collections.Counter = collections.Counter()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._host = self.client[0] if self.client else ""
        self._per_client[self._host] += 1
        if self._per_client[self._host] > self.max_per_client:
            transport.abort()  # frees the slot now: see the module's docstring
            return
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._per_client[self._host] -= 1
        if self._per_client[self._host] <= 0:
            del self._per_client[self._host]
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.request_deadline_s, self._on_deadline)

    def _disarm(self) -> None:
        handle = getattr(self, "_deadline", None)
        if handle is not None:
            handle.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        cycle = self.cycle
        waiting_for_head = cycle is None or cycle.response_complete
        waiting_for_body = cycle is not None and not cycle.response_complete and cycle.more_body
        if waiting_for_head or waiting_for_body:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
            self.transport.abort()


def protocol_class(request_deadline_s: float = REQUEST_DEADLINE_S) -> type[DeadlineProtocol]:
    """:class:`DeadlineProtocol` with another deadline (tests use a short one)."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {
        "request_deadline_s": request_deadline_s, "_per_client": collections.Counter(),
    })


def uvicorn_settings(request_deadline_s: float = REQUEST_DEADLINE_S) -> dict:
    """The keyword arguments `serve` passes to ``uvicorn.run`` for its limits."""
    return {
        "http": protocol_class(request_deadline_s),
        "limit_concurrency": LIMIT_CONCURRENCY,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }

