"""Candidates: builder upserts, the triage queue (keyset pages), the append-only decision log, overview.

The queue is read a page at a time in ``ORDER BY priority DESC, id`` with keyset cursors, so a
screen over a million candidates never loads more than a page. A decision is one transaction that
appends to ``decisions`` and sets the candidate's human fields, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import Candidate, Decision, Feedback, JudgeScore, Trace, utcnow
from .schema import candidates, decisions, feedback, judge_scores, traces
from .traces import row_to_trace

__all__ = [
    "EDITABLE_FIELDS", "STATUSES", "CandidateDetail", "Facets", "QueueCursor", "QueueFilter", "QueueRow",
    "UpsertResult", "VersionStats", "candidate_detail", "count_queue", "get_candidate", "list_decisions",
    "queue_facets", "queue_page", "record_decision", "undo_decision", "upsert_candidates", "version_overview",
]

STATUSES = ("open", "accepted", "rejected", "skipped")
EDITABLE_FIELDS = ("status", "labels", "notes", "expected_output")
# Fields the candidate builder owns; status/labels/notes belong to people and are never overwritten.
_MACHINE_FIELDS = (
    "representative_trace_id", "member_trace_ids", "feedback_ids", "count", "input", "output_text", "signals",
    "primary_signal", "users", "priority", "prompt_name", "prompt_version", "model_resolved",
)
_CHUNK = 500

QueueCursor = tuple[float, str]


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. ``prompt`` is ``name`` or ``name@version``; ``text`` is a substring."""

    status: str | None = "open"
    signal: str | None = None
    prompt: str | None = None
    model: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class QueueRow:
    """The few columns a queue line needs (no member lists, no full output)."""

    id: str
    priority: float
    primary_signal: str | None
    users: int
    count: int
    prompt_name: str | None
    prompt_version: int | None
    model_resolved: str | None
    status: str
    labels: list[str]
    created_at: datetime
    input: list[dict[str, Any]]
    output_head: str

    @property
    def cursor(self) -> QueueCursor:
        return (self.priority, self.id)

    @property
    def prompt_ref(self) -> str:
        return f"{self.prompt_name}@{self.prompt_version}" if self.prompt_name else ""


@dataclass(frozen=True)
class UpsertResult:
    inserted: int
    updated: int
    ids: dict[str, str]  # cluster_key -> candidate id


@dataclass(frozen=True)
class Facets:
    """Values present in the store, for the filter pickers."""

    statuses: dict[str, int]
    signals: list[str]
    prompts: list[str]
    models: list[str]


@dataclass
class CandidateDetail:
    candidate: Candidate
    members: list[Trace]
    feedback: list[Feedback]
    judge_scores: list[JudgeScore]
    decisions: list[Decision]


@dataclass
class VersionStats:
    """Per prompt version x model version aggregates (all computed by GROUP BY in SQL)."""

    prompt_name: str | None
    prompt_version: int | None
    model: str | None
    traces: int = 0
    first_seen: datetime | None = None
    thumbs_n: int = 0
    thumbs_up: int = 0
    implicit: dict[str, int] = field(default_factory=dict)  # signal -> traces with that signal
    open_candidates: int = 0
    judge: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # rubric -> (n, sum, sum of squares)

    @property
    def key(self) -> tuple[str | None, int | None, str | None]:
        return (self.prompt_name, self.prompt_version, self.model)

    @property
    def prompt_ref(self) -> str:
        return f"{self.prompt_name}@{self.prompt_version}" if self.prompt_name else "(no prompt)"


# ---------------------------------------------------------------- builder side


def _to_row(item: Candidate) -> dict[str, Any]:
    return item.model_dump()


