"""`clinic-hub backup` and `clinic-hub restore`: the whole hub in one file.

A backup holds what a new machine needs to take over from a lost one: the
clinic key pair (without it no stored visit can be opened), the TLS key and
certificate (so enrolled kiosks keep trusting the hub), the settings and the
database. It is one file, encrypted with a passphrase::

    clinic-hub backup --out /media/usb/hub-2026-11-22.backup    # asks for a passphrase
    clinic-hub restore /media/usb/hub-2026-11-22.backup --data /var/lib/clinic-hub

The passphrase is read from standard input when that is not a terminal (the
first line), else prompted for; it is never a command-line argument, where
other users could read it from the process list.

File layout: ``MAGIC``, a 16-byte argon2id salt, the KDF's opslimit and
memlimit (8 bytes each, big-endian), then a ``nacl.secret.SecretBox`` message
(nonce included) holding a tar archive::

    manifest.json        format, backend, migrations, files and tables
    files/NAME           every top-level file of the data folder except the
                         SQLite database and its journals (keys, certificate,
                         hub.json, ...)
    sqlite/hub.db        SQLite: a consistent copy made with the backup API
    postgresql/T.copy    PostgreSQL: each table of the hub's schema, as
                         ``COPY T (columns) TO STDOUT`` text, all read in one
                         REPEATABLE READ snapshot

A PostgreSQL backup holds the rows of the hub's tables in the connection's
current schema, not roles, grants or server settings: restore creates the
tables by the hub's own migrations, then loads the rows. A backup restores
onto the same kind of database it was made from.

Restore decrypts and checks everything before touching anything, so a wrong
passphrase or a damaged file changes nothing; it refuses to replace an
existing hub unless ``--force``, and with ``--force`` the files it replaces
are moved aside into ``DIR/before-restore-TIMESTAMP/``, not deleted.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import struct
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from ..crypto import write_secret_file
from ..protocol import redact_url
from .db import migrations, open_backend
from .keys import HubFiles, NotInitialised, database_url, require_init

MAGIC = b"clinic-hub backup v1\n"
FORMAT = 1
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES
# MODERATE: ~256 MiB and about a second on a Pi 4; a backup is made and
# restored rarely, and may be kept off-site where it can be attacked at leisure.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
# A hostile file must not make restore allocate without bound.
MAX_MEMLIMIT = 1 << 30
MAX_OPSLIMIT = 64
MIN_PASSPHRASE = 10
SQLITE_JOURNALS = ("", "-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup could not be made or restored; the message is one line."""


@dataclass
class Contents:
    """A decrypted backup: its manifest and its members by name."""

    manifest: dict
    members: dict[str, bytes]


# -- encryption ----------------------------------------------------------------


def _key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt,
        opslimit=opslimit, memlimit=memlimit,
    )


def encrypt(plaintext: bytes, passphrase: str) -> bytes:
    """The backup file's bytes for ``plaintext``."""
    salt = nacl.utils.random(SALT_BYTES)
    box = nacl.secret.SecretBox(_key(passphrase, salt, OPSLIMIT, MEMLIMIT))
    return MAGIC + salt + struct.pack(">QQ", OPSLIMIT, MEMLIMIT) + bytes(box.encrypt(plaintext))


def decrypt(blob: bytes, passphrase: str, where: str) -> bytes:
    """The plaintext of a backup file; :class:`BackupError` naming ``where``
    when it is not a backup, or the passphrase is wrong, or it was altered."""
    head = len(MAGIC) + SALT_BYTES + 16
    if not blob.startswith(MAGIC) or len(blob) < head:
        raise BackupError(f"{where}: not a clinic-hub backup file")
    salt = blob[len(MAGIC):len(MAGIC) + SALT_BYTES]
    opslimit, memlimit = struct.unpack(">QQ", blob[head - 16:head])
    if not (1 <= opslimit <= MAX_OPSLIMIT and 8192 <= memlimit <= MAX_MEMLIMIT):
        raise BackupError(f"{where}: damaged backup file (key-derivation parameters out of range)")
    box = nacl.secret.SecretBox(_key(passphrase, salt, opslimit, memlimit))
    try:
        return box.decrypt(blob[head:])
    except nacl.exceptions.CryptoError:
        raise BackupError(f"{where}: wrong passphrase, or the file is damaged; nothing was changed") from None


# -- making a backup -------------------------------------------------------------


