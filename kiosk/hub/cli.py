"""`clinic-hub`: set up and run the clinic hub.

    clinic-hub init --data /var/lib/clinic-hub
    clinic-hub serve --data /var/lib/clinic-hub --port 8443
    clinic-hub enroll-code
    clinic-hub user add reception --role staff < password.txt
    clinic-hub export --format csv --since 2026-11-01 --out visits.csv
    clinic-hub revoke kiosk-3

Errors are one line on standard error and exit 1 (2 for bad usage), never a
traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import sys
from pathlib import Path

import click
import nacl.exceptions
import nacl.pwhash

from ..protocol import cert_fingerprint
from . import backup
from . import export as exports
from .db import DatabaseURLError, HubRepository, open_backend, redact_url
from .keys import (
    HubFiles,
    NotInitialised,
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


def hash_password(password: str) -> str:
    """argon2id through libsodium; the string carries its own parameters."""
    return nacl.pwhash.argon2id.str(password.encode("utf-8")).decode("ascii")


def verify_password(password: str, stored: str) -> bool:
    try:
        return nacl.pwhash.verify(stored.encode("ascii"), password.encode("utf-8"))
    except nacl.exceptions.InvalidkeyError:
        return False


def _repo(files: HubFiles, db: str | None) -> HubRepository:
    url = database_url(files, db)
    try:
        backend = open_backend(url)
    except DatabaseURLError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # psycopg raises many kinds; all mean "cannot connect"
        raise click.ClickException(
            f"cannot open database {redact_url(url)}: {type(exc).__name__}: {exc}".splitlines()[0]
        ) from None
    repo = HubRepository(backend)
    repo.migrate()
    return repo


def _open(data: Path, db: str | None) -> HubRepository:
    """The repository of an initialised hub in ``data``."""
    files = HubFiles(data)
    try:
        require_init(files)
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    return _repo(files, db)


def _read_password(prompt_generated: bool) -> tuple[str, bool]:
    """The password from standard input; generated when stdin is a terminal
    or empty and ``prompt_generated`` allows it. Returns (password, generated)."""
    text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    password = text.strip("\r\n")
    if password:
        if len(password) < 8:
            raise click.ClickException("password from standard input is shorter than 8 characters")
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
    if db:
        save_settings(files, db)
    repo = _repo(files, db)
    password, generated = _read_password(prompt_generated=True)
    try:
        repo.add_user(admin, "admin", hash_password(password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
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
def serve(data: Path, db: str | None, host: str, port: int) -> None:
    """Serves the sync API over TLS (OpenAPI at /openapi.json)."""
    import uvicorn

    from .app import create_app

    files = HubFiles(data)
    try:
        require_init(files)
    except NotInitialised as exc:
        raise click.ClickException(str(exc)) from None
    repo = _repo(files, db)
    private, public = load_keys(files)
    app = create_app(repo, private, cert_fingerprint(files.tls_cert.read_bytes()), public)
    click.echo(f"clinic hub on https://{host}:{port} ({repo.backend.name})", err=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_keyfile=str(files.tls_key),
        ssl_certfile=str(files.tls_cert),
        log_level="warning",
        # Access logs carry no patient data but are noise on a Pi's journal.
        access_log=False,
    )


@main.command("enroll-code")
@data_option
@db_option
@click.option("--valid-hours", default=24, show_default=True, type=click.IntRange(1, 24 * 14))
def enroll_code(data: Path, db: str | None, valid_hours: int) -> None:
    """Prints a one-time code for `clinic-kiosk enroll URL CODE`."""
    code = _open(data, db).new_enroll_code(dt.timedelta(hours=valid_hours))
    click.echo(code)


@main.group()
def user() -> None:
    """Staff accounts."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["staff", "admin"]), required=True)
@data_option
@db_option
def user_add(name: str, role: str, data: Path, db: str | None) -> None:
    """Adds a staff account; the password is read from standard input."""
    repo = _open(data, db)
    password, _ = _read_password(prompt_generated=False)
    try:
        repo.add_user(name, role, hash_password(password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{role} account {name!r} added")


@main.command()
@click.argument("kiosk_id")
@data_option
@db_option
def revoke(kiosk_id: str, data: Path, db: str | None) -> None:
    """Revokes every device token of KIOSK_ID; it must enroll again."""
    n = _open(data, db).revoke(kiosk_id)
    if n == 0:
        raise click.ClickException(f"kiosk {kiosk_id!r} has no live token")
    click.echo(f"revoked {n} token(s) of {kiosk_id}")


def _since(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--since") from None


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", *exports.FORMATS_LATER]), default="csv",
              show_default=True)
@click.option("--since", default=None, help="Only visits submitted on or after this date (YYYY-MM-DD).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: standard output).")
@data_option
@db_option
def export_command(fmt: str, since: str | None, out: Path | None, data: Path, db: str | None) -> None:
    """Exports the visits on the hub for staff."""
    if fmt != "csv":
        raise click.UsageError(f"export format {fmt!r} is not available yet; use --format csv")
    since_iso = _since(since)
    visits = _open(data, db).visits(since_iso)
    header, rows = exports.csv_table(visits)
    if out is None:
        n = exports.write_csv(sys.stdout, header, rows)
    else:
        tmp = out.with_name(f".{out.name}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if sys.stderr.isatty():
                with click.progressbar(rows, length=len(visits), label="exporting", file=sys.stderr) as bar:
                    n = exports.write_csv(fh, header, bar)
            else:
                n = exports.write_csv(fh, header, rows)
        os.replace(tmp, out)
    click.echo(f"{n} visit(s) exported", err=True)


backup.add_commands(main, data_option, db_option)


if __name__ == "__main__":
    main()
