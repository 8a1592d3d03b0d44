"""The hub's data layer: one schema on SQLite (one clinic) or PostgreSQL (a
group), and one repository per area.

* :mod:`.backends`: the two databases behind one :class:`~.backends.Backend`
  (PostgreSQL through a :mod:`psycopg_pool` pool).
* :mod:`.migrations`: the numbered schema changes and their one runner, used
  at start-up and by :mod:`kiosk.hub.backup`.
* a repository per area, each owning its tables: ``db.accounts``
  (:mod:`.accounts`: staff accounts, lockout, sessions, audit log),
  ``db.kiosks`` (:mod:`.kiosks`: enrollment, device tokens, heartbeats),
  ``db.records`` (:mod:`.records`: submitted records, reviews, alert
  acknowledgements, export cells), ``db.content`` (:mod:`.content`: content
  versions), ``db.settings`` (:mod:`.settings`) and ``db.patients``
  (:mod:`.patients`: returning patients, episodes, which visit is whose;
  a visit is matched in the transaction that stores it).

Nothing here knows the export formats, the web pages or the CLI: what makes
a visit's CSV cells is passed in (:class:`~.records.CellFormat`).

>>> db = open_database("sqlite:///:memory:")
>>> db.records.count_records(), db.accounts.accounts(), db.kiosks.kiosk_rows()
(0, [], [])
>>> db.migrate()
[]
>>> db.close()
"""

from __future__ import annotations

from .accounts import Account, AccountsRepository, SessionRow
from .backends import Backend, DatabaseURLError, PostgresBackend, SQLiteBackend, Tx, open_backend, utcnow
from .content import ContentRepository, ContentVersion
from .kiosks import CodeRefused, KiosksRepository, hash_secret
from .migrations import MIGRATIONS, migrate
from .patients import PatientRepository, link_new_visit
from .records import CellFormat, Conflict, IncomingRecord, RecordsRepository, StoredRecord
from .settings import SettingsRepository

__all__ = [
    "Account", "AccountsRepository", "Backend", "CellFormat", "CodeRefused", "Conflict", "ContentRepository",
    "ContentVersion", "Database", "DatabaseURLError", "IncomingRecord", "KiosksRepository", "MIGRATIONS",
    "PatientRepository", "PostgresBackend", "RecordsRepository", "SQLiteBackend", "SessionRow", "SettingsRepository", "StoredRecord",
    "Tx", "hash_secret", "open_backend", "open_database", "utcnow",
]


class Database:
    """The hub's database: its back-end and one repository per area.

    ``cells`` is what makes a visit's CSV cells when it is stored (the
    export's ``kiosk.hub.export.table.CELLS``); without it, they are made
    by the first export that covers the visit. Close it (or use it as a
    context manager) to release the back-end's connections.
    """

    def __init__(self, backend: Backend, cells: CellFormat | None = None):
        self.backend = backend
        self.accounts = AccountsRepository(backend)
        self.kiosks = KiosksRepository(backend)
        self.records = RecordsRepository(backend, cells, on_visit_stored=link_new_visit)
        self.content = ContentRepository(backend)
        self.settings = SettingsRepository(backend)
        self.patients = PatientRepository(backend)

    def migrate(self) -> list[str]:
        """Applies pending migrations; returns the names applied."""
        return migrate(self.backend)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_database(url: str, cells: CellFormat | None = None, *, migrate: bool = True) -> Database:
    """Opens ``sqlite:///PATH`` or ``postgresql://...`` and (unless told
    not to) applies the pending migrations. Raises
    :class:`~.backends.DatabaseURLError` for another kind of URL, and the
    driver's own error when the database cannot be reached."""
    db = Database(open_backend(url), cells)
    if migrate:
        try:
            db.migrate()
        except BaseException:
            db.close()
            raise
    return db
