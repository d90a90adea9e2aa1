"""What feeds a golden set and what left it: decided candidates, provenance rows, the export log.

The export log is append-only: ``insert_export`` only ever inserts (a second row with the same id
is an error, never an update), and nothing here deletes or edits a row. ``decided_candidates``
reads every candidate someone has decided on, with its decision log and the few trace facts a
golden item needs (offered tools, judge rubrics); which of them count as accepted is the golden
package's rule, not SQL's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from ..errors import StoreError
from ..models import Candidate, Decision, Export, Feedback, JudgeScore, Trace
from .feedback import row_to_feedback
from .schema import candidates, decisions, exports, feedback, judge_scores, traces
from .traces import row_to_trace

__all__ = [
    "DecidedCandidate",
    "ProvenanceRows",
    "TraceContext",
    "decided_candidates",
    "insert_export",
    "list_exports",
    "provenance_rows",
    "trace_contexts",
]

_CHUNK = 500
T = TypeVar("T")


def _chunks(values: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


# ---------------------------------------------------------------- export log


def _row_to_export(row: Any) -> Export:
    data = dict(row._mapping)
    data["feedback_ids"] = data.get("feedback_ids") or []
    return Export.model_validate(data)


def insert_export(conn: Connection, record: Export) -> Export:
    """Append one row to the export log (never updates: a reused id is a ``StoreError``)."""
    try:
        with conn.begin_nested():
            conn.execute(exports.insert().values(**record.model_dump()))
    except IntegrityError:
        raise StoreError(f"export log already has a row with id {record.id!r}; rows are never replaced") from None
    return record


def list_exports(
    conn: Connection,
    *,
    golden_set: str | None = None,
    version: int | None = None,
    file_hash: str | None = None,
    limit: int | None = None,
) -> list[Export]:
    """Export log rows, newest first, optionally for one set (and version, or golden file hash)."""
    e = exports.c
    conditions = []
    if golden_set is not None:
        conditions.append(e.golden_set == golden_set)
    if version is not None:
        conditions.append(e.version == version)
    if file_hash is not None:
        conditions.append(e.file_hash == file_hash)
    query = select(exports).where(*conditions).order_by(e.created_at.desc(), e.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_row_to_export(row) for row in conn.execute(query)]


# ---------------------------------------------------------------- golden sources


@dataclass
class DecidedCandidate:
    """A candidate with at least one decision, plus what a golden item needs beyond the row."""

    candidate: Candidate
    decisions: list[Decision]  # oldest first
    corrections: list[Feedback] = field(default_factory=list)  # 'correction' rows on its traces, oldest first
    tools: list[dict[str, Any]] | None = None  # tools the representative call offered
    rubric_ids: list[str] = field(default_factory=list)  # rubrics with a parsed score on a member trace


def _row_to_decision(row: Any) -> Decision:
    data = dict(row._mapping)
    data["before"] = data["before"] or {}
    data["after"] = data["after"] or {}
    return Decision.model_validate(data)


def decided_candidates(conn: Connection, *, decided_after: datetime | None = None) -> list[DecidedCandidate]:
    """Every candidate with a decision (after ``decided_after`` if given), ordered by id.

    Each comes with its whole decision log, not only the recent part: whether it is accepted
    depends on the latest decision, whenever that was.
    """
    d = decisions.c
    chosen = select(d.candidate_id)
    if decided_after is not None:
        chosen = chosen.where(d.created_at > decided_after)
    rows = conn.execute(select(candidates).where(candidates.c.id.in_(chosen.distinct())).order_by(candidates.c.id))
    found = {row.id: DecidedCandidate(Candidate.model_validate(dict(row._mapping)), []) for row in rows}
    ids = list(found)
    for chunk in _chunks(ids):
        for row in conn.execute(select(decisions).where(d.candidate_id.in_(chunk)).order_by(d.created_at, d.id)):
            found[row.candidate_id].decisions.append(_row_to_decision(row))
    members: dict[str, list[str]] = {}
    for cid, item in found.items():
        cand = item.candidate
        for tid in dict.fromkeys([cand.representative_trace_id, *cand.member_trace_ids]):
            members.setdefault(tid, []).append(cid)
    trace_ids = list(members)
    reps = {item.candidate.representative_trace_id for item in found.values()}
    for chunk in _chunks(trace_ids):
        for row in conn.execute(select(traces.c.id, traces.c.params).where(traces.c.id.in_(chunk))):
            tools = (row.params or {}).get("tools") if row.id in reps else None
            for cid in members[row.id] if isinstance(tools, list) and tools else ():
                if found[cid].candidate.representative_trace_id == row.id:
                    found[cid].tools = list(tools)
        query = (
            select(judge_scores.c.trace_id, judge_scores.c.rubric_id)
            .where(judge_scores.c.trace_id.in_(chunk), judge_scores.c.parse_status == "ok")
            .group_by(judge_scores.c.trace_id, judge_scores.c.rubric_id)
        )
        for row in conn.execute(query):
            for cid in members[row.trace_id]:
                if row.rubric_id not in found[cid].rubric_ids:
                    found[cid].rubric_ids.append(row.rubric_id)
        query = (
            select(feedback)
            .where(feedback.c.trace_id.in_(chunk), feedback.c.signal == "correction")
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        for row in conn.execute(query):
            for cid in members[row.trace_id]:
                found[cid].corrections.append(row_to_feedback(row))
    for item in found.values():
        item.rubric_ids.sort()
        item.corrections.sort(key=lambda f: (f.created_at, f.id))
    return list(found.values())


# ---------------------------------------------------------------- provenance


@dataclass
class ProvenanceRows:
    """The stored rows an item's provenance names; ids with no row are listed as missing."""

    candidate: Candidate | None
    traces: list[Trace]
    feedback: list[Feedback]
    decisions: list[Decision]
    judge_scores: list[JudgeScore]
    missing: dict[str, list[str]]  # kind -> ids named by the item but not in the store