def _sqlite_path(url: str) -> Path | None:
    return Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None


def _sqlite_copy(path: Path) -> bytes:
    """A consistent copy of a live SQLite database (the hub may be serving)."""
    if not path.exists():
        raise BackupError(f"{path}: database file not found")
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / "hub.db"
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return dest.read_bytes()


def _pg_tables(cur) -> list[tuple[str, list[str]]]:
    cur.execute(
        "select table_name from information_schema.tables"
        " where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name"
    )
    tables = []
    for (name,) in cur.fetchall():
        cur.execute(
            "select column_name from information_schema.columns"
            " where table_schema = current_schema() and table_name = %s order by ordinal_position",
            (name,),
        )
        tables.append((name, [c for (c,) in cur.fetchall()]))
    return tables


def _pg_dump(url: str) -> tuple[list[dict], dict[str, bytes]]:
    """Every table of the hub's schema as COPY text, from one snapshot."""
    import psycopg
    from psycopg import sql

    members: dict[str, bytes] = {}
    listing: list[dict] = []
    with psycopg.connect(url, connect_timeout=10) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cur:
            for name, columns in _pg_tables(cur):
                buf = io.BytesIO()
                stmt = sql.SQL("copy {} ({}) to stdout").format(
                    sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, columns)))
                with cur.copy(stmt) as copy:
                    for chunk in copy:
                        buf.write(chunk)
                members[f"postgresql/{name}.copy"] = buf.getvalue()
                listing.append({"name": name, "columns": columns})
    return listing, members


def _migrations_applied(url: str) -> list[str]:
    backend = open_backend(url)
    try:
        return migrations.applied(backend)
    finally:
        backend.close()


