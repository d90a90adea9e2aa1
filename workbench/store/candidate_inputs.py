"""What a candidate refresh reads and prunes: flagged trace ids, traces, feedback, judge scores by id.

All look-ups take id lists and split them into ``IN`` chunks, so callers can page through 100k traces
without any statement growing past driver limits. :func:`snapshot` gives one consistent view for a
refresh's two passes (SQLite WAL read transaction; PostgreSQL REPEATABLE READ, read only).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from ..models import Candidate, Feedback, Trace
from .engine import Store, _translate
from .schema import candidates, decisions, feedback, judge_scores, traces

__all__ = [
    "FLAGGING_SIGNALS",
    "candidate_trace_ids",
    "count_candidate_traces",
    "existing_candidates",
    "load_feedback",
    "load_judge_scores",
    "load_traces",
    "remove_stale_candidates",
    "snapshot",
]

# Signals that can be negative (thumbs only when down). Whether a row really is negative (a rating at
# or below the midpoint, a comment with negative words, a vote not superseded) is decided in Python.
FLAGGING_SIGNALS = ("rating", "correction", "comment", "repeat_ask", "regenerate", "abandon", "pushback")
_IN_CHUNK = 900
_TRACE_DEFAULTS: dict[str, Any] = {"params": dict, "input": list, "tags": list, "metadata": dict}
_CLUSTER_COLUMNS = (
    traces.c.id,
    traces.c.created_at,
    traces.c.session_id,
    traces.c.user_id,
    traces.c.prompt_name,
    traces.c.input,
)


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


@contextmanager
def snapshot(store: Store) -> Iterator[Connection]:
    """A read-only transaction that sees one state of the store for its whole life.

    A refresh reads the same traces twice (plan, then build); without a snapshot, feedback committed in
    between could change which traces are flagged and split a cluster across two builds.
    """
    with _translate(store), store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def _flagging_condition() -> Any:
    f = feedback.c
    thumbs_down = and_(f.signal == "thumbs", or_(f.value.is_(None), f.value != 1.0))
    return and_(
        or_(thumbs_down, f.signal.in_(FLAGGING_SIGNALS)), exists(select(traces.c.id).where(traces.c.id == f.trace_id))
    )


def candidate_trace_ids(conn: Connection) -> list[str]:
    """Ids of stored traces with at least one possibly negative feedback row, in id order."""
    query = select(feedback.c.trace_id).where(_flagging_condition()).distinct().order_by(feedback.c.trace_id)
    return [row[0] for row in conn.execute(query)]


def count_candidate_traces(conn: Connection) -> int:
    inner = select(feedback.c.trace_id).where(_flagging_condition()).distinct().subquery()
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def _dicts(conn: Connection, query: Any) -> Iterator[dict[str, Any]]:
    """Rows as dicts, keys taken once per result (``dict(row._mapping)`` per row costs several times more)."""
    result = conn.execute(query)
    keys = list(result.keys())
    for row in result:
        yield dict(zip(keys, row, strict=True))


def load_traces(conn: Connection, ids: Sequence[str], *, full: bool = True) -> list[Trace]:
    """Traces by id (missing ids are skipped). ``full=False`` reads only what clustering needs."""
    columns = (traces,) if full else _CLUSTER_COLUMNS
    found: list[Trace] = []
    for chunk in _chunks(list(ids)):
        for data in _dicts(conn, select(*columns).where(traces.c.id.in_(chunk))):
            for key, default in _TRACE_DEFAULTS.items():
                if data.get(key) is None and (full or key in data):
                    data[key] = default()
            found.append(Trace.model_validate(data))
    return found


def load_feedback(conn: Connection, trace_ids: Sequence[str]) -> list[Feedback]:
    """Every feedback row on these traces, oldest id first."""
    found: list[Feedback] = []
    for chunk in _chunks(list(trace_ids)):
        for data in _dicts(conn, select(feedback).where(feedback.c.trace_id.in_(chunk))):
            data["evidence"] = data["evidence"] or {}
            data["metadata"] = data["metadata"] or {}
            found.append(Feedback.model_validate(data))
    found.sort(key=lambda item: item.id)
    return found


def load_judge_scores(conn: Connection, trace_ids: Sequence[str]) -> list[tuple[str, str, float]]:
    """(trace id, rubric id, score) of parsed pointwise judge verdicts on these traces."""
    j = judge_scores.c
    found: list[tuple[str, str, float]] = []
    for chunk in _chunks(list(trace_ids)):
        query = select(j.trace_id, j.rubric_id, j.score).where(
            j.trace_id.in_(chunk), j.parse_status == "ok", j.score.is_not(None), j.other_trace_id.is_(None)
        )
        found.extend((row.trace_id, row.rubric_id, float(row.score)) for row in conn.execute(query))
    return found


def existing_candidates(conn: Connection, keys: Iterable[str]) -> dict[str, tuple[Candidate, bool]]:
    """Stored candidates by cluster key, each with whether a person has decided on it."""
    decided = exists(select(decisions.c.id).where(decisions.c.candidate_id == candidates.c.id))
    found: dict[str, tuple[Candidate, bool]] = {}
    for chunk in _chunks(list(keys)):
        query = select(candidates, decided.label("decided")).where(candidates.c.cluster_key.in_(chunk))
        for data in _dicts(conn, query):
            was_decided = bool(data.pop("decided"))
            found[data["cluster_key"]] = (Candidate.model_validate(data), was_decided)
    return found


def remove_stale_candidates(conn: Connection, keep: set[str]) -> int:
    """Delete candidates the builder no longer produces, unless a person has touched them.

    A candidate goes stale when its feedback changed (a vote flipped to up) or an older trace became
    its cluster's leader (a new key). Untouched means status ``open`` and no decision rows: triage
    work is never thrown away by a rebuild.
    """
    decided = exists(select(decisions.c.id).where(decisions.c.candidate_id == candidates.c.id))
    query = select(candidates.c.id, candidates.c.cluster_key).where(candidates.c.status == "open", ~decided)
    stale = [row.id for row in conn.execute(query) if row.cluster_key not in keep]
    for chunk in _chunks(stale):
        conn.execute(candidates.delete().where(candidates.c.id.in_(chunk)))
    return len(stale)
