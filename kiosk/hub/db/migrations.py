"""The hub's schema: the numbered :data:`MIGRATIONS`, and the one runner
that applies them, at start-up (:meth:`kiosk.hub.db.Database.migrate`) and
when a backup is restored (:mod:`kiosk.hub.backup`).

Each applied migration is recorded in ``hub_migrations``; the schema changes
only by adding a migration at the end of the list, never by editing one
that a hub may already have applied.

>>> from .backends import open_backend
>>> backend = open_backend("sqlite:///:memory:")
>>> migrate(backend) == names()
True
>>> migrate(backend), applied(backend) == names()
([], True)
"""

from __future__ import annotations

from .backends import Backend, utcnow

# Each migration is a list of statements valid on both SQLite and PostgreSQL.
MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "001_initial",
        [
            """create table kiosk_tokens (
                token_hash text primary key,
                kiosk_id text not null,
                created_at text not null,
                revoked_at text
            )""",
            "create index kiosk_tokens_kiosk on kiosk_tokens (kiosk_id)",
            """create table enroll_codes (
                code_hash text primary key,
                created_at text not null,
                expires_at text not null,
                used_at text,
                used_by text
            )""",
            """create table users (
                name text primary key,
                role text not null,
                password_hash text not null,
                created_at text not null
            )""",
            # One row per record a kiosk submitted, keyed by its UUID; digest
            # is of the decrypted body, to tell an identical resend from a
            # different record reusing the id.
            """create table records (
                id text primary key,
                kind text not null,
                kiosk_id text not null,
                digest text not null,
                received_at text not null,
                intake_id text,
                submitted_at text,
                payload text not null
            )""",
            "create index records_kind_submitted on records (kind, submitted_at)",
        ],
    ),
    (
        "002_kiosks_alert_acks",
        [
            # One row per enrolled kiosk: what it last reported (a
            # protocol.Heartbeat as JSON) and when it was last heard from.
            """create table kiosks (
                kiosk_id text primary key,
                name text not null default '',
                enrolled_at text not null,
                last_contact text,
                report text not null default '{}',
                revoked_at text
            )""",
            # Staff acknowledgement of an alert record (kind 'alert' or
            # 'staff-call'); the kiosk learns it through the heartbeat.
            """create table alert_acks (
                record_id text primary key,
                kiosk_id text not null,
                acknowledged_at text not null,
                acknowledged_by text not null
            )""",
        ],
    ),
    (
        "003_staff",
        [
            # Accounts are disabled, never deleted, so the audit log keeps
            # naming real accounts.
            "alter table users add column disabled_at text",
            # Failed logins per key ("user:NAME" or "addr:IP"): the lockout
            # counts both, whether or not the account exists.
            """create table login_failures (
                key text primary key,
                failures integer not null,
                first_at text not null,
                locked_until text
            )""",
            # Server-side sessions; the cookie holds a random token, the
            # table only its hash.
            """create table staff_sessions (
                token_hash text primary key,
                user_name text not null,
                csrf text not null,
                created_at text not null,
                last_seen text not null,
                ended_at text
            )""",
            # Append-only: the repository has no method that updates or
            # deletes a row of it.
            """create table audit (
                id text primary key,
                at text not null,
                user_name text not null,
                action text not null,
                target text not null,
                detail text not null default ''
            )""",
            "create index audit_at on audit (at)",
            """create table intake_reviews (
                intake_id text primary key,
                reviewed_at text not null,
                reviewed_by text not null
            )""",
            """create table hub_settings (
                key text primary key,
                value text not null
            )""",
            "create index records_received on records (received_at)",
        ],
    ),
    (
        "004_enrollment",
        [
            # Codes of the SPAKE2 enrollment (kiosk.protocol): keyed by the
            # code's public id, holding the derived password instead of the
            # code; ``attempts`` counts exchanges started, so a code that is
            # being guessed at is burned after a few.
            "drop table enroll_codes",
            """create table enrollment_codes (
                code_id text primary key,
                password text not null,
                created_at text not null,
                expires_at text not null,
                attempts integer not null default 0,
                used_at text,
                kiosk_id text
            )""",
            # One intake is one visit record, whatever record ids a kiosk uses.
            "create unique index records_intake_id on records (intake_id)",
        ],
    ),
    (
        "005_export_cells",
        [
            # A visit's CSV cells, made once when it is stored (see
            # kiosk.hub.export.table), so an export never parses payloads;
            # they go when the record goes. Checked at commit (deferred), so
            # a restore may load the tables in any order.
            """create table export_cells (
                id text primary key references records (id) on delete cascade
                    deferrable initially deferred,
                version integer not null,
                shape text,
                line text,
                notes text,
                problem text
            )""",
            # Each distinct set of linkIds a visit answered, once.
            "create table export_shapes (shape text primary key, link_ids text not null)",
            # Lets an export walk the visits in order from the index alone;
            # it serves every query the narrower index served.
            "create index records_kind_submitted_id on records (kind, submitted_at, id)",
            "drop index records_kind_submitted",
        ],
    ),
    (
        "006_content_versions",
        [
            # Every uploaded content version, kept for good (kiosk.hub.content):
            # a visit names the version it was asked with, and its page shows
            # that version's wording. One row at most has published = 1.
            """create table content_versions (
                id text primary key,
                content_version text not null,
                uploaded_at text not null,
                uploaded_by text not null,
                sha256 text not null,
                signature text not null,
                bundle text not null,
                published_at text,
                published integer not null default 0
            )""",
            "create index content_versions_version on content_versions (content_version)",
        ],
    ),
    # Issue 19, returning patients: see kiosk.hub.db.patients.
    (
        "007_patients",
        [
            # One row per patient: a random id, the reference exports carry, the
            # code the patient may type on the kiosk next time (shown to staff
            # on the intake page), and the birth date of the first visit.
            """create table patients (
                id text primary key,
                ref text not null unique,
                return_code text not null unique,
                birth_date text,
                created_at text not null
            )""",
            # A course of care: a first visit starts one, returning visits join
            # the patient's latest.
            """create table episodes (
                id text primary key,
                patient_id text not null,
                started_at text not null
            )""",
            "create index episodes_patient on episodes (patient_id, started_at)",
            # Which patient and episode a visit record belongs to, and how that
            # was decided; goes with the record. ``patient_ref`` repeats the
            # patient's reference, so an export joins one table. ``measures`` holds the visit's
            # numeric scores with their MCID (see :func:`measures_of`), so the
            # trend and outcome pages never parse payloads. ``previous`` is the
            # link before the last staff change, for "undo".
            """create table visit_links (
                record_id text primary key references records (id) on delete cascade
                    deferrable initially deferred,
                intake_id text,
                patient_id text not null,
                patient_ref text,
                episode_id text not null,
                submitted_at text,
                name_key text,
                birth_date text,
                visit_kind text,
                method text not null,
                state text not null,
                decided_by text,
                decided_at text,
                previous text,
                measures text not null default '[]'
            )""",
            "create index visit_links_patient on visit_links (patient_id, submitted_at)",
            "create index visit_links_episode on visit_links (episode_id, submitted_at)",
            "create index visit_links_identity on visit_links (name_key, birth_date)",
            "create index visit_links_intake on visit_links (intake_id)",
        ],
    ),
]


def names() -> list[str]:
    """The names of every migration this hub knows, in order."""
    return [name for name, _ in MIGRATIONS]


def migrate(backend: Backend) -> list[str]:
    """Applies the pending migrations, each in a transaction of its own;
    returns the names applied."""
    done: list[str] = []
    with backend.transaction() as tx:
        tx.execute("create table if not exists hub_migrations (name text primary key, applied_at text not null)")
    for name, statements in MIGRATIONS:
        with backend.transaction() as tx:
            if tx.execute("select 1 from hub_migrations where name = ?", [name]).fetchone():
                continue
            for sql in statements:
                tx.execute(sql)
            tx.execute("insert into hub_migrations (name, applied_at) values (?, ?)", [name, utcnow()])
        done.append(name)
    return done


def applied(backend: Backend) -> list[str]:
    """The names of the migrations applied to ``backend``'s database, sorted."""
    with backend.transaction() as tx:
        return [n for (n,) in tx.execute("select name from hub_migrations order by name").fetchall()]