def make_backup(files: HubFiles, db_override: str | None, exclude: Path | None = None) -> bytes:
    """The plaintext tar archive of the hub in ``files.data``."""
    require_init(files)
    url = database_url(files, db_override)
    sqlite_path = _sqlite_path(url)
    skip = {files.data / f"{sqlite_path.name}{s}" for s in SQLITE_JOURNALS} if sqlite_path else set()
    members: dict[str, bytes] = {}
    names = []
    for path in sorted(files.data.iterdir()):
        if path.is_file() and not path.is_symlink() and path not in skip and path != exclude \
                and not path.name.startswith("."):
            members[f"files/{path.name}"] = path.read_bytes()
            names.append(path.name)
    manifest: dict = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "files": names,
        "data": str(files.data.resolve()),
        "migrations": _migrations_applied(url),
    }
    if sqlite_path:
        manifest["backend"] = "sqlite"
        members["sqlite/hub.db"] = _sqlite_copy(sqlite_path)
    else:
        manifest["backend"] = "postgresql"
        manifest["tables"], pg_members = _pg_dump(url)
        members.update(pg_members)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in [("manifest.json", json.dumps(manifest, indent=2).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# -- restoring -------------------------------------------------------------------


def read_contents(plaintext: bytes, where: str) -> Contents:
    """The members of a decrypted backup, checked for what restore needs."""
    try:
        with tarfile.open(fileobj=io.BytesIO(plaintext), mode="r:gz") as tar:
            members = {}
            for info in tar.getmembers():
                if not info.isfile():
                    continue
                fh = tar.extractfile(info)
                members[info.name] = fh.read() if fh else b""
        manifest = json.loads(members.pop("manifest.json"))
    except (tarfile.TarError, KeyError, ValueError, OSError):
        raise BackupError(f"{where}: damaged backup (its archive or manifest cannot be read)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{where}: backup format {manifest.get('format')!r} is not supported (expected {FORMAT})")
    known = set(migrations.names())
    newer = [m for m in manifest.get("migrations", []) if m not in known]
    if newer:
        raise BackupError(f"{where}: made by a newer clinic-hub (database migration {newer[0]} unknown); "
                          "update clinic-hub first")
    for name in manifest.get("files", []):
        if "/" in name or name.startswith(".") or f"files/{name}" not in members:
            raise BackupError(f"{where}: damaged backup (file entry {name!r})")
    backend = manifest.get("backend")
    if backend == "sqlite" and "sqlite/hub.db" not in members:
        raise BackupError(f"{where}: damaged backup (sqlite/hub.db missing)")
    if backend == "postgresql":
        for table in manifest.get("tables", []):
            if f"postgresql/{table['name']}.copy" not in members:
                raise BackupError(f"{where}: damaged backup (table {table['name']} missing)")
    elif backend != "sqlite":
        raise BackupError(f"{where}: damaged backup (unknown database kind {backend!r})")
    return Contents(manifest, members)


def _target_url(contents: Contents, data: Path, db_override: str | None) -> str:
    """Where the database goes: ``--db``, else what the restored hub.json says."""
    if db_override:
        url = db_override
    else:
        saved = contents.members.get("files/hub.json")
        try:
            url = (json.loads(saved) if saved else {}).get("db") or ""
        except ValueError:
            url = ""
        url = url or f"sqlite:///{HubFiles(data).sqlite}"
        # A database kept in the old data folder moves with it to the new one.
        old_path, old_data = _sqlite_path(url), Path(contents.manifest.get("data", "/nonexistent"))
        if old_path and old_path.parent == old_data:
            url = f"sqlite:///{data / old_path.name}"
    kind = "sqlite" if url.startswith("sqlite:///") else "postgresql"
    if kind != contents.manifest["backend"]:
        raise BackupError(
            f"backup is of a {contents.manifest['backend']} hub but the target database is {kind} "
            f"({redact_url(url)}); a backup restores onto the same kind of database"
        )
    return url


def _pg_existing_rows(url: str, tables: list[str]) -> list[str]:
    import psycopg
    from psycopg import sql

    busy = []
    with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn, conn.cursor() as cur:
        present = {name for name, _ in _pg_tables(cur)}
        for name in tables:
            if name in present and name != "hub_migrations":
                cur.execute(sql.SQL("select exists (select 1 from {})").format(sql.Identifier(name)))
                if cur.fetchone()[0]:
                    busy.append(name)
    return busy


def _pg_load(url: str, contents: Contents) -> None:
    """Creates the schema by the hub's migrations, then replaces the rows of
    every table in the backup, in one transaction."""
    import psycopg
    from psycopg import sql

    backend = open_backend(url)
    try:
        migrations.migrate(backend)
    finally:
        backend.close()
    with psycopg.connect(url, connect_timeout=10) as conn, conn.transaction(), conn.cursor() as cur:
        present = dict(_pg_tables(cur))
        for table in contents.manifest["tables"]:
            name = table["name"]
            # The target's own migrations table says what schema it now has.
            if name == "hub_migrations" or name not in present:
                continue
            columns = [c for c in table["columns"] if c in present[name]]
            cur.execute(sql.SQL("delete from {}").format(sql.Identifier(name)))
            stmt = sql.SQL("copy {} ({}) from stdin").format(
                sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, table["columns"])))
            if columns != table["columns"]:
                raise BackupError(f"table {name}: columns {sorted(set(table['columns']) - set(columns))} "
                                  "of the backup are not in this hub's schema")
            with cur.copy(stmt) as copy:
                copy.write(contents.members[f"postgresql/{name}.copy"])
            # Serial columns continue after the restored rows.
            for column in columns:
                cur.execute("select pg_get_serial_sequence(%s, %s)", (name, column))
                seq = cur.fetchone()[0]
                if seq:
                    cur.execute(sql.SQL("select setval(%s, coalesce((select max({}) from {}), 0) + 1, false)")
                                .format(sql.Identifier(column), sql.Identifier(name)), (seq,))


