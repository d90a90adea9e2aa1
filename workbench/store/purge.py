"""Privacy: delete one user's data from the store in one transaction (``workbench purge --user ID``).

What goes: the user's traces (``traces.user_id``), every feedback row on those traces, every feedback row
the user gave (``feedback.user_id``) on anyone's trace, and judge scores of those traces (a judge's answer
can quote the text). Candidates lose those traces and feedback ids; a candidate is deleted together with
its decisions when it has no member left, when its representative (whose redacted text it shows) was the
user's, or when its proposed expected output may be the user's correction. Candidates of other users
that only lost some members keep their triage state; ``workbench candidates refresh`` recomputes their
counts and priorities (and rebuilds deleted ones from the remaining traces).

Deleting rows is not enough for "no byte of the user's text is left": SQLite keeps deleted content in
free pages and in the WAL until it is overwritten, PostgreSQL keeps dead tuples until VACUUM. So
:func:`purge_user` turns on SQLite's ``secure_delete`` (deleted content is overwritten with zeros) for
its transaction, and :func:`erase_freed_space`, run after the commit, merges full-text indexes (their
segments keep deleted tokens until merged), VACUUMs and truncates the WAL with a checkpoint on SQLite,
and VACUUMs the touched tables on PostgreSQL (the server's data files, WAL and backups are the
operator's: a VACUUM makes dead tuples' space reusable, it does not scrub disks).

Scope: the store only. Records still in the capture spool are not in the store yet; the CLI ingests the
spool before purging and then erases the spool's copies (``workbench.capture.scrub``). Golden-set files
already written to disk are not touched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Text, func, or_, select, type_coerce
from sqlalchemy.exc import DBAPIError

from ..errors import ValidationError
from ..models import utcnow
from .engine import Store
from .schema import candidates, decisions, feedback, judge_scores, traces

__all__ = ["Compaction", "PurgeCounts", "erase_freed_space", "preview_purge", "purge_user", "user_texts"]

_IN_CHUNK = 900
_SCAN_PAGE = 2000
_EXPECTED_SOURCES = frozenset({"correction", "pushback"})  # rows whose text can become expected_output


@dataclass(frozen=True)
class PurgeCounts:
    """What a purge deletes (or, from :func:`preview_purge`, would delete)."""

    user_id: str
    traces: int = 0
    feedback: int = 0
    judge_scores: int = 0
    candidates_updated: int = 0
    candidates_deleted: int = 0
    decisions: int = 0

    @property
    def nothing(self) -> bool:
        return not (self.traces or self.feedback or self.candidates_updated or self.candidates_deleted)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Plan:
    trace_ids: list[str]
    feedback_ids: list[str]
    judge_score_ids: list[str]
    delete: list[str] = field(default_factory=list)  # candidate ids
    update: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # id -> (members, feedback)
    decisions: int = 0


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _check_user(user_id: str) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValidationError(f"user id must be a non-empty string, got {user_id!r}")
    return user_id


def _plan(conn: Connection, user_id: str) -> _Plan:
    trace_ids = [row[0] for row in conn.execute(select(traces.c.id).where(traces.c.user_id == user_id))]
    gone_traces = set(trace_ids)
    gone_feedback: dict[str, str] = {}  # id -> signal
    for row in conn.execute(select(feedback.c.id, feedback.c.signal).where(feedback.c.user_id == user_id)):
        gone_feedback[row.id] = row.signal
    for chunk in _chunks(trace_ids):
        for row in conn.execute(select(feedback.c.id, feedback.c.signal).where(feedback.c.trace_id.in_(chunk))):
            gone_feedback[row.id] = row.signal
    scores: set[str] = set()
    for chunk in _chunks(trace_ids):
        scores.update(
            row[0]
            for row in conn.execute(
                select(judge_scores.c.id).where(
                    or_(judge_scores.c.trace_id.in_(chunk), judge_scores.c.other_trace_id.in_(chunk))
                )
            )
        )
    plan = _Plan(trace_ids, list(gone_feedback), sorted(scores))
    if not gone_traces and not gone_feedback:
        return plan
    # Member lists are JSON text: scan the candidates table once in keyset pages (never all in memory).
    c = candidates.c
    after = ""
    while True:
        page = conn.execute(
            select(
                c.id,
                c.representative_trace_id,
                type_coerce(c.member_trace_ids, Text).label("members"),
                type_coerce(c.feedback_ids, Text).label("fb"),
                c.expected_output.is_not(None).label("expects"),
            )
            .where(c.id > after)
            .order_by(c.id)
            .limit(_SCAN_PAGE)
        ).all()
        if not page:
            break
        after = page[-1].id
        for row in page:
            members: list[str] = orjson.loads(row.members or "[]")
            fb_ids: list[str] = orjson.loads(row.fb or "[]")
            lost_members = gone_traces.intersection(members) or row.representative_trace_id in gone_traces
            lost_feedback = gone_feedback.keys() & set(fb_ids)
            if not lost_members and not lost_feedback:
                continue
            keep = [m for m in members if m not in gone_traces]
            expected_theirs = bool(row.expects) and any(gone_feedback[f] in _EXPECTED_SOURCES for f in lost_feedback)
            if not keep or row.representative_trace_id in gone_traces or expected_theirs:
                plan.delete.append(row.id)
            else:
                plan.update[row.id] = (keep, [f for f in fb_ids if f not in gone_feedback])
    for chunk in _chunks(plan.delete):
        plan.decisions += int(
            conn.execute(
                select(func.count()).select_from(decisions).where(decisions.c.candidate_id.in_(chunk))
            ).scalar_one()
        )
    return plan


def _counts(user_id: str, plan: _Plan) -> PurgeCounts:
    return PurgeCounts(
        user_id=user_id,
        traces=len(plan.trace_ids),
        feedback=len(plan.feedback_ids),
        judge_scores=len(plan.judge_score_ids),
        candidates_updated=len(plan.update),
        candidates_deleted=len(plan.delete),
        decisions=plan.decisions,
    )


def preview_purge(conn: Connection, user_id: str) -> PurgeCounts:
    """What :func:`purge_user` would delete, without deleting anything (for the confirmation prompt)."""
    user_id = _check_user(user_id)
    return _counts(user_id, _plan(conn, user_id))


def purge_user(conn: Connection, user_id: str) -> PurgeCounts:
    """Delete one user's traces, feedback and the candidate data built on them, in the caller's transaction.

    Call it inside ``store.write()`` so everything is deleted or nothing is. Purging a user with no
    stored data deletes nothing and returns zero counts (a repeated privacy request is harmless).
    """
    user_id = _check_user(user_id)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete=ON")  # zero deleted content in pages and the free list
    plan = _plan(conn, user_id)
    for chunk in _chunks(plan.delete):
        conn.execute(decisions.delete().where(decisions.c.candidate_id.in_(chunk)))
        conn.execute(candidates.delete().where(candidates.c.id.in_(chunk)))
    now = utcnow()
    for candidate_id, (members, fb_ids) in plan.update.items():
        conn.execute(
            candidates.update()
            .where(candidates.c.id == candidate_id)
            .values(member_trace_ids=members, feedback_ids=fb_ids, count=len(members), updated_at=now)
        )
    for chunk in _chunks(plan.feedback_ids):
        conn.execute(feedback.delete().where(feedback.c.id.in_(chunk)))
    for chunk in _chunks(plan.judge_score_ids):
        conn.execute(judge_scores.delete().where(judge_scores.c.id.in_(chunk)))
    for chunk in _chunks(plan.trace_ids):
        conn.execute(traces.delete().where(traces.c.id.in_(chunk)))
    return _counts(user_id, plan)


_TOUCHED = (traces, feedback, judge_scores, candidates, decisions)
_MIN_TEXT = 8  # shorter strings ("hi", "ok") are not worth finding: too common to be the user's


def _strings(value: Any, out: set[str]) -> None:
    if isinstance(value, str):
        if len(value) >= _MIN_TEXT:
            out.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def user_texts(conn: Connection, user_id: str) -> set[str]:
    """The user's words and the answers they got (strings of 8+ characters), read before a purge so
    copies outside the store's rows (quarantined spool records) can be recognised afterwards."""
    found: set[str] = set()
    query = select(traces.c.input, traces.c.output_text).where(traces.c.user_id == _check_user(user_id))
    for row in conn.execute(query):
        _strings(row.input, found)
        _strings(row.output_text, found)
    for row in conn.execute(select(feedback.c.text).where(feedback.c.user_id == user_id)):
        _strings(row.text, found)
    return found


