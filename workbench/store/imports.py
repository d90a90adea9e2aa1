"""What imports need from the store: where an import stopped (resume), which ids are already stored
(idempotence and the report), prompt ids by name and version, traces in id order (export), and the
Langfuse ids kept in imported traces' metadata (so scores find their trace).

The ``import_state`` table is defined here rather than in schema.py: it belongs to imports alone
(migration 0008).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, MetaData, String, Table, func, literal_column, select

from ..models import utcnow
from .engine import dialect_insert
from .schema import prompts, traces
from .types import JSONText, UTCDateTime

__all__ = [
    "clear_state",
    "existing_trace_ids",
    "import_state",
    "load_state",
    "metadata_ids",
    "prompt_index",
    "save_state",
    "trace_rows_after",
]

import_state = Table(
    "import_state",
    MetaData(),
    Column("source", String(500), primary_key=True),
    Column("state", JSONText(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

_IN_CHUNK = 500  # bound parameters per IN (...): well under SQLite's and PostgreSQL's limits


def load_state(conn: Connection, source: str) -> dict[str, Any] | None:
    """Where the import of ``source`` stopped (None: never started, or finished and cleared)."""
    row = conn.execute(select(import_state.c.state).where(import_state.c.source == source)).first()
    return None if row is None else dict(row.state)


def save_state(conn: Connection, source: str, state: dict[str, Any]) -> None:
    """Record progress in the caller's transaction, so it commits with the rows it describes."""
    stmt = dialect_insert(conn.dialect.name)(import_state).values(source=source, state=state, updated_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"], set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at}
    )
    conn.execute(stmt)


def clear_state(conn: Connection, source: str) -> None:
    conn.execute(import_state.delete().where(import_state.c.source == source))


def existing_trace_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """The ids among ``ids`` that are already stored (primary-key look-ups, in chunks)."""
    wanted = list(ids)
    found: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        chunk = wanted[start : start + _IN_CHUNK]
        found.update(conn.execute(select(traces.c.id).where(traces.c.id.in_(chunk))).scalars())
    return found


def prompt_index(conn: Connection) -> dict[tuple[str, int], tuple[str, str]]:
    """(name, version) -> (prompt id, content hash) for every registered prompt (a small table)."""
    rows = conn.execute(select(prompts.c.name, prompts.c.version, prompts.c.id, prompts.c.content_hash))
    return {(row.name, row.version): (row.id, row.content_hash) for row in rows}


def trace_rows_after(
    conn: Connection,
    after: str | None,
    limit: int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` trace rows with id > ``after``, in id (= time) order, as plain dicts (JSON decoded,
    times aware UTC): keyset pages, so an export of millions never holds more than one page."""
    query = select(traces).order_by(traces.c.id).limit(limit)
    if after is not None:
        query = query.where(traces.c.id > after)
    if since is not None:
        query = query.where(traces.c.created_at >= since)
    if until is not None:
        query = query.where(traces.c.created_at < until)
    return [dict(row._mapping) for row in conn.execute(query)]


def metadata_ids(conn: Connection, key: str, fields: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """(trace id, created_at, metadata[key][field] for each field) for traces whose metadata has ``key``.

    Extracted in SQL (SQLite json_extract, PostgreSQL's jsonb path), so a scan of 100k imported traces
    reads a few ids each rather than every metadata document.
    """
    if not key.isidentifier() or not all(f.isidentifier() for f in fields):
        raise ValueError("metadata keys must be identifiers")
    if conn.dialect.name == "sqlite":
        parts = [func.json_extract(traces.c.metadata, f"$.{key}.{f}") for f in fields]
        present = func.json_extract(traces.c.metadata, f"$.{key}").is_not(None)
    else:
        doc = f"CAST(traces.metadata AS jsonb) -> '{key}'"
        parts = [literal_column(f"({doc} ->> '{f}')") for f in fields]
        present = literal_column(f"({doc})").is_not(None)
    query = select(traces.c.id, traces.c.created_at, *parts).where(present)
    for row in conn.execute(query):
        yield tuple(row)
