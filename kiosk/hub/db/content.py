"""Published content versions: the ``content_versions`` table.

Every uploaded version is kept for good (a visit names the version it was
asked with, and its page shows that version's wording); at most one is
published, the one kiosks fetch. The checks of an upload, and signing, are
:mod:`kiosk.hub.content`'s.

>>> from . import open_database
>>> db = open_database("sqlite:///:memory:")
>>> v = db.content.add("pack-1", b'{"bundle": 1}', "signature", "boss")
>>> db.content.publish(v.id), db.content.published().content_version
(True, 'pack-1')
>>> db.content.add("pack-1", b'{"bundle": 2}', "signature", "boss")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
kiosk.content.ContentError: pack.json:version: pack-1 is already stored with other content; raise the version ...
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ...protocol import CONTENT_PATH
from .backends import Backend, utcnow


@dataclass(frozen=True)
class ContentVersion:
    id: str
    content_version: str
    uploaded_at: str
    uploaded_by: str
    sha256: str
    signature: str
    published: bool
    published_at: str | None

    @property
    def url(self) -> str:
        return f"{CONTENT_PATH}/{self.id}"


_COLUMNS = "id, content_version, uploaded_at, uploaded_by, sha256, signature, published, published_at"


def _version(row) -> ContentVersion:
    return ContentVersion(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


class ContentRepository:
    """The ``content_versions`` table, over the hub's :class:`Backend`."""

    def __init__(self, backend: Backend):
        self.backend = backend

    def add(self, content_version: str, bundle: bytes, signature: str, user: str) -> ContentVersion:
        """Stores a version; the same bundle uploaded again is the same
        version. Raises :class:`ContentError` when ``content_version`` is
        already stored with other content (the version must be raised)."""
        sha = hashlib.sha256(bundle).hexdigest()
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_COLUMNS} from content_versions where content_version = ?",
                              [content_version]).fetchall()
            for row in rows:
                if row[4] == sha:
                    return _version(row)
            if rows:
                # Imported here: the hub's other processes (an export) need
                # nothing of the kiosk's content module.
                from ...content import ContentError

                raise ContentError(f"pack.json:version: {content_version} is already stored with other content; "
                                   "raise the version and upload again")
            vid = secrets.token_hex(8)
            tx.execute("insert into content_versions (id, content_version, uploaded_at, uploaded_by, sha256, "
                       "signature, bundle) values (?, ?, ?, ?, ?, ?, ?)",
                       [vid, content_version, utcnow(), user, sha, signature, bundle.decode("ascii")])
            row = tx.execute(f"select {_COLUMNS} from content_versions where id = ?", [vid]).fetchone()
        return _version(row)

    def versions(self) -> list[ContentVersion]:
        """Every version, newest first."""
        with self.backend.transaction() as tx:
            rows = tx.execute(f"select {_COLUMNS} from content_versions order by uploaded_at desc, id").fetchall()
        return [_version(r) for r in rows]

    def get(self, vid: str) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where id = ?", [vid]).fetchone()
        return _version(row) if row else None

    def by_content_version(self, content_version: str) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where content_version = ? "
                             "order by uploaded_at desc limit 1", [content_version]).fetchone()
        return _version(row) if row else None

    def bundle(self, vid: str) -> bytes | None:
        with self.backend.transaction() as tx:
            row = tx.execute("select bundle from content_versions where id = ?", [vid]).fetchone()
        return row[0].encode("ascii") if row else None

    def publish(self, vid: str) -> bool:
        """Makes ``vid`` the one version kiosks fetch; False when unknown."""
        with self.backend.transaction() as tx:
            if not tx.execute("select 1 from content_versions where id = ?", [vid]).fetchone():
                return False
            tx.execute("update content_versions set published = 0 where published = 1")
            tx.execute("update content_versions set published = 1, published_at = ? where id = ?", [utcnow(), vid])
        return True

    def published(self) -> ContentVersion | None:
        with self.backend.transaction() as tx:
            row = tx.execute(f"select {_COLUMNS} from content_versions where published = 1").fetchone()
        return _version(row) if row else None
