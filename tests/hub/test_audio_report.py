"""A kiosk's read-aloud device reaches the hub's Kiosks page with the
heartbeat: a real hub on 127.0.0.1, a real enrolled kiosk, a real login."""

from __future__ import annotations

import html
import json
import re

import httpx

from kiosk.crypto import sealer_for
from kiosk.store import Store
from kiosk.sync import SyncWorker

from .conftest import enroll_kiosk

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def admin_client(hub, password: str = "correct horse 1") -> httpx.Client:
    assert hub.cli("user", "add", "boss", "--role", "admin", input=password + "\n").exit_code == 0
    client = httpx.Client(base_url=hub.url, verify=False, timeout=10)
    token = CSRF.search(client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "boss", "password": password, "csrf": token})
    assert r.status_code == 303, r.text
    return client


def audio_cell(client: httpx.Client) -> str:
    page = client.get("/admin/kiosks")
    assert page.status_code == 200
    assert '<th scope="col">Audio</th>' in page.text
    row = next(r for r in page.text.split("<tr>") if "kiosk-1" in r)
    return html.unescape(re.findall(r"<td>(.*?)</td>", row, re.S)[6])


def test_the_sound_device_and_its_health_reach_the_kiosks_page(sqlite_hub, tmp_path):
    cfg = enroll_kiosk(sqlite_hub, tmp_path / "kiosk")
    store = Store.open(cfg.database_path, sealer_for(cfg))
    client = admin_client(sqlite_hub)
    try:
        # What the running kiosk records when it looks for its sound device.
        store.set_state("audio", json.dumps({"device": "plughw:CARD=Headphones", "ok": False,
                                             "message": "no sound card found", "read_aloud": True}))
        assert SyncWorker(cfg, store=store).drain().reachable
        assert audio_cell(client) == "plughw:CARD=Headphones: not working: no sound card found, read-aloud on at start"
        store.set_state("audio", json.dumps({"device": "plughw:CARD=Headphones", "ok": True, "message": "ready",
                                             "read_aloud": False}))
        SyncWorker(cfg, store=store).drain()
        assert audio_cell(client) == "plughw:CARD=Headphones: ok"
    finally:
        client.close()
        store.close()