def upsert_candidates(conn: Connection, items: Iterable[Candidate]) -> UpsertResult:
    """Insert new clusters; refresh the builder's fields of known ones (matched by cluster_key).

    Status, labels and notes are never overwritten, and expected_output only while no person has
    decided on the candidate (a rebuild must not undo triage work).
    """
    latest: dict[str, Candidate] = {}
    for item in items:
        latest[item.cluster_key] = item
    inserted = updated = 0
    ids: dict[str, str] = {}
    keys = list(latest)
    now = utcnow()
    decided = exists(select(decisions.c.id).where(decisions.c.candidate_id == candidates.c.id))
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start:start + _CHUNK]
        known = {
            row.cluster_key: (row.id, bool(row.decided))
            for row in conn.execute(
                select(candidates.c.cluster_key, candidates.c.id, decided.label("decided"))
                .where(candidates.c.cluster_key.in_(chunk))
            )
        }
        new_rows = [_to_row(latest[key]) for key in chunk if key not in known]
        if new_rows:
            conn.execute(candidates.insert(), new_rows)
        ids.update({row["cluster_key"]: row["id"] for row in new_rows})
        inserted += len(new_rows)
        for key, (cid, was_decided) in known.items():
            values = {name: getattr(latest[key], name) for name in _MACHINE_FIELDS}
            if not was_decided:
                values["expected_output"] = latest[key].expected_output
            conn.execute(candidates.update().where(candidates.c.id == cid).values(**values, updated_at=now))
            ids[key] = cid
            updated += 1
    return UpsertResult(inserted, updated, ids)


def get_candidate(conn: Connection, candidate_id: str) -> Candidate:
    row = conn.execute(select(candidates).where(candidates.c.id == candidate_id)).first()
    if row is None:
        raise NotFoundError(f"no candidate with id {candidate_id!r} (deleted or never built)")
    return Candidate.model_validate(dict(row._mapping))


# ---------------------------------------------------------------- queue


