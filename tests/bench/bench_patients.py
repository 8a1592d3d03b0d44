"""Returning-patient figures for `make bench` (issue 19).

* ``patient_page_ms_p95``: a real hub (SQLite, over loopback TLS) holding
  50 visits of one returning patient; the 95th percentile of the time a
  logged-in staff browser waits for that patient's page (trend plots, the
  change from the first visit, the visit table), over 200 requests.

Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from kiosk.config import Config
from kiosk.crypto import SealedBoxSealer
from kiosk.sync import enroll, pinned_ssl_context

from .bench_hub import REPO, _Hub

VISITS = 50
SAMPLES = 200
PASSWORD = "bench staff password"


def _visit(n: int, start: dt.datetime) -> dict:
    at = start + dt.timedelta(days=7 * n)
    peg = round(max(0.0, 7.0 - n * 0.1), 1)
    return {
        "intake_id": str(uuid.uuid4()), "kiosk_id": "bench", "status": "complete", "language": "en",
        "submitted_at": at.isoformat(timespec="milliseconds"), "visit_date": at.date().isoformat(),
        "content_version": "bench", "visit_kind": "first" if n == 0 else "returning", "return_code": None,
        "answers": {"given-name": "Bench", "family-name": "Patient", "dob": "1970-01-01", "pain-now": 7 - n % 5,
                    "peg-pain": 6, "peg-enjoyment": 6, "peg-activity": 6},
        "result": {"tier": "none", "codes": [], "scores": {
            "pain-now": 7 - n % 5, "peg": peg, "startback": {"total": 3, "psychosocial": 1, "risk": "low"}}},
        "summary": [],
        "display": {"languages": ["en"], "patient": {"name": "Bench Patient", "birth_date": "1970-01-01"},
                    "scores": [
                        {"id": "pain-now", "label": {"en": "Pain now"}, "value": 7 - n % 5, "fields": [],
                         "mcid": {"points": 2, "percent": 30}, "better": "lower"},
                        {"id": "peg", "label": {"en": "PEG"}, "value": peg, "fields": [],
                         "mcid": {"points": 2, "percent": 30}, "better": "lower"},
                        {"id": "startback", "label": {"en": "STarT Back"}, "value": None,
                         "fields": [{"id": "total", "value": 3}], "better": "lower"}]},
    }


def run() -> list[tuple[str, float, str]]:
    root = Path(tempfile.mkdtemp(prefix="bench-patients-"))
    hub = _Hub(root)
    subprocess.run([sys.executable, "-m", "kiosk.hub.cli", "user", "add", "bench", "--role", "staff",
                    "--data", str(hub.data)], input=PASSWORD + "\n", text=True, check=True,
                   capture_output=True, cwd=REPO)
    hub.start()
    try:
        cfg = Config().with_data_dir(root / "kiosk").replace("kiosk", kiosk_id="bench-patients")
        enroll(cfg, hub.url, hub.code())
        token = json.loads((cfg.data_path / "enrollment.json").read_text())["token"]
        cert = (cfg.data_path / "hub-cert.pem").read_text()
        sealer = SealedBoxSealer(hub.public)
        start = dt.datetime(2025, 1, 6, 9, tzinfo=dt.timezone.utc)
        visits = [_visit(n, start) for n in range(VISITS)]
        with httpx.Client(base_url=hub.url, verify=pinned_ssl_context(cert), timeout=60) as api:
            for v in visits:  # one by one, as a kiosk sends them, so each is matched to the last
                sealed = base64.b64encode(sealer.seal(json.dumps(v, sort_keys=True).encode())).decode()
                r = api.post("/v1/records", headers={"Authorization": f"Bearer {token}"},
                             json={"records": [{"id": v["intake_id"], "kind": "visit", "sealed": sealed}]})
                r.raise_for_status()
        with httpx.Client(base_url=hub.url, verify=False, timeout=60) as staff:
            form = staff.get("/login").text
            csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
            staff.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": csrf})
            intake = staff.get(f"/intakes/{visits[-1]['intake_id']}").text
            patient = re.search(r'href="/patients/([0-9a-f-]{36})"', intake).group(1)
            url = f"/patients/{patient}"
            page = staff.get(url)
            if page.status_code != 200 or page.text.count("<svg class=\"trend\"") != 3 or \
                    page.text.count("/intakes/") < VISITS:
                raise RuntimeError(f"patient page is not the 50-visit page: HTTP {page.status_code}")
            for _ in range(10):  # warm up
                staff.get(url)
            samples = []
            for _ in range(SAMPLES):
                t0 = time.perf_counter()
                r = staff.get(url)
                samples.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
    finally:
        hub.stop()
        shutil.rmtree(root, ignore_errors=True)
    p95 = statistics.quantiles(samples, n=100)[94]
    return [("patient_page_ms_p95", p95, "ms")]


if __name__ == "__main__":
    for name, value, unit in run():
        print(f"{name}: {value:.1f} {unit}")
