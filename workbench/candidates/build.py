"""Traces + feedback -> ranked, de-duplicated, redacted golden-set candidates (pure: no store, no I/O).

Rules, in order:

1. Latest vote wins: feedback is append-only, so for explicit *votes* (``thumbs``, ``rating``) only the
   newest row per (trace, user, signal) counts (newest = latest ``created_at``, then largest id).
   Corrections, comments and implicit signals are all kept.
2. Who spoke: ``feedback.user_id``, else the trace's ``user_id``, else ``session:<id>``, else
   ``trace:<id>``. This identity is used both for latest-vote and for counting distinct users.
3. A trace with at least one negative label (see ``score.NEGATIVE_LABELS``) is flagged; positive
   feedback alone never makes a candidate, but positive next to negative is a conflict and scores.
4. Flagged traces are clustered on their redacted last user message (``cluster.cluster_texts``), scoped
   by prompt name and a hash of the earlier (non-system) conversation, so "why?" asked after two
   different answers never merges. The representative is the earliest member trace.
5. One candidate per cluster: representative's redacted input and output; ``expected_output`` is the
   redacted text of a correction (the representative's own first, else the newest in the cluster), else
   a pushback's ``evidence["edited_text"]``. ``signals`` maps each label to how many effective feedback
   rows carry it (strengths live in the score breakdown); ``users`` is distinct users with a negative
   signal; ``feedback_ids`` are all effective rows on member traces (superseded votes are left out).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from workbench.candidates.cluster import cluster_texts, normalize_text
from workbench.candidates.redact import redact_messages, redact_text
from workbench.candidates.score import CandidateConfig, Evidence, ScoreBreakdown, interpret_feedback, score_evidence
from workbench.errors import ValidationError
from workbench.ids import new_id
from workbench.models import Candidate, Feedback, Trace

__all__ = [
    "CandidateBuild",
    "build_candidates",
    "cluster_inputs",
    "effective_feedback",
    "explain_candidates",
    "identity",
]

_VOTES = frozenset({"thumbs", "rating"})
_SYSTEM_ROLES = frozenset({"system", "developer"})


@dataclass(frozen=True)
class CandidateBuild:
    """A candidate plus why it ranks where it does and what was redacted (provenance)."""

    candidate: Candidate
    score: ScoreBreakdown
    redactions: dict[str, int]
    evidence: tuple[Evidence, ...]


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def identity(feedback: Feedback, trace: Trace) -> str:
    """Whose opinion a feedback row is (rule 2 above)."""
    if feedback.user_id:
        return feedback.user_id
    if trace.user_id:
        return trace.user_id
    return f"session:{trace.session_id}" if trace.session_id else f"trace:{trace.id}"


def effective_feedback(feedback: Iterable[Feedback], traces: Mapping[str, Trace]) -> list[Feedback]:
    """Feedback that still counts: the latest explicit vote per (trace, user, signal), everything else.

    Returned oldest first (created_at, id). Raises ``ValidationError`` for feedback on a trace not given.
    """
    latest: dict[tuple[str, str, str], Feedback] = {}
    kept: list[Feedback] = []
    for row in feedback:
        trace = traces.get(row.trace_id)
        if trace is None:
            raise ValidationError(f"feedback {row.id}: trace_id {row.trace_id!r} is not among the traces given")
        if row.signal not in _VOTES:
            kept.append(row)
            continue
        key = (row.trace_id, identity(row, trace), row.signal)
        current = latest.get(key)
        if current is None or (_utc(row.created_at), row.id) > (_utc(current.created_at), current.id):
            latest[key] = row
    kept.extend(latest.values())
    kept.sort(key=lambda row: (_utc(row.created_at), row.id))
    return kept


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def cluster_inputs(trace: Trace) -> tuple[str, str]:
    """(redacted question text, scope) used to cluster one trace (rule 4)."""
    messages = trace.input
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=len(messages))
    earlier = [
        f"{m.get('role')}: {normalize_text(redact_text(_message_text(m)))}"
        for m in messages[:last_user]
        if m.get("role") not in _SYSTEM_ROLES
    ]
    context = hashlib.sha256("\n".join(earlier).encode()).hexdigest()[:16] if earlier else ""
    question = redact_text(trace.last_user_text)
    if not question.strip():  # no user text: fall back to the whole (redacted) input, never merge all blanks
        question = orjson.dumps(redact_messages(messages), option=orjson.OPT_SORT_KEYS).decode()
    return question, f"{trace.prompt_name or ''}\x1f{context}"


def _expected_output(members: Sequence[str], evidence: Sequence[Evidence], rows: Mapping[str, Feedback]) -> str | None:
    """Rule 5: the representative's correction, else the newest correction, else an edited pushback."""
    representative = members[0]
    if not any(item.label in ("correction", "pushback") for item in evidence):
        return None
    for label, text_of in (
        ("correction", lambda row: row.text),
        ("pushback", lambda row: row.evidence.get("edited_text")),
    ):
        found = [
            (item.trace_id == representative, item.at, item.feedback_id, text_of(rows[item.feedback_id]))
            for item in evidence
            if item.label == label
        ]
        found = [entry for entry in found if isinstance(entry[3], str) and entry[3].strip()]
        if found:
            return max(found)[3]
    return None