def _like(conn: Connection, column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    target = type_coerce(column, Text)
    if conn.dialect.name == "postgresql":
        return target.ilike(pattern, escape="\\")
    return target.like(pattern, escape="\\")  # SQLite LIKE is already case-insensitive for ASCII


def _where(conn: Connection, query: Select[Any], flt: QueueFilter) -> Select[Any]:
    c = candidates.c
    if flt.status:
        query = query.where(c.status == flt.status)
    if flt.signal:
        query = query.where(c.primary_signal == flt.signal)
    if flt.prompt:
        name, _, version = flt.prompt.rpartition("@") if "@" in flt.prompt else (flt.prompt, "", "")
        query = query.where(c.prompt_name == name)
        if version:
            if not version.isdigit():
                raise ValidationError(f"bad prompt filter {flt.prompt!r}; use name or name@version")
            query = query.where(c.prompt_version == int(version))
    if flt.model:
        query = query.where(c.model_resolved == flt.model)
    if flt.text and flt.text.strip():
        text = flt.text.strip()
        query = query.where(or_(
            c.id == text, _like(conn, c.input, text), _like(conn, c.output_text, text),
            _like(conn, c.notes, text), _like(conn, c.labels, text), _like(conn, c.expected_output, text),
        ))
    return query


_ROW_COLUMNS = (
    candidates.c.id, candidates.c.priority, candidates.c.primary_signal, candidates.c.users, candidates.c.count,
    candidates.c.prompt_name, candidates.c.prompt_version, candidates.c.model_resolved, candidates.c.status,
    candidates.c.labels, candidates.c.created_at, candidates.c.input,
    func.substr(candidates.c.output_text, 1, 400).label("output_head"),
)


def queue_page(
    conn: Connection,
    flt: QueueFilter = QueueFilter(),
    *,
    after: QueueCursor | None = None,
    before: QueueCursor | None = None,
    limit: int = 100,
) -> list[QueueRow]:
    """One page in queue order (priority high to low, then id), after or before a cursor.

    The keyset condition is written as ``priority <= p AND (priority < p OR id > i)`` so the
    priority index gives a range scan instead of the OR defeating it.
    """
    c = candidates.c
    query = _where(conn, select(*_ROW_COLUMNS), flt)
    if after is not None and before is not None:
        raise ValidationError("queue_page takes after or before, not both")
    if after is not None:
        p, i = after
        query = query.where(c.priority <= p, or_(c.priority < p, c.id > i)).order_by(c.priority.desc(), c.id)
    elif before is not None:
        p, i = before
        query = query.where(c.priority >= p, or_(c.priority > p, c.id < i)).order_by(c.priority, c.id.desc())
    else:
        query = query.order_by(c.priority.desc(), c.id)
    rows = [
        QueueRow(
            id=r.id, priority=r.priority, primary_signal=r.primary_signal, users=r.users, count=r.count,
            prompt_name=r.prompt_name, prompt_version=r.prompt_version, model_resolved=r.model_resolved,
            status=r.status, labels=r.labels or [], created_at=r.created_at, input=r.input or [],
            output_head=r.output_head or "",
        )
        for r in conn.execute(query.limit(limit))
    ]
    return rows[::-1] if before is not None else rows


def count_queue(conn: Connection, flt: QueueFilter = QueueFilter(), *, cap: int | None = None) -> int:
    """How many candidates match; with ``cap``, stop counting there (searches can be full scans)."""
    inner = _where(conn, select(literal(1).label("one")).select_from(candidates), flt)
    if cap is not None:
        inner = inner.limit(cap)
    return int(conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one())


def queue_facets(conn: Connection) -> Facets:
    c = candidates.c
    statuses = {r.status: int(r.n) for r in conn.execute(select(c.status, func.count().label("n")).group_by(c.status))}
    signals = [r[0] for r in conn.execute(select(c.primary_signal).where(c.primary_signal.is_not(None))
                                          .group_by(c.primary_signal).order_by(c.primary_signal))]
    prompts = [f"{r.prompt_name}@{r.prompt_version}" for r in conn.execute(
        select(c.prompt_name, c.prompt_version).where(c.prompt_name.is_not(None))
        .group_by(c.prompt_name, c.prompt_version).order_by(c.prompt_name, c.prompt_version))]
    models = [r[0] for r in conn.execute(select(c.model_resolved).where(c.model_resolved.is_not(None))
                                         .group_by(c.model_resolved).order_by(c.model_resolved))]
    return Facets(statuses, signals, prompts, models)


# ---------------------------------------------------------------- decisions


def _state(row: Any) -> dict[str, Any]:
    return {
        "status": row.status, "labels": row.labels or [], "notes": row.notes, "expected_output": row.expected_output,
    }


def _check_after(after: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(after) - {*EDITABLE_FIELDS, "undoes"})
    if unknown:
        raise ValidationError(f"decision field {unknown[0]!r} cannot be set; allowed: {', '.join(EDITABLE_FIELDS)}")
    if "status" in after and after["status"] not in STATUSES:
        raise ValidationError(f"bad status {after['status']!r}; use one of {', '.join(STATUSES)}")
    labels = after.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValidationError(f"labels must be a list of strings, got {labels!r}")
    for name in ("notes", "expected_output"):
        if after.get(name) is not None and not isinstance(after[name], str):
            raise ValidationError(f"{name} must be text, got {type(after[name]).__name__}")
    return {k: v for k, v in after.items() if k in EDITABLE_FIELDS}


def record_decision(
    conn: Connection,
    candidate_id: str,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> Decision:
    """Append a decision and apply ``after`` to the candidate, in the caller's transaction.

    ``before`` defaults to the candidate's stored state. Raises NotFoundError (writing nothing) when
    the candidate no longer exists.
    """
    if not action or len(action) > 40:
        raise ValidationError(f"decision action must be 1-40 characters, got {action!r}")
    if not actor:
        raise ValidationError("decision actor is empty; pass --actor or set $USER")
    changes = _check_after(after)
    row = conn.execute(
        select(candidates.c.status, candidates.c.labels, candidates.c.notes, candidates.c.expected_output)
        .where(candidates.c.id == candidate_id)
    ).first()
    if row is None:
        raise NotFoundError(f"candidate {candidate_id} no longer exists (deleted or rebuilt); decision not recorded")
    now = utcnow()
    decision = Decision(
        id=new_id(), candidate_id=candidate_id, action=action, actor=actor,
        before=_state(row) if before is None else dict(before), after=dict(after), created_at=now,
    )
    conn.execute(decisions.insert().values(decision.model_dump()))
    if changes:
        conn.execute(candidates.update().where(candidates.c.id == candidate_id).values(**changes, updated_at=now))
    return decision


def undo_decision(conn: Connection, decision_id: str, actor: str) -> Decision:
    """Undo = a new decision that restores the undone one's ``before`` (the log stays append-only)."""
    row = conn.execute(select(decisions).where(decisions.c.id == decision_id)).first()
    if row is None:
        raise NotFoundError(f"no decision with id {decision_id!r}")
    restore = {k: v for k, v in (row.before or {}).items() if k in EDITABLE_FIELDS}
    return record_decision(conn, row.candidate_id, "undo", actor, None, {**restore, "undoes": decision_id})


def _decision(row: Any) -> Decision:
    data = dict(row._mapping)
    data["before"] = data["before"] or {}
    data["after"] = data["after"] or {}
    return Decision.model_validate(data)


def list_decisions(conn: Connection, candidate_id: str) -> list[Decision]:
    query = select(decisions).where(decisions.c.candidate_id == candidate_id).order_by(decisions.c.created_at,
                                                                                        decisions.c.id)
    return [_decision(row) for row in conn.execute(query)]


# ---------------------------------------------------------------- detail


def _feedback(row: Any) -> Feedback:
    data = dict(row._mapping)
    data["evidence"] = data["evidence"] or {}
    data["metadata"] = data["metadata"] or {}
    return Feedback.model_validate(data)


def candidate_detail(conn: Connection, candidate_id: str, *, limit: int = 50) -> CandidateDetail:
    """The candidate with its member traces, their feedback and judge scores, and its decision log."""
    cand = get_candidate(conn, candidate_id)
    member_ids = list(dict.fromkeys([cand.representative_trace_id, *cand.member_trace_ids]))[:limit]
    members = [row_to_trace(r) for r in conn.execute(
        select(traces).where(traces.c.id.in_(member_ids)).order_by(traces.c.created_at, traces.c.id))]
    fb_ids = cand.feedback_ids[: limit * 4]
    fb_rows = conn.execute(
        select(feedback).where(or_(feedback.c.id.in_(fb_ids), feedback.c.trace_id.in_(member_ids)))
        .order_by(feedback.c.created_at, feedback.c.id).limit(limit * 4)
    )
    scores = conn.execute(
        select(judge_scores).where(judge_scores.c.trace_id.in_(member_ids))
        .order_by(judge_scores.c.created_at, judge_scores.c.id).limit(limit * 4)
    )
    return CandidateDetail(
        candidate=cand, members=members, feedback=[_feedback(r) for r in fb_rows],
        judge_scores=[JudgeScore.model_validate(dict(r._mapping)) for r in scores],
        decisions=list_decisions(conn, candidate_id),
    )


# ---------------------------------------------------------------- overview


def version_overview(conn: Connection) -> list[VersionStats]:
    """Traces, thumbs, implicit-signal and judge aggregates per prompt version x model version."""
    t = traces.c
    out: dict[tuple[Any, Any, Any], VersionStats] = {}

    def get(key: tuple[Any, Any, Any]) -> VersionStats:
        if key not in out:
            out[key] = VersionStats(*key)
        return out[key]

    cfg = (t.prompt_name, t.prompt_version, t.model_resolved)
    for r in conn.execute(select(*cfg, func.count().label("n"), func.min(t.created_at).label("first"))
                          .group_by(*cfg)):
        stats = get((r.prompt_name, r.prompt_version, r.model_resolved))
        stats.traces, stats.first_seen = int(r.n), r.first
    up = func.sum(case((feedback.c.value > 0.5, 1), else_=0))
    joined = feedback.join(traces, traces.c.id == feedback.c.trace_id)
    for r in conn.execute(select(*cfg, func.count().label("n"), up.label("up")).select_from(joined)
                          .where(feedback.c.signal == "thumbs", feedback.c.value.is_not(None)).group_by(*cfg)):
        stats = get((r.prompt_name, r.prompt_version, r.model_resolved))
        stats.thumbs_n, stats.thumbs_up = int(r.n), int(r.up or 0)
    for r in conn.execute(select(*cfg, feedback.c.signal, func.count(feedback.c.trace_id.distinct()).label("n"))
                          .select_from(joined).where(feedback.c.kind == "implicit")
                          .group_by(*cfg, feedback.c.signal)):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).implicit[r.signal] = int(r.n)
    c = candidates.c
    for r in conn.execute(select(c.prompt_name, c.prompt_version, c.model_resolved, func.count().label("n"))
                          .where(c.status == "open").group_by(c.prompt_name, c.prompt_version, c.model_resolved)):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).open_candidates = int(r.n)
    j = judge_scores.c
    scored = judge_scores.join(traces, traces.c.id == j.trace_id)
    for r in conn.execute(
        select(*cfg, j.rubric_id, func.count(j.score).label("n"), func.sum(j.score).label("s"),
               func.sum(j.score * j.score).label("ss"))
        .select_from(scored).where(j.score.is_not(None), j.parse_status == "ok").group_by(*cfg, j.rubric_id)
    ):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).judge[r.rubric_id] = (
            int(r.n), float(r.s or 0.0), float(r.ss or 0.0))
    return sorted(out.values(), key=lambda s: (s.prompt_name or "", s.prompt_version or 0, s.model or ""))

