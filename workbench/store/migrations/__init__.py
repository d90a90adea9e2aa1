"""Named, ordered, append-only migrations, applied when a store is opened.

Each migration is a module ``mNNNN_name.py`` with ``NAME`` and ``upgrade(conn)``; add new ones to
``MIGRATIONS`` at the end and never edit an applied one. A store that has a migration this code does
not know was written by a newer workbench, and is refused rather than silently misread.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, select

from ...errors import SchemaTooNewError
from ...models import utcnow
from ..schema import migrations_table
from . import (
    m0001_initial,
    m0002_mining_state_export_hash,
    m0003_queue_indexes,
    m0004_calibration_rubric_version,
    m0005_candidate_search,
    m0007_serve_keys,
    m0008_import_state,
)

__all__ = ["MIGRATIONS", "applied", "migrate"]

MIGRATIONS = [
    m0001_initial,
    m0002_mining_state_export_hash,
    m0003_queue_indexes,
    m0004_calibration_rubric_version,
    m0005_candidate_search,
    m0007_serve_keys,
    m0008_import_state,
]


def applied(conn: Connection) -> list[str]:
    if not inspect(conn).has_table(migrations_table.name):
        return []
    return [row[0] for row in conn.execute(select(migrations_table.c.name))]


def migrate(conn: Connection, where: str) -> list[str]:
    """Apply pending migrations inside the caller's (locked) transaction; return the names applied."""
    migrations_table.create(conn, checkfirst=True)
    done = set(applied(conn))
    known = {m.NAME for m in MIGRATIONS}
    unknown = sorted(done - known)
    if unknown:
        raise SchemaTooNewError(
            f"store {where} was migrated by a newer workbench (unknown migration {unknown[-1]!r}); "
            "upgrade workbench to open it"
        )
    ran = []
    for migration in MIGRATIONS:
        if migration.NAME in done:
            continue
        migration.upgrade(conn)
        conn.execute(migrations_table.insert().values(name=migration.NAME, applied_at=utcnow()))
        ran.append(migration.NAME)
    return ran
