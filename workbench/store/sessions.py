"""Traces grouped by session, streamed for the miner, and the miner's watermarks (``mining_state``).

The miner streams the ids of the sessions that changed (``iter_session_sizes``, a streaming cursor,
server-side on PostgreSQL) and reads them a few hundred sessions at a time (``read_sessions``, on the
``ix_traces_session`` index), so a run over millions of traces never holds more than a few chunks.
Rows come back *raw* (JSON as text; on SQLite the time as text too) so that reading and decoding
happen where the CPU is -- in the miner's worker processes -- and ``decode_session`` turns them into
light ``SessionTrace`` objects that the detectors accept in place of ``Trace`` models.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from ..models import utcnow
from .engine import dialect_insert
from .schema import mining_state, traces
from .types import sqlite_time

__all__ = [
    "RawTrace",
    "SessionTrace",
    "Watermark",
    "count_session_traces",
    "decode_session",
    "encode_feedback",
    "insert_feedback_rows",
    "iter_session_sizes",
    "iter_sessions",
    "load_watermarks",
    "newest_trace_time",
    "read_sessions",
    "save_watermark",
]

# (id, session_id, created_at, user_id, input JSON text, output_text, metadata JSON text, status)
RawTrace = tuple[str, str, Any, str | None, str | None, str | None, str | None, str]


@dataclass(slots=True)
class SessionTrace:
    """What the detectors read from a trace (``workbench.feedback.TraceLike``), nothing more."""

    id: str
    session_id: str
    created_at: datetime
    user_id: str | None
    input: list[dict[str, Any]]
    output_text: str | None
    metadata: dict[str, Any]
    status: str = "ok"


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far one miner (one detector@version) got: the newest trace time it has judged."""

    name: str
    watermark: datetime | None
    details: dict[str, Any]
    updated_at: datetime


def _time(value: Any) -> datetime:
    """A stored time as an aware UTC datetime (SQLite hands back naive UTC text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.utcoffset() == UTC.utcoffset(None) else value.astimezone(UTC)


def decode_session(rows: Sequence[RawTrace]) -> list[SessionTrace]:
    """Raw rows of one session -> ``SessionTrace`` objects (pure: safe to run in a worker process)."""
    loads = orjson.loads
    return [
        SessionTrace(
            tid,
            sid,
            _time(created),
            user,
            loads(raw_input) if raw_input else [],
            output,
            loads(raw_meta) if raw_meta else {},
            status,
        )
        for tid, sid, created, user, raw_input, output, raw_meta, status in rows
    ]


def _touched(since: datetime | None, until: datetime | None) -> list[Any]:
    """Conditions: sessions with a trace newer than ``since``; traces no newer than ``until``."""
    conditions: list[Any] = [traces.c.session_id.is_not(None)]
    if until is not None:
        conditions.append(traces.c.created_at <= until)
    if since is not None:
        recent = select(traces.c.session_id).where(traces.c.created_at > since, traces.c.session_id.is_not(None))
        if until is not None:
            recent = recent.where(traces.c.created_at <= until)
        conditions.append(traces.c.session_id.in_(recent.distinct()))
    return conditions


def newest_trace_time(conn: Connection) -> datetime | None:
    """The newest ``created_at`` in the store: the miner's clock and its next watermark."""
    return conn.execute(select(func.max(traces.c.created_at))).scalar_one_or_none()


def count_session_traces(conn: Connection, *, since: datetime | None = None, until: datetime | None = None) -> int:
    """How many traces ``iter_sessions`` with the same bounds would yield (progress bars, worker choice)."""
    return int(conn.execute(select(func.count()).select_from(traces).where(*_touched(since, until))).scalar_one())


def iter_session_sizes(
    conn: Connection, *, since: datetime | None = None, until: datetime | None = None, chunk_size: int = 10_000
) -> Iterator[tuple[str, int]]:
    """(session id, traces) of each session to read, in session-id order, streamed.

    ``since``: only sessions with a trace created after it (None: every session). ``until``: traces
    created after it are not counted (nor read by ``read_sessions``), so a run is one consistent cut
    even while ingest keeps writing. Traces without a session id are skipped (no session to read).
    """
    query = (
        select(traces.c.session_id, func.count())
        .where(*_touched(since, until))
        .group_by(traces.c.session_id)
        .order_by(traces.c.session_id)
    )
    for row in conn.execution_options(yield_per=chunk_size).execute(query):
        yield row[0], int(row[1])


_READ_SQL = (
    "SELECT id, session_id, created_at, user_id, input, output_text, metadata, status FROM traces "
    "WHERE session_id {ids} AND created_at <= {until} ORDER BY session_id, created_at, id"
)
_READ_SQLITE = _READ_SQL.format(ids="IN (SELECT value FROM json_each(?))", until="?")
_READ_PG = _READ_SQL.format(ids="= ANY(%s)", until="%s")