def _by_ids(conn: Connection, table: Any, ids: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for chunk in _chunks(list(dict.fromkeys(ids))):
        rows.extend(conn.execute(select(table).where(table.c.id.in_(chunk))))
    return rows


def provenance_rows(
    conn: Connection,
    *,
    candidate_id: str | None,
    trace_ids: Sequence[str],
    feedback_ids: Sequence[str],
    decision_ids: Sequence[str],
) -> ProvenanceRows:
    """Look every named row up by id (order kept as named), plus the judge scores of those traces."""
    candidate = None
    if candidate_id is not None:
        row = conn.execute(select(candidates).where(candidates.c.id == candidate_id)).first()
        candidate = Candidate.model_validate(dict(row._mapping)) if row is not None else None
    trace_map = {row.id: row_to_trace(row) for row in _by_ids(conn, traces, trace_ids)}
    fb_map = {row.id: row_to_feedback(row) for row in _by_ids(conn, feedback, feedback_ids)}
    dec_map = {row.id: _row_to_decision(row) for row in _by_ids(conn, decisions, decision_ids)}
    scores: list[JudgeScore] = []
    for chunk in _chunks(list(trace_map)):
        query = select(judge_scores).where(judge_scores.c.trace_id.in_(chunk)).order_by(judge_scores.c.id)
        scores.extend(JudgeScore.model_validate(dict(row._mapping)) for row in conn.execute(query))
    missing = {
        "candidate": [candidate_id] if candidate_id is not None and candidate is None else [],
        "traces": [t for t in dict.fromkeys(trace_ids) if t not in trace_map],
        "feedback": [f for f in dict.fromkeys(feedback_ids) if f not in fb_map],
        "decisions": [d for d in dict.fromkeys(decision_ids) if d not in dec_map],
    }
    return ProvenanceRows(
        candidate=candidate,
        traces=[trace_map[t] for t in dict.fromkeys(trace_ids) if t in trace_map],
        feedback=[fb_map[f] for f in dict.fromkeys(feedback_ids) if f in fb_map],
        decisions=sorted(dec_map.values(), key=lambda d: (d.created_at, d.id)),
        judge_scores=scores,
        missing={kind: ids for kind, ids in missing.items() if ids},
    )


# ---------------------------------------------------------------- eval inputs


@dataclass(frozen=True)
class TraceContext:
    """How a trace was made: the prompt version and template variables the app passed."""

    trace_id: str
    prompt_name: str | None
    prompt_version: int | None
    variables: dict[str, Any] | None
    params: dict[str, Any]


def trace_contexts(conn: Connection, trace_ids: Iterable[str]) -> dict[str, TraceContext]:
    """Prompt, variables and request parameters of each stored trace (missing ids are left out)."""
    t = traces.c
    out: dict[str, TraceContext] = {}
    for chunk in _chunks(list(dict.fromkeys(trace_ids))):
        query = select(t.id, t.prompt_name, t.prompt_version, t.variables, t.params).where(t.id.in_(chunk))
        for row in conn.execute(query):
            out[row.id] = TraceContext(row.id, row.prompt_name, row.prompt_version, row.variables, row.params or {})
    return out