@dataclass(frozen=True)
class Compaction:
    """What :func:`erase_freed_space` did, step by step, and whether every step finished."""

    steps: list[str]
    complete: bool


def erase_freed_space(store: Store, *, checkpoint_wait: float = 10.0) -> Compaction:
    """After a purge's commit: leave no copy of deleted rows in the database files (see module docstring).

    SQLite: merge FTS indexes, VACUUM, then ``wal_checkpoint(TRUNCATE)``, retried for up to
    ``checkpoint_wait`` seconds while another connection (an app's ingester) is reading; ``complete`` is
    False if the WAL could not be truncated. PostgreSQL: ``VACUUM (ANALYZE)`` of every table a purge
    touches. Runs outside any transaction (VACUUM cannot run in one). A step the database refuses (a lock
    held past the busy timeout) is reported as not done, never raised: the rows are already deleted.
    """
    if store.dialect == "sqlite":
        try:
            return _erase_sqlite(store, checkpoint_wait)
        except (sqlite3.Error, DBAPIError) as exc:
            return Compaction([f"freed space not erased: {_first_line(exc)}"], False)
    steps = []
    try:
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            quote = conn.dialect.identifier_preparer.quote
            for table in _TOUCHED:
                conn.exec_driver_sql(f"VACUUM (ANALYZE) {quote(table.name)}")
                steps.append(f"VACUUM {table.name}")
    except DBAPIError as exc:
        return Compaction([*steps, f"VACUUM not finished: {_first_line(exc)}"], False)
    return Compaction(steps, True)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _erase_sqlite(store: Store, checkpoint_wait: float) -> Compaction:
    steps: list[str] = []
    raw = store.engine.raw_connection()
    try:
        db = raw.driver_connection  # autocommit (isolation_level None): VACUUM needs no open transaction
        db.execute("PRAGMA secure_delete=ON")
        indexes = [
            row[0]
            for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts%'"
            )
        ]
        for name in indexes:
            quoted = '"' + name.replace('"', '""') + '"'
            db.execute(f"INSERT INTO {quoted}({quoted}) VALUES ('optimize')")
            steps.append(f"full-text index {name} merged")
        db.execute("VACUUM")
        steps.append("database rewritten (VACUUM, secure_delete)")
        deadline = time.monotonic() + checkpoint_wait
        while True:
            busy, frames, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                steps.append("WAL checkpointed and truncated")
                return Compaction(steps, True)
            if time.monotonic() >= deadline:
                steps.append(f"WAL not truncated: another connection is reading ({done} of {frames} frames copied)")
                return Compaction(steps, False)
            time.sleep(0.05)
    finally:
        raw.close()
