"""`clinic-hub`: set up and run the clinic hub.

    clinic-hub init --data /var/lib/clinic-hub
    clinic-hub serve --data /var/lib/clinic-hub --port 8443
    clinic-hub enroll-code
    clinic-hub user add reception --role staff < password.txt
    clinic-hub user list
    clinic-hub user disable reception
    clinic-hub audit --since 2026-11-01
    clinic-hub retention --days 365
    clinic-hub export --format fhir --since 2026-11-01 --until 2026-11-30 --out november.json
    clinic-hub revoke kiosk-3
    clinic-hub patient export P-7QF3K9XM --out patient.json
    clinic-hub patient erase P-7QF3K9XM

Errors are one line on standard error and exit 1 (2 for bad usage), never a
traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import sys
from pathlib import Path

import click

from ..protocol import cert_fingerprint, redact_text, redact_url
from . import audit as audit_log
from . import backup
from . import export as exports
from . import retention as retention_rule
from .auth import MIN_PASSWORD, ROLES, hash_password
from .db import Database, DatabaseURLError, open_database
from .export.table import CELLS
from .keys import (
    HubFiles,
    NotInitialised,
    content_signing_key,
    create_keys,
    create_tls_certificate,
    database_url,
    load_keys,
    require_init,
    save_settings,
)

DEFAULT_DATA = os.environ.get("CLINIC_HUB_DATA", "/var/lib/clinic-hub")

data_option = click.option(
    "--data",
    "data",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA,
    show_default=True,
    help="Directory of the hub's keys, certificate and SQLite database.",
)
db_option = click.option(
    "--db",
    "db",
    default=None,
    help="Database URL: sqlite:///PATH or postgresql://USER@HOST/NAME (default: SQLite in --data).",
)


def _database(files: HubFiles, db: str | None) -> Database:
    """The hub's database, migrated; it makes each visit's CSV cells as it
    stores it (the export's :data:`~kiosk.hub.export.table.CELLS`)."""
    url = database_url(files, db)
    try:
        database = open_database(url, cells=CELLS, migrate=False)
    except DatabaseURLError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # psycopg raises many kinds; all mean "cannot connect"
        raise click.ClickException(
            redact_text(f"cannot open database {redact_url(url)}: {type(exc).__name__}: {exc}", url).splitlines()[0]
        ) from None
    database.migrate()
    return database


def _open(data: Path, db: str | None) -> Database:
    """The database of an initialised hub in ``data``."""
    files = HubFiles(data)
    try:
        require_init(files)
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    return _database(files, db)


def _read_password(prompt_generated: bool) -> tuple[str, bool]:
    """The password from standard input; generated when stdin is a terminal
    or empty and ``prompt_generated`` allows it. Returns (password, generated)."""
    text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    password = text.strip("\r\n")
    if password:
        if len(password) < MIN_PASSWORD:
            raise click.ClickException(f"password from standard input is shorter than {MIN_PASSWORD} characters")
        return password, False
    if not prompt_generated:
        raise click.ClickException("no password on standard input (pipe one in, at least 8 characters)")
    return secrets.token_urlsafe(12), True


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def main(verbose: bool) -> None:
    """The clinic hub: receives kiosk submissions, serves staff."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
@data_option
@db_option
@click.option("--admin", default="admin", show_default=True, help="Name of the first admin account.")
def init(data: Path, db: str | None, admin: str) -> None:
    """Creates the clinic key pair, TLS certificate and first admin.

    The admin password is read from standard input; with none, one is
    generated and printed once.
    """
    files = HubFiles(data)
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    try:
        create_keys(files)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    fingerprint = create_tls_certificate(files)
    content_signing_key(files)
    if db:
        save_settings(files, db)
    database = _database(files, db)
    password, generated = _read_password(prompt_generated=True)
    try:
        database.accounts.add_user(admin, "admin", hash_password(password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    audit_log.record(database.accounts, _operator(), "user.add", admin, "admin")
    click.echo(f"clinic hub created in {data}")
    click.echo(f"TLS certificate SHA-256: {fingerprint}")
    if generated:
        click.echo(f"admin account {admin!r} password (shown once): {password}")
    else:
        click.echo(f"admin account {admin!r} created")


@main.command()
@data_option
@db_option
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option("--port", default=8443, show_default=True, type=click.IntRange(1, 65535))
@click.option("--request-timeout", "request_timeout", default=10.0, show_default=True,
              type=click.FloatRange(0.5, 300),
              help="Seconds a client has to send a whole request; slower or idle connections are closed.")
@click.option("--session-idle-minutes", default=30, show_default=True, type=click.IntRange(1, 24 * 60),
              help="Staff sessions end after this long without a request.")
def serve(data: Path, db: str | None, host: str, port: int, request_timeout: float,
          session_idle_minutes: int) -> None:
    """Serves the sync API and the staff web page over TLS (OpenAPI at /openapi.json)."""
    import uvicorn

    from .app import create_app
    from .deps import StaffSettings
    from .serving import uvicorn_settings

    files = HubFiles(data)
    try:
        require_init(files)
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    database = _database(files, db)
    private, public = load_keys(files)
    app = create_app(database, private, cert_fingerprint(files.tls_cert.read_bytes()), public,
                     StaffSettings(session_idle=dt.timedelta(minutes=session_idle_minutes)),
                     signing_key=content_signing_key(files))
    click.echo(f"clinic hub on https://{host}:{port} ({database.backend.name})", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_keyfile=str(files.tls_key),
        ssl_certfile=str(files.tls_cert),
        log_level="warning",
        # Access logs carry no patient data but are noise on a Pi's journal.
        access_log=False,
        **uvicorn_settings(request_timeout),
    )


@main.command("enroll-code")
@data_option
@db_option
@click.option("--valid-hours", default=24, show_default=True, type=click.IntRange(1, 24 * 14))
def enroll_code(data: Path, db: str | None, valid_hours: int) -> None:
    """Prints a one-time code for `clinic-kiosk enroll URL CODE`."""
    code = _open(data, db).kiosks.new_enroll_code(dt.timedelta(hours=valid_hours))
    click.echo(code)


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@data_option
@db_option
def user_add(name: str, role: str, data: Path, db: str | None) -> None:
    """Adds a staff account; the password is read from standard input."""
    accounts = _open(data, db).accounts
    password, _ = _read_password(prompt_generated=False)
    try:
        accounts.add_user(name, role, hash_password(password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    audit_log.record(accounts, _operator(), "user.add", name, role)
    click.echo(f"{role} account {name!r} added")


def _operator() -> str:
    """Who ran a command on the server, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@user.command("list")
@data_option
@db_option
def user_list(data: Path, db: str | None) -> None:
    """Lists the accounts: name, role, created, state."""
    for a in _open(data, db).accounts.accounts():
        state = f"disabled {a.disabled_at}" if a.disabled_at else "active"
        click.echo(f"{a.name}\t{a.role}\t{a.created_at}\t{state}")


@user.command("disable")
@click.argument("name")
@data_option
@db_option
def user_disable(name: str, data: Path, db: str | None) -> None:
    """Disables an account and ends its sessions (accounts are never deleted)."""
    accounts = _open(data, db).accounts
    if not accounts.disable_user(name):
        raise click.ClickException(f"no enabled account {name!r}")
    audit_log.record(accounts, _operator(), "user.disable", name)
    click.echo(f"account {name!r} disabled")


@main.command("audit")
@click.option("--since", default=None, help="Only entries on or after this date (YYYY-MM-DD).")
@data_option
@db_option
def audit_command(since: str | None, data: Path, db: str | None) -> None:
    """Prints the audit log as JSON lines (at, user, action, target), oldest first."""
    for entry in _open(data, db).accounts.audit_entries(_day(since, "--since")):
        click.echo(audit_log.json_line(entry))


@main.command("retention")
@click.option("--days", type=click.IntRange(1, retention_rule.MAX_DAYS), default=None,
              help="Set the period: intakes older than this many days are deleted.")
@click.option("--off", is_flag=True, help="Keep intakes forever.")
@click.option("--run", "run_now", is_flag=True, help="Delete what is due now (serve does it hourly).")
@data_option
@db_option
def retention_command(days: int | None, off: bool, run_now: bool, data: Path, db: str | None) -> None:
    """Shows or sets how long intakes stay on the hub."""
    if days is not None and off:
        raise click.UsageError("give --days or --off, not both")
    database = _open(data, db)
    if days is not None or off:
        retention_rule.set_days(database, None if off else days, _operator())
    current = retention_rule.days(database)
    click.echo(f"retention: {current} days" if current else "retention: off (intakes are kept)")
    if run_now:
        n = retention_rule.run(database, user=_operator())
        click.echo(f"{n} intake(s) deleted")


@main.command()
@click.argument("kiosk_id")
@data_option
@db_option
def revoke(kiosk_id: str, data: Path, db: str | None) -> None:
    """Revokes every device token of KIOSK_ID; it must enroll again."""
    n = _open(data, db).kiosks.revoke(kiosk_id)
    if n == 0:
        raise click.ClickException(f"kiosk {kiosk_id!r} has no live token")
    click.echo(f"revoked {n} token(s) of {kiosk_id}")


def _day(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option) from None


def _database_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    try:
        import psycopg
    except ImportError:  # a SQLite-only hub
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


def _deliver(chunks, out: Path | None, data: Path) -> None:
    """An export to ``out`` (privately, never into the data folder ``data``),
    or to standard output."""
    if out is None:
        _to_stdout(chunks)
    else:
        exports.write_file(out, chunks, data_dir=data)


def _to_stdout(chunks) -> None:
    stdout = sys.stdout.buffer
    try:
        for chunk in chunks:
            stdout.write(chunk)
        stdout.flush()
    except BrokenPipeError:
        # The reader (`| head`) has gone: stop quietly, as shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(list(exports.FORMATS)), default="csv", show_default=True)
@click.option("--since", default=None, help="Only intakes submitted on or after this day (YYYY-MM-DD).")
@click.option("--until", default=None, help="Only intakes submitted on or before this day (YYYY-MM-DD).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output); never inside the hub's data folder.")
@click.option("--patients", is_flag=True,
              help="fhir: add a Patient resource per matched patient, referenced by each response's subject.")
@data_option
@db_option
def export_command(fmt: str, since: str | None, until: str | None, out: Path | None, patients: bool, data: Path,
                   db: str | None) -> None:
    """Exports the intakes on the hub for staff: csv, json (JSON lines),
    fhir (an R4 Bundle of QuestionnaireResponses) or pdf (a page per intake).
    The CSV's patient_ref column (after the fixed ones) names each visit's
    patient; with --patients the FHIR Bundle holds a Patient per patient.

    The file is written privately (mode 0600) and appears only when
    complete. Records that cannot be read are left out with a warning.
    """
    since_day, until_day = _day(since, "--since"), _day(until, "--until")
    if out is None and fmt == "pdf" and sys.stdout.isatty():
        raise click.UsageError("a PDF cannot go to a terminal: add --out FILE.pdf")
    records = _open(data, db).records
    report = exports.Report()
    bar = None
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        bar.update(n - done)
        done = n

    try:
        if sys.stderr.isatty():
            total = records.count_visits(*exports.day_range(since_day, until_day))
            bar = click.progressbar(length=total, label=f"exporting {fmt}", file=sys.stderr)
        chunks = exports.stream(fmt, records, since_day, until_day, report=report,
                                progress=progress if bar else None, patients=patients)
        with bar or contextlib.nullcontext():
            _deliver(chunks, out, data)
    except exports.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    except _database_errors() as exc:
        # Nothing half-written is left (see export.write_file); say what
        # failed without a traceback.
        raise click.ClickException(
            f"the database failed during the export: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
    for line in report.lines():
        click.echo(line, err=True)
    click.echo(f"{report.exported} intake(s) exported", err=True)


@main.group()
def patient() -> None:
    """A patient's records on request (issue 19): export, erase."""


def _patient(database: Database, ref: str):
    found = database.patients.by_ref(ref)
    if found is None:
        raise click.ClickException(f"no patient with reference {ref[:40]!r} on this hub")
    return found


@patient.command("export")
@click.argument("ref")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output); never inside the hub's data folder.")
@data_option
@db_option
def patient_export(ref: str, out: Path | None, data: Path, db: str | None) -> None:
    """Exports everything of patient REF (a P-... reference or return code)
    as a FHIR R4 Bundle: their Patient and every QuestionnaireResponse."""
    database = _open(data, db)
    found = _patient(database, ref)
    report = exports.Report()
    chunks = exports.patient_stream(database.records, found.id, report)
    try:
        _deliver(chunks, out, data)
    except exports.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    audit_log.record(database.accounts, _operator(), "patient.export", found.ref, "fhir")
    click.echo(f"{report.exported} visit(s) of {found.ref} exported", err=True)


@patient.command("erase")
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@data_option
@db_option
def patient_erase(ref: str, yes: bool, data: Path, db: str | None) -> None:
    """Erases patient REF and everything of theirs from the hub: visits,
    alerts, reviews, episodes (audited, by reference only)."""
    database = _open(data, db)
    found = _patient(database, ref)
    if not yes and sys.stdin is not None and sys.stdin.isatty():
        click.confirm(f"erase {found.ref} and all their records for good?", abort=True)
    counts = database.patients.erase(found.id)
    audit_log.record(database.accounts, _operator(), "patient.erase", found.ref,
                     f"{counts['visits']} visit(s), {counts['alerts']} alert(s), {counts['intakes']} intake(s)")
    click.echo(f"erased {found.ref}: {counts['visits']} visit(s), {counts['alerts']} alert(s)")


backup.add_commands(main, data_option, db_option)


if __name__ == "__main__":
    main()
