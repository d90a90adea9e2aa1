"""Candidates: builder upserts, the triage queue (keyset pages), the append-only decision log, overview.

The queue is read a page at a time in ``ORDER BY priority DESC, id`` with keyset cursors, so a
screen over a million candidates never loads more than a page. A decision is one transaction that
appends to ``decisions`` and sets the candidate's human fields, so nothing is half-written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    bindparam,
    case,
    column,
    exists,
    func,
    literal,
    or_,
    select,
    table,
)

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import Candidate, Decision, Feedback, JudgeScore, Trace, utcnow
from .schema import candidate_search, candidates, decisions, feedback, judge_scores, traces
from .traces import row_to_trace

__all__ = [
    "EDITABLE_FIELDS",
    "STATUSES",
    "CandidateDetail",
    "Facets",
    "QueueCursor",
    "QueueFilter",
    "QueueRow",
    "UpsertResult",
    "VersionStats",
    "candidate_detail",
    "count_queue",
    "get_candidate",
    "list_decisions",
    "queue_facets",
    "queue_page",
    "record_decision",
    "search_term",
    "undo_decision",
    "upsert_candidates",
    "version_overview",
]

STATUSES = ("open", "accepted", "rejected", "skipped")
EDITABLE_FIELDS = ("status", "labels", "notes", "expected_output")
# Fields the candidate builder owns; status/labels/notes belong to people and are never overwritten.
_MACHINE_FIELDS = (
    "representative_trace_id",
    "member_trace_ids",
    "feedback_ids",
    "count",
    "input",
    "output_text",
    "signals",
    "primary_signal",
    "users",
    "priority",
    "prompt_name",
    "prompt_version",
    "model_resolved",
)
_CHUNK = 500

QueueCursor = tuple[float, str]


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows. ``prompt`` is ``name`` or ``name@version``; ``text`` a search (see search_term)."""

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
        chunk = keys[start : start + _CHUNK]
        known = {
            row.cluster_key: (row.id, bool(row.decided))
            for row in conn.execute(
                select(candidates.c.cluster_key, candidates.c.id, decided.label("decided")).where(
                    candidates.c.cluster_key.in_(chunk)
                )
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


# ---------------------------------------------------------------- search
#
# What a search term matches (the same on both backends, as far as the databases allow):
# - the candidate whose id is the term, and
# - 3+ characters: candidates whose search document (message contents, output, expected output, notes,
#   labels; see migration 0005) contains the term anywhere, ignoring case (SQLite folds ASCII letters
#   only, exactly like its LIKE; PostgreSQL's ILIKE folds all letters);
# - 1-2 characters: candidates with a word starting with the term (at the start of a field or line, or
#   after a space), so the first keystrokes of an incremental search are useful and indexed. One or two
#   characters with no letter or digit do not search yet (see search_term).
# The predicate on ``candidate_search.doc`` (_doc_matches) defines the result; the indexes (FTS5 trigram
# and unicode61 prefixes on SQLite, pg_trgm on PostgreSQL) only find a superset of rows to check it on.
#
# Two plans (see _search_rows):
# - walk: the queue is read in priority order and each row's document checked, stopping at a page
#   (cost ~ rows until a page is found). Every search starts with one bounded window of it, where a
#   common term ends; a term with >= DENSE_MATCHES index matches walks further windows.
# - index: every index match is read, filtered and the top page sorted (cost ~ matches), for rare
#   and absent terms, and to finish a page after the windows, so the result is complete either way.
# Both name their order explicitly, so no query planner can turn a rare term into a scan of the queue.

SEARCH_SHORT = 3  # terms shorter than this match word starts, longer ones any substring
DENSE_MATCHES = 12_000  # index matches beyond which walking the queue is cheaper than sorting the matches
WINDOWS = (1_024, 4_096, 16_384)  # queue rows checked per step of a walk (the first before any count)
_TRIGRAM = table("candidate_search_trigram", column("rowid"), column("candidate_search_trigram"))
_WORDS = table("candidate_search_words", column("rowid"), column("candidate_search_words"))
_TOKEN = re.compile(r"[^\W_]+")


def search_term(text: str | None) -> str | None:
    """The term a search text stands for (trimmed), or None when it cannot be searched yet.

    One or two characters with no letter or digit (``#``, ``--``) start no word and no index can
    answer them, so they wait for the next keystroke instead of scanning every candidate.
    """
    term = (text or "").replace("\x00", "").strip()
    if not term or (len(term) < SEARCH_SHORT and not _TOKEN.search(term)):
        return None
    return term


def _doc_matches(conn: Connection, doc: ColumnElement[Any], term: str, *, indexed: bool = True) -> ColumnElement[bool]:
    """The predicate that defines a match, on a search document (see the notes above).

    ``indexed``: PostgreSQL's pg_trgm serves the word-start test only when it is written on the bare
    column (three patterns); a per-row check (a walk) uses the one-pattern form of the same test, on an
    expression no index serves, so the planner cannot trade the walk for a bitmap of every match.
    """
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    postgres = conn.dialect.name == "postgresql"
    if postgres and not indexed:  # an expression no index serves: the planner must check row by row
        doc = doc + ""
    if len(term) >= SEARCH_SHORT:
        tests = [(doc, f"%{escaped}%")]
    elif postgres and indexed:  # a word start: at the very start, after a space or a line break (fields are lines)
        tests = [(doc, f"{escaped}%"), (doc, f"% {escaped}%"), (doc, f"%\n{escaped}%")]
    else:
        tests = [(func.replace(literal(" ") + doc, "\n", " "), f"% {escaped}%")]
    if postgres:  # inlined, so a prepared statement's generic plan never hides the pattern from pg_trgm
        return or_(
            *(
                target.ilike(bindparam(None, pattern, type_=Text, literal_execute=True), escape="\\")
                for target, pattern in tests
            )
        )
    return or_(*(target.like(pattern, escape="\\") for target, pattern in tests))  # SQLite LIKE folds ASCII


def _fts_source(term: str) -> tuple[Any, ColumnElement[bool]]:
    """SQLite: the FTS5 table and MATCH condition whose rows include every match of ``term``."""
    if len(term) >= SEARCH_SHORT:
        phrase = '"' + term.replace('"', '""') + '"'  # one quoted string: no FTS syntax is ever parsed
        return _TRIGRAM, _TRIGRAM.c.candidate_search_trigram.match(phrase)
    token = _TOKEN.search(term)
    assert token is not None  # search_term() lets only terms with a letter or digit through
    return _WORDS, _WORDS.c.candidate_search_words.match('"' + token.group(0) + '"*')


def _index_matches(conn: Connection, term: str) -> Select[Any]:
    """``candidate_search`` rows matching ``term``, read through the text index."""
    cs = candidate_search.c
    if conn.dialect.name == "postgresql":  # the pg_trgm GIN index serves ILIKE directly
        return select(cs.candidate_id).where(_doc_matches(conn, cs.doc, term))
    fts, match = _fts_source(term)
    return (
        select(cs.candidate_id)
        .select_from(fts.join(candidate_search, cs.doc_id == fts.c.rowid))
        .where(match, _doc_matches(conn, cs.doc, term))
    )


def _index_hits(conn: Connection, term: str, cap: int) -> int:
    """How many documents the index returns for ``term``, counting no further than ``cap``."""
    if conn.dialect.name == "postgresql":
        inner: Select[Any] = (
            select(candidate_search.c.doc_id).where(_doc_matches(conn, candidate_search.c.doc, term)).limit(cap)
        )
    else:
        fts, match = _fts_source(term)
        inner = select(fts.c.rowid).where(match).limit(cap)
    return int(conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one())


def _maybe_id(term: str) -> bool:
    return len(term) <= 64 and not any(ch.isspace() for ch in term)


def _filter_conditions(flt: QueueFilter, *, with_status: bool = True) -> list[ColumnElement[bool]]:
    c = candidates.c
    conditions: list[ColumnElement[bool]] = []
    if flt.status and with_status:
        conditions.append(c.status == flt.status)
    if flt.signal:
        conditions.append(c.primary_signal == flt.signal)
    if flt.prompt:
        name, _, version = flt.prompt.rpartition("@") if "@" in flt.prompt else (flt.prompt, "", "")
        conditions.append(c.prompt_name == name)
        if version:
            if not version.isdigit():
                raise ValidationError(f"bad prompt filter {flt.prompt!r}; use name or name@version")
            conditions.append(c.prompt_version == int(version))
    if flt.model:
        conditions.append(c.model_resolved == flt.model)
    return conditions


def _where(query: Select[Any], flt: QueueFilter) -> Select[Any]:
    """The filters other than the search text."""
    return query.where(*_filter_conditions(flt))


def _search_filters(query: Select[Any], flt: QueueFilter) -> Select[Any]:
    """The other filters on index matches: status from ``candidate_search``, the rest per match."""
    cs, c = candidate_search.c, candidates.c
    if flt.status:  # `|| ''`: no index on status may drive this query; the text index must
        query = query.where(cs.status + "" == flt.status)
    others = _filter_conditions(flt, with_status=False)
    if others:
        query = query.where(exists(select(c.id).where(c.id == cs.candidate_id, *others)))
    return query


def _keyset(
    priority: ColumnElement[Any], ident: ColumnElement[Any], after: QueueCursor | None, before: QueueCursor | None
) -> tuple[list[ColumnElement[bool]], list[Any]]:
    """Conditions and ORDER BY for the rows after or before a cursor (``before`` reads backwards).

    Written as ``priority <= p AND (priority < p OR id > i)`` so a priority index gives a range scan
    instead of the OR defeating it.
    """
    if after is not None and before is not None:
        raise ValidationError("queue_page takes after or before, not both")
    if after is not None:
        p, i = after
        return [priority <= p, or_(priority < p, ident > i)], [priority.desc(), ident]
    if before is not None:
        p, i = before
        return [priority >= p, or_(priority > p, ident < i)], [priority, ident.desc()]
    return [], [priority.desc(), ident]


# ---------------------------------------------------------------- queue


_ROW_COLUMNS = (
    candidates.c.id,
    candidates.c.priority,
    candidates.c.primary_signal,
    candidates.c.users,
    candidates.c.count,
    candidates.c.prompt_name,
    candidates.c.prompt_version,
    candidates.c.model_resolved,
    candidates.c.status,
    candidates.c.labels,
    candidates.c.created_at,
    candidates.c.input,
    func.substr(candidates.c.output_text, 1, 400).label("output_head"),
)


def _plain_rows(
    conn: Connection, flt: QueueFilter, after: QueueCursor | None, before: QueueCursor | None, limit: int
) -> list[Any]:
    c = candidates.c
    conditions, order = _keyset(c.priority, c.id, after, before)
    return list(conn.execute(_where(select(*_ROW_COLUMNS), flt).where(*conditions).order_by(*order).limit(limit)))


def _rows_by_id(conn: Connection, ids: Select[Any], order: list[Any]) -> list[Any]:
    return list(conn.execute(select(*_ROW_COLUMNS).where(candidates.c.id.in_(ids)).order_by(*order)))


def _sparse_rows(
    conn: Connection, flt: QueueFilter, term: str, after: QueueCursor | None, before: QueueCursor | None, limit: int
) -> list[Any]:
    """The rare-term plan: all index matches, filtered, then the page's ids sorted out of them."""
    cs, c = candidate_search.c, candidates.c
    # `+ 0`: sorting the matches is the plan; walking an order index and probing the text index per row
    # (what a planner may prefer for ORDER BY ... LIMIT) costs a scan of the whole queue for a rare term
    conditions, order = _keyset(cs.priority + 0, cs.candidate_id, after, before)
    ids = _search_filters(_index_matches(conn, term), flt).where(*conditions).order_by(*order).limit(limit)
    rows = _rows_by_id(conn, ids, _keyset(c.priority, c.id, after, before)[1])
    if _maybe_id(term) and not any(r.id == term for r in rows):  # the candidate with that id, if it passes
        by_id = list(
            conn.execute(
                _where(select(*_ROW_COLUMNS), flt).where(c.id == term, *_keyset(c.priority, c.id, after, before)[0])
            )
        )
        if by_id:
            merged = sorted([*rows, *by_id], key=lambda r: (-r.priority, r.id))
            rows = (merged[::-1] if before is not None else merged)[:limit]
    return rows


def _walk(
    conn: Connection,
    flt: QueueFilter,
    term: str,
    after: QueueCursor | None,
    before: QueueCursor | None,
    limit: int,
    windows: tuple[int, ...],
) -> tuple[list[Any], QueueCursor | None, QueueCursor | None, bool]:
    """The common-term plan: walk the queue in order, checking each row's document, until ``limit`` rows.

    The walk reads ``candidate_search`` through its own (status, priority, id) index and stops at the
    first ``limit`` matches, like a plain page; each step is bounded to ``size`` rows (the window's last
    row is found first, from the index alone), so a term that is rare where the queue is filtered costs
    a few windows and then the index plan, never a walk of the whole queue. Returns the rows, the
    cursor where the walk stopped (as ``after``/``before``) and whether the queue ended.
    """
    cs, c = candidate_search.c, candidates.c
    others = _filter_conditions(flt, with_status=False)
    check = _doc_matches(conn, cs.doc, term, indexed=False)
    if _maybe_id(term):
        check = or_(check, cs.candidate_id == term)
    found: list[Any] = []
    for size in windows:
        conditions, order = _keyset(cs.priority, cs.candidate_id, after, before)
        if flt.status:
            conditions.append(cs.status == flt.status)
        end = conn.execute(
            select(cs.priority, cs.candidate_id).where(*conditions).order_by(*order).offset(size - 1).limit(1)
        ).first()
        bound: list[ColumnElement[bool]] = []
        if end is not None:  # up to and including the window's last row
            p, i = end
            bound = (
                [cs.priority <= p, or_(cs.priority < p, cs.candidate_id >= i)]
                if before is not None
                else [cs.priority >= p, or_(cs.priority > p, cs.candidate_id <= i)]
            )
        ids = select(cs.candidate_id).where(*conditions, *bound, check)
        if others:
            ids = ids.where(exists(select(c.id).where(c.id == cs.candidate_id, *others)))
        found += _rows_by_id(
            conn, ids.order_by(*order).limit(limit - len(found)), _keyset(c.priority, c.id, after, before)[1]
        )
        if len(found) >= limit:
            return found, after, before, False
        if end is None:  # the queue ended inside this window
            return found, after, before, True
        after, before = (None, (p, i)) if before is not None else ((p, i), None)
    return found, after, before, False


def _search_rows(
    conn: Connection, flt: QueueFilter, term: str, after: QueueCursor | None, before: QueueCursor | None, limit: int
) -> list[Any]:
    """A search page: a short walk first (a common term ends there), then the plan the index count picks."""
    found, after, before, ended = _walk(conn, flt, term, after, before, limit, WINDOWS[:1])
    if ended or len(found) >= limit:
        return found
    if _index_hits(conn, term, DENSE_MATCHES) >= DENSE_MATCHES:
        more, after, before, ended = _walk(conn, flt, term, after, before, limit - len(found), WINDOWS[1:])
        found += more
        if ended or len(found) >= limit:
            return found
    return found + _sparse_rows(conn, flt, term, after, before, limit - len(found))


def queue_page(
    conn: Connection,
    flt: QueueFilter = QueueFilter(),
    *,
    after: QueueCursor | None = None,
    before: QueueCursor | None = None,
    limit: int = 100,
) -> list[QueueRow]:
    """One page in queue order (priority high to low, then id), after or before a cursor."""
    term = search_term(flt.text)
    if term is None:
        found = _plain_rows(conn, flt, after, before, limit)
    else:
        found = _search_rows(conn, flt, term, after, before, limit)
    rows = [
        QueueRow(
            id=r.id,
            priority=r.priority,
            primary_signal=r.primary_signal,
            users=r.users,
            count=r.count,
            prompt_name=r.prompt_name,
            prompt_version=r.prompt_version,
            model_resolved=r.model_resolved,
            status=r.status,
            labels=r.labels or [],
            created_at=r.created_at,
            input=r.input or [],
            output_head=r.output_head or "",
        )
        for r in found
    ]
    return rows[::-1] if before is not None else rows


def count_queue(conn: Connection, flt: QueueFilter = QueueFilter(), *, cap: int | None = None) -> int:
    """How many candidates match; with ``cap``, stop counting there (a count may read many rows)."""
    term = search_term(flt.text)
    if term is None:
        inner = _where(select(literal(1).label("one")).select_from(candidates), flt)
    else:  # index matches that pass the filters, read from the index side and stopped at the cap
        inner = _search_filters(_index_matches(conn, term), flt)
    if cap is not None:
        inner = inner.limit(cap)
    total = int(conn.execute(select(func.count()).select_from(inner.subquery())).scalar_one())
    if term is not None and _maybe_id(term):  # the candidate with that id, when its text does not match
        c, cs = candidates.c, candidate_search.c
        text_match = exists(select(cs.candidate_id).where(cs.candidate_id == c.id, _doc_matches(conn, cs.doc, term)))
        if conn.execute(_where(select(c.id), flt).where(c.id == term, ~text_match)).first() is not None:
            total += 1
    return total if cap is None else min(total, cap)


def queue_facets(conn: Connection) -> Facets:
    c = candidates.c
    statuses = {r.status: int(r.n) for r in conn.execute(select(c.status, func.count().label("n")).group_by(c.status))}
    signals = [
        r[0]
        for r in conn.execute(
            select(c.primary_signal)
            .where(c.primary_signal.is_not(None))
            .group_by(c.primary_signal)
            .order_by(c.primary_signal)
        )
    ]
    prompts = [
        f"{r.prompt_name}@{r.prompt_version}"
        for r in conn.execute(
            select(c.prompt_name, c.prompt_version)
            .where(c.prompt_name.is_not(None))
            .group_by(c.prompt_name, c.prompt_version)
            .order_by(c.prompt_name, c.prompt_version)
        )
    ]
    models = [
        r[0]
        for r in conn.execute(
            select(c.model_resolved)
            .where(c.model_resolved.is_not(None))
            .group_by(c.model_resolved)
            .order_by(c.model_resolved)
        )
    ]
    return Facets(statuses, signals, prompts, models)


# ---------------------------------------------------------------- decisions


def _state(row: Any) -> dict[str, Any]:
    return {
        "status": row.status,
        "labels": row.labels or [],
        "notes": row.notes,
        "expected_output": row.expected_output,
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
        select(candidates.c.status, candidates.c.labels, candidates.c.notes, candidates.c.expected_output).where(
            candidates.c.id == candidate_id
        )
    ).first()
    if row is None:
        raise NotFoundError(f"candidate {candidate_id} no longer exists (deleted or rebuilt); decision not recorded")
    now = utcnow()
    decision = Decision(
        id=new_id(),
        candidate_id=candidate_id,
        action=action,
        actor=actor,
        before=_state(row) if before is None else dict(before),
        after=dict(after),
        created_at=now,
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
    query = (
        select(decisions)
        .where(decisions.c.candidate_id == candidate_id)
        .order_by(decisions.c.created_at, decisions.c.id)
    )
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
    members = [
        row_to_trace(r)
        for r in conn.execute(
            select(traces).where(traces.c.id.in_(member_ids)).order_by(traces.c.created_at, traces.c.id)
        )
    ]
    fb_ids = cand.feedback_ids[: limit * 4]
    fb_rows = conn.execute(
        select(feedback)
        .where(or_(feedback.c.id.in_(fb_ids), feedback.c.trace_id.in_(member_ids)))
        .order_by(feedback.c.created_at, feedback.c.id)
        .limit(limit * 4)
    )
    scores = conn.execute(
        select(judge_scores)
        .where(judge_scores.c.trace_id.in_(member_ids))
        .order_by(judge_scores.c.created_at, judge_scores.c.id)
        .limit(limit * 4)
    )
    return CandidateDetail(
        candidate=cand,
        members=members,
        feedback=[_feedback(r) for r in fb_rows],
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
    for r in conn.execute(select(*cfg, func.count().label("n"), func.min(t.created_at).label("first")).group_by(*cfg)):
        stats = get((r.prompt_name, r.prompt_version, r.model_resolved))
        stats.traces, stats.first_seen = int(r.n), r.first
    up = func.sum(case((feedback.c.value > 0.5, 1), else_=0))
    joined = feedback.join(traces, traces.c.id == feedback.c.trace_id)
    for r in conn.execute(
        select(*cfg, func.count().label("n"), up.label("up"))
        .select_from(joined)
        .where(feedback.c.signal == "thumbs", feedback.c.value.is_not(None))
        .group_by(*cfg)
    ):
        stats = get((r.prompt_name, r.prompt_version, r.model_resolved))
        stats.thumbs_n, stats.thumbs_up = int(r.n), int(r.up or 0)
    for r in conn.execute(
        select(*cfg, feedback.c.signal, func.count(feedback.c.trace_id.distinct()).label("n"))
        .select_from(joined)
        .where(feedback.c.kind == "implicit")
        .group_by(*cfg, feedback.c.signal)
    ):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).implicit[r.signal] = int(r.n)
    c = candidates.c
    for r in conn.execute(
        select(c.prompt_name, c.prompt_version, c.model_resolved, func.count().label("n"))
        .where(c.status == "open")
        .group_by(c.prompt_name, c.prompt_version, c.model_resolved)
    ):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).open_candidates = int(r.n)
    j = judge_scores.c
    scored = judge_scores.join(traces, traces.c.id == j.trace_id)
    for r in conn.execute(
        select(
            *cfg,
            j.rubric_id,
            func.count(j.score).label("n"),
            func.sum(j.score).label("s"),
            func.sum(j.score * j.score).label("ss"),
        )
        .select_from(scored)
        .where(j.score.is_not(None), j.parse_status == "ok")
        .group_by(*cfg, j.rubric_id)
    ):
        get((r.prompt_name, r.prompt_version, r.model_resolved)).judge[r.rubric_id] = (
            int(r.n),
            float(r.s or 0.0),
            float(r.ss or 0.0),
        )
    return sorted(out.values(), key=lambda s: (s.prompt_name or "", s.prompt_version or 0, s.model or ""))
