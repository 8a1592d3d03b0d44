"""A TCP proxy on 127.0.0.1 that breaks connections on purpose.

TLS passes through untouched (the kiosk still sees and pins the hub's
certificate); the proxy cannot read HTTP, so it faults by byte counts:

* ``cut``: forwards the first ``cut_at`` bytes from the kiosk, then closes
  both sides: the hub gets half a request and must store nothing.
* ``drop_ack``: forwards the whole request, and when the hub starts to answer
  (after its commit), closes both sides instead of passing the answer on: the
  hub has the batch, the kiosk never hears so.
* ``pass``: forwards everything.

Each new connection takes the next mode of the schedule, cyclically.
"""

from __future__ import annotations

import collections
import itertools
import select
import socket
import threading


class FaultyProxy:
    def __init__(self, target_port: int, schedule: list[str], cut_at: int = 3000, request_min: int = 3000):
        self.target = ("127.0.0.1", target_port)
        self.modes = itertools.cycle(schedule)
        self.cut_at = cut_at
        self.request_min = request_min
        self.faults: collections.Counter = collections.Counter()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                mode = next(self.modes)
            t = threading.Thread(target=self._pipe, args=(client, mode), daemon=True)
            t.start()
            self._threads.append(t)

    def _pipe(self, client: socket.socket, mode: str) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        sent_up = 0
        try:
            # Bounded: a connection lives at most ~60 s of idle polling.
            for _ in range(600):
                if self._stop.is_set():
                    return
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        if mode == "cut" and sent_up + len(data) >= self.cut_at:
                            upstream.sendall(data[: max(0, self.cut_at - sent_up)])
                            self._count("cut")
                            return
                        upstream.sendall(data)
                        sent_up += len(data)
                    else:
                        if mode == "drop_ack" and sent_up >= self.request_min:
                            self._count("drop_ack")
                            return
                        client.sendall(data)
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def _count(self, what: str) -> None:
        with self._lock:
            self.faults[what] += 1

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._accept.join(2)
        for t in self._threads:
            t.join(2)


class InterceptingProxy:
    """A machine in the middle: terminates the kiosk's TLS with a certificate
    of its own, relays every request to the real hub, and (with
    ``swap_key``) puts its own public key into the hub's answers, as an
    attacker who wants the kiosk to seal visits to it would. ``seen`` keeps
    every request body it relayed."""

    def __init__(self, target_url: str, workdir, swap_key: bytes | None = None):
        import base64
        import http.server
        import json
        import ssl

        import httpx

        from kiosk.hub.keys import HubFiles, create_tls_certificate

        files = HubFiles(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        create_tls_certificate(files)
        self.seen: list[bytes] = []
        upstream = httpx.Client(base_url=target_url, verify=False, timeout=10)
        proxy = self

        class Relay(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy.seen.append(body)
                resp = upstream.post(self.path, content=body, headers={"Content-Type": "application/json"})
                out = resp.content
                if swap_key is not None and resp.status_code == 200:
                    doc = json.loads(out)
                    if "public_key" in doc:
                        doc["public_key"] = base64.b64encode(swap_key).decode()
                        out = json.dumps(doc).encode()
                self.send_response(resp.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(files.tls_cert, files.tls_key)
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._upstream = upstream
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()