def read_sessions(conn: Connection, session_ids: Sequence[str], *, until: datetime) -> list[list[RawTrace]]:
    """The raw rows of these sessions (traces up to ``until``), one list per session, in id order.

    Whole sessions, older traces included: detectors judge a turn by its neighbours. Plain driver
    rows (one bound array of ids, no per-row result processing): this is the miner's hot read path.
    """
    if not session_ids:
        return []
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cursor.execute(_READ_SQLITE, (orjson.dumps(list(session_ids)).decode(), sqlite_time(until)))
        else:
            cursor.execute(_READ_PG, (list(session_ids), until))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    sessions: list[list[RawTrace]] = []
    current: str | None = None
    for row in rows:
        if row[1] != current:
            sessions.append([])
            current = row[1]
        sessions[-1].append(tuple(row))  # type: ignore[arg-type]
    return sessions


def iter_sessions(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    sessions_per_read: int = 500,
) -> Iterator[list[RawTrace]]:
    """Each session's raw rows in ``(created_at, id)`` order, one list per session, a few hundred
    sessions per read (see ``iter_session_sizes`` for the bounds)."""
    until = until or newest_trace_time(conn)
    if until is None:
        return
    chunk: list[str] = []
    for session_id, _count in iter_session_sizes(conn, since=since, until=until):
        chunk.append(session_id)
        if len(chunk) >= sessions_per_read:
            yield from read_sessions(conn, chunk, until=until)
            chunk = []
    yield from read_sessions(conn, chunk, until=until)


def load_watermarks(conn: Connection, names: Sequence[str]) -> dict[str, Watermark]:
    """Stored watermarks by name (names never mined are absent)."""
    rows = conn.execute(select(mining_state).where(mining_state.c.name.in_(list(names))))
    return {row.name: Watermark(row.name, row.watermark, row.details or {}, row.updated_at) for row in rows}


def save_watermark(
    conn: Connection, name: str, watermark: datetime | None, details: dict[str, Any] | None = None
) -> None:
    """Insert or replace one watermark (call in the transaction that stored the run's findings)."""
    stmt = dialect_insert(conn.dialect.name)(mining_state).values(
        name=name, watermark=watermark, details=details or {}, updated_at=utcnow()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "watermark": stmt.excluded.watermark,
            "details": stmt.excluded.details,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    conn.execute(stmt)


# Named explicitly (not from the table), so a column added later with a default keeps this insert valid.
_FEEDBACK_INSERT_COLUMNS = (
    "id",
    "trace_id",
    "kind",
    "signal",
    "value",
    "text",
    "strength",
    "source",
    "user_id",
    "evidence",
    "metadata",
    "idempotency_key",
    "created_at",
)
_JSON_OPTS = orjson.OPT_NON_STR_KEYS


def encode_feedback(rows: Iterable[Mapping[str, Any]], dialect: str) -> list[tuple[Any, ...]]:
    """Rows shaped like ``Feedback.model_dump()`` -> driver-ready tuples for ``insert_feedback_rows``.

    Pure (no connection), so the miner's worker processes do it: JSON as text, and on SQLite the time
    as naive UTC text -- the same encoding the column types use.
    """
    dumps = orjson.dumps
    sqlite = dialect == "sqlite"
    out = []
    for row in rows:
        created = row["created_at"]
        out.append(
            (
                row["id"],
                row["trace_id"],
                row["kind"],
                row["signal"],
                row.get("value"),
                row.get("text"),
                row["strength"],
                row["source"],
                row.get("user_id"),
                dumps(row.get("evidence") or {}, option=_JSON_OPTS).decode(),
                dumps(row.get("metadata") or {}, option=_JSON_OPTS).decode(),
                row.get("idempotency_key"),
                sqlite_time(created) if sqlite else created,
            )
        )
    return out


def insert_feedback_rows(conn: Connection, encoded: Sequence[tuple[Any, ...]]) -> int:
    """Bulk-insert rows from ``encode_feedback`` (same dialect); stored keys are skipped. Returns rows added.

    The miner's bulk path: ``store.feedback.add_feedback_many`` validates a pydantic model per row and
    counts the table twice per call, most of the cost at hundreds of thousands of findings (rows here
    come from the detectors, already well-formed).
    """
    if not encoded:
        return 0
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO feedback ({', '.join(chr(34) + c + chr(34) for c in _FEEDBACK_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join(mark for _ in _FEEDBACK_INSERT_COLUMNS)}) ON CONFLICT DO NOTHING"
    )
    return int(conn.exec_driver_sql(sql, list(encoded)).rowcount)