def restore(contents: Contents, data: Path, db_override: str | None, force: bool) -> Path | None:
    """Puts the backup in place in ``data``; returns the folder the replaced
    files were moved to (``None`` when nothing was replaced)."""
    files = HubFiles(data)
    url = _target_url(contents, data, db_override)
    names = contents.manifest["files"]
    sqlite_path = _sqlite_path(url)
    replaced = [data / n for n in names]
    replaced += [files.private_key, files.public_key, files.tls_key, files.tls_cert, files.settings]
    if sqlite_path:
        replaced += [p for s in SQLITE_JOURNALS if (p := Path(f"{sqlite_path}{s}")).exists()]
        busy_tables: list[str] = []
    else:
        busy_tables = _pg_existing_rows(url, [t["name"] for t in contents.manifest["tables"]])
    replaced = sorted(set(p for p in replaced if p.exists()))
    if (replaced or busy_tables) and not force:
        what = ", ".join([str(p) for p in replaced] + [f"table {t} in {redact_url(url)}" for t in busy_tables])
        raise BackupError(f"{data}: a clinic hub is already here ({what}); "
                          "restore does not replace it without --force")

    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = data / f"before-restore-{stamp}" if replaced else None
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=data))
    try:
        for name in names:
            write_secret_file(staging / name, contents.members[f"files/{name}"])
        if db_override:
            write_secret_file(staging / "hub.json", json.dumps({"db": db_override}, indent=2) + "\n")
        if sqlite_path:
            write_secret_file(staging / "hub.db", contents.members["sqlite/hub.db"])
        else:
            _pg_load(url, contents)
        if aside:
            aside.mkdir(mode=0o700)
            for path in replaced:
                try:
                    shutil.move(str(path), aside / path.name)
                except FileNotFoundError:
                    # SQLite's -wal/-shm files go when the last connection
                    # to the old database closes; nothing is lost with them.
                    if not path.name.endswith(("-wal", "-shm")):
                        raise
        for item in staging.iterdir():
            if item.name == "hub.db":
                assert sqlite_path is not None
                sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(item), sqlite_path)
            else:
                os.replace(item, data / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return aside


# -- the commands ----------------------------------------------------------------


def read_passphrase(confirm: bool) -> str:
    """The first line of standard input when it is not a terminal, else a
    hidden prompt (asked twice when ``confirm``)."""
    if sys.stdin is not None and not sys.stdin.isatty():
        passphrase = sys.stdin.readline().rstrip("\r\n")
    else:
        passphrase = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm,
                                  err=True)
    if not passphrase:
        raise click.ClickException("no passphrase given (pipe one line into standard input, or type it)")
    return passphrase


def _database_error(exc: Exception, verb: str) -> None:
    """One line for a PostgreSQL failure (psycopg raises many kinds, all
    meaning the database could not be reached or used); re-raises the rest."""
    if type(exc).__module__.startswith("psycopg"):
        raise click.ClickException(f"cannot {verb} the database: {type(exc).__name__}: {exc}".splitlines()[0]) \
            from None
    raise exc


def add_commands(group: click.Group, data_option, db_option) -> None:
    """Adds `backup` and `restore` to ``group`` with the hub's own --data
    and --db options (passed in: cli.py defines them and imports this module)."""

    @click.command("backup")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="File to write the encrypted backup to.")
    @data_option
    @db_option
    def backup_command(out: Path, data: Path, db: str | None) -> None:
        """Writes the hub's keys, certificate, settings and database into one
        file encrypted with a passphrase (read from standard input or prompted).

        Keep it off the hub: on a USB stick in a locked drawer or on another
        machine; without the passphrase nobody can open it, not even you.
        """
        passphrase = read_passphrase(confirm=True)
        if len(passphrase) < MIN_PASSPHRASE:
            raise click.ClickException(f"the passphrase is shorter than {MIN_PASSPHRASE} characters")
        try:
            plaintext = make_backup(HubFiles(data), db, exclude=out.resolve())
        except (NotInitialised, BackupError) as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            raise click.ClickException(f"{data}: cannot read the database: {exc}") from None
        except Exception as exc:
            _database_error(exc, "read")
        try:
            write_secret_file(out, encrypt(plaintext, passphrase))
        except OSError as exc:
            raise click.ClickException(f"{out}: cannot write the backup: {exc.strerror}") from None
        click.echo(f"backup written to {out} ({out.stat().st_size} bytes); keep it and its passphrase apart",
                   err=True)


    @click.command("restore")
    @click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--force", is_flag=True, help="Replace an existing hub (its files are moved aside, not deleted).")
    @data_option
    @db_option
    def restore_command(backup_file: Path, force: bool, data: Path, db: str | None) -> None:
        """Restores a backup made by `clinic-hub backup` into --data (and --db).

        Refuses to replace an existing hub unless --force.
        """
        try:
            blob = backup_file.read_bytes()
        except OSError as exc:
            raise click.ClickException(f"{backup_file}: cannot read: {exc.strerror}") from None
        passphrase = read_passphrase(confirm=False)
        try:
            contents = read_contents(decrypt(blob, passphrase, str(backup_file)), str(backup_file))
            aside = restore(contents, data, db, force)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:
            _database_error(exc, "write")
        click.echo(f"hub restored into {data} from a backup of {contents.manifest['created_at']}")
        if aside:
            click.echo(f"the files it replaced are in {aside}")

    group.add_command(backup_command)
    group.add_command(restore_command)