def explain_candidates(
    traces: Iterable[Trace],
    feedback: Iterable[Feedback],
    *,
    now: datetime,
    config: CandidateConfig | None = None,
    judge_scores: Mapping[str, float] | None = None,
) -> list[CandidateBuild]:
    """Candidates with their score breakdowns, highest priority first (ties: cluster key).

    ``judge_scores`` maps trace id -> judge score normalised to [0, 1] (1 = good); a cluster uses the
    mean over its members that have one. Candidate ids are fresh ULIDs: the store matches existing rows
    by ``cluster_key``, which is stable across runs.
    """
    config = config or CandidateConfig()
    now = _utc(now)
    by_id = {trace.id: trace for trace in traces}
    rows = effective_feedback(feedback, by_id)
    row_by_id = {row.id: row for row in rows}

    evidence_of: dict[str, list[Evidence]] = {}
    for row in rows:
        item = interpret_feedback(row, user=identity(row, by_id[row.trace_id]), config=config)
        evidence_of.setdefault(row.trace_id, []).append(item)
    flagged = sorted(
        (by_id[trace_id] for trace_id, items in evidence_of.items() if any(e.polarity < 0 for e in items)),
        key=lambda trace: (_utc(trace.created_at), trace.id),
    )
    if not flagged:
        return []
    questions, scopes = zip(*(cluster_inputs(trace) for trace in flagged), strict=True)
    clusters = cluster_texts(
        list(questions), order=list(range(len(flagged))), scopes=list(scopes), threshold=config.cluster_threshold
    )

    builds: list[CandidateBuild] = []
    for cluster in clusters:
        members = [flagged[i].id for i in cluster.members]
        representative = flagged[cluster.representative]
        evidence = [item for trace_id in members for item in evidence_of[trace_id]]
        judged = [judge_scores[t] for t in members if judge_scores and t in judge_scores]
        score = score_evidence(
            evidence,
            count=len(members),
            now=now,
            config=config,
            judge_score=sum(judged) / len(judged) if judged else None,
        )
        redactions: Counter[str] = Counter()
        expected = _expected_output(members, evidence, row_by_id)
        candidate = Candidate(
            id=new_id(),
            cluster_key=cluster.key,
            representative_trace_id=representative.id,
            member_trace_ids=members,
            feedback_ids=sorted(item.feedback_id for item in evidence),
            count=len(members),
            input=redact_messages(representative.input, redactions),
            output_text=redact_text(representative.output_text, redactions) if representative.output_text else None,
            expected_output=redact_text(expected, redactions) if expected else None,
            signals={label: float(n) for label, n in sorted(Counter(e.label for e in evidence).items())},
            primary_signal=score.primary_signal,
            users=score.users,
            priority=score.priority,
            prompt_name=representative.prompt_name,
            prompt_version=representative.prompt_version,
            model_resolved=representative.model_resolved,
            created_at=now,
            updated_at=now,
        )
        builds.append(CandidateBuild(candidate, score, dict(redactions), tuple(evidence)))
    builds.sort(key=lambda build: (-build.candidate.priority, build.candidate.cluster_key))
    return builds


def build_candidates(
    traces: Iterable[Trace],
    feedback: Iterable[Feedback],
    *,
    now: datetime,
    config: CandidateConfig | None = None,
    judge_scores: Mapping[str, float] | None = None,
) -> list[Candidate]:
    """Ranked candidates (see module rules); ``explain_candidates`` also returns the score terms."""
    return [
        build.candidate
        for build in explain_candidates(traces, feedback, now=now, config=config, judge_scores=judge_scores)
    ]
