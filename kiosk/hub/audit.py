"""The hub's audit log: who did what to which intake, export or account,
and when. Append-only: ``db.accounts`` can add entries and read them, and
nothing in the hub updates or deletes one.

Actions (``target`` in brackets):

=================  ==========================================================
login              a staff login [the account]
login.failed       a refused login [the name typed, cut to 64 characters]
logout             [the account]
intake.view        an intake page or its print view [intake id]
intake.review      "mark reviewed" [intake id]
alert.ack          an alert acknowledged [alert record id]
export             a download [format and date range]
user.add           [account], user.disable [account]
kiosk.enroll-code  a code issued [first 4 characters], kiosk.revoke [kiosk id]
retention.set      [days], retention.delete [how many intakes and records]
patient.view       a patient's page [patient reference]
patient.confirm    a match confirmed [intake id; the reference in detail]
patient.link       a visit moved to another patient [intake id; "P-A -> P-B"]
patient.split      a visit made a patient of its own [intake id], patient.undo
patient.export     a patient's records [reference], patient.erase [reference]
=================  ==========================================================

>>> entry = {"at": "2026-11-22T09:00:00.000+00:00", "user": "ana", "action": "login", "target": "ana"}
>>> json_line(entry)
'{"at": "2026-11-22T09:00:00.000+00:00", "user": "ana", "action": "login", "target": "ana"}'
"""

from __future__ import annotations

import json
import logging

from .db import AccountsRepository

log = logging.getLogger(__name__)


def record(accounts: AccountsRepository, user: str, action: str, target: str, detail: str = "") -> None:
    """Appends one entry. Targets are ids and account names, never what a
    patient entered, so the log line below is safe too."""
    accounts.add_audit(user[:64], action, target[:200], detail[:500])
    log.info("audit: %s %s %s", user[:64], action, target[:200])


def json_line(entry: dict) -> str:
    """One entry as the JSON line `clinic-hub audit` prints."""
    return json.dumps({k: v for k, v in entry.items() if v != "" or k in ("at", "user", "action", "target")})
