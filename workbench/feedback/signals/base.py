"""Findings and the per-session view the detectors share.

A *session* is the traces of one session_id. The view groups them into *turns*: a turn starts at a
trace whose input ends with a user message and swallows the tool-loop calls that follow it, so an agent
that calls the model five times for one question is one turn, whose answer is the last call's output.
Findings are about the answer trace (the turn's last trace); the trigger is the next turn's first trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from workbench.ids import new_id
from workbench.models import Feedback, Signal, last_user_text

from ..config import SignalConfig
from .lexicon import Terms, analyze, normalize
from .phrases import may_reject

__all__ = ["DetectorInfo", "Finding", "SessionView", "TraceLike", "Turn", "make_finding", "timestamp"]


class TraceLike(Protocol):
    """What detection reads from a trace; ``workbench.models.Trace`` fits, so do light row objects."""

    id: str
    created_at: datetime
    user_id: str | None
    input: list[dict[str, Any]]
    output_text: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    name: str
    version: int
    signal: Signal

    @property
    def source(self) -> str:
        """``name@version``: stored as the feedback source; a new version re-mines without duplicates."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One implicit signal about one answer trace, ready to be stored as ``Feedback(kind="implicit")``."""

    trace_id: str  # the answer the signal is about
    signal: Signal
    detector: str  # "repeat_ask@1"
    strength: float
    evidence: dict[str, Any]
    idempotency_key: str
    observed_at: datetime  # when the user's behaviour happened (trigger time, or answer + window)
    user_id: str | None = None
    text: str | None = None  # proposed correction (the user's edited version of the answer)

    def to_feedback(self, *, feedback_id: str | None = None, created_at: datetime | None = None) -> Feedback:
        """The Feedback row; value is -1 for negative signals and +1 for ``positive``."""
        return Feedback(
            id=feedback_id or new_id(),
            trace_id=self.trace_id,
            kind="implicit",
            signal=self.signal,
            value=1.0 if self.signal == "positive" else -1.0,
            text=self.text,
            strength=self.strength,
            source=self.detector,
            user_id=self.user_id,
            evidence=self.evidence,
            idempotency_key=self.idempotency_key,
            created_at=created_at or self.observed_at,
        )


def timestamp(value: datetime) -> float:
    """Epoch seconds; naive datetimes (SQLite) are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _is_user_turn(messages: list[dict[str, Any]]) -> bool:
    return bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "user"


@dataclass(slots=True)
class Turn:
    """One user turn and its answer (see module docstring)."""

    index: int
    first: TraceLike  # carries the user's message
    last: TraceLike  # carries the answer
    t: float  # epoch seconds of the user's message
    t_end: float  # epoch seconds of the answer call
    user_turn: bool
    raw: str  # the user's text, cut to max_chars
    norm: str
    ok: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    answer_id: str = ""  # the last trace's id (set by the view; follows tool-loop continuations)
    ask_id: str = ""  # the first trace's id
    user_id: str | None = None
    _terms: Terms | None = None
    _complaint: bool | None = None

    @property
    def complaint(self) -> bool:
        """Whether the user's text contains a rejection or doubt phrase anywhere (one regex pass)."""
        if self._complaint is None:
            self._complaint = may_reject(self.norm)
        return self._complaint

    @property
    def terms(self) -> Terms:
        if self._terms is None:
            self._terms = analyze(self.norm, self.raw, self.complaint)
        return self._terms


class SessionView:
    """Turns of one session plus memo slots, so detectors that depend on each other's verdicts
    (repeat-ask skips regenerations, positive skips pushback) compute each verdict once."""

    __slots__ = ("config", "encoder", "memo", "now", "turns")

    def __init__(
        self,
        traces: Sequence[TraceLike],
        config: SignalConfig,
        now: float | None,
        encoder: Any = None,
    ) -> None:
        self.config = config
        self.now = now
        self.encoder = encoder
        self.memo: dict[str, list[Any]] = {}
        self.turns = self._build(traces, config.max_chars)

    @staticmethod
    def _build(traces: Sequence[TraceLike], max_chars: int) -> list[Turn]:
        stamped = [(timestamp(t.created_at), t) for t in traces]
        if any(stamped[i][0] > stamped[i + 1][0] for i in range(len(stamped) - 1)):
            stamped.sort(key=lambda pair: (pair[0], pair[1].id))
        turns: list[Turn] = []
        for ts, trace in stamped:
            messages = trace.input or []
            user_turn = _is_user_turn(messages)
            ok = getattr(trace, "status", "ok") != "error"
            if turns and not user_turn:  # a tool-loop continuation: extend the current turn
                turn = turns[-1]
                turn.last, turn.t_end, turn.ok, turn.answer_id = trace, ts, ok, trace.id
                if trace.metadata:
                    turn.metadata = {**turn.metadata, **trace.metadata}
                continue
            raw = last_user_text(messages)[:max_chars]
            turns.append(
                Turn(
                    len(turns),
                    trace,
                    trace,
                    ts,
                    ts,
                    user_turn,
                    raw,
                    normalize(raw),
                    ok,
                    trace.metadata or {},
                    trace.id,
                    trace.id,
                    trace.user_id,
                )
            )
        return turns

    def same_user(self, a: Turn, b: Turn) -> bool:
        return a.user_id == b.user_id or a.user_id is None or b.user_id is None or not self.config.same_user_only

    def subject_ok(self, turn: Turn) -> bool:
        """Whether a turn's answer may be the subject of a signal (failed calls are skipped)."""
        return turn.ok or not self.config.skip_errors

    def slot(self, name: str) -> list[Any]:
        """A per-turn memo list (``...`` = not computed yet)."""
        found = self.memo.get(name)
        if found is None:
            found = self.memo[name] = [...] * len(self.turns)
        return found


def make_finding(
    info: DetectorInfo,
    subject: Turn,
    cause: str,
    strength: float,
    evidence: dict[str, Any],
    observed: float,
    text: str | None = None,
) -> Finding:
    """Build a finding whose idempotency key depends only on detector@version and trace ids.

    ``cause`` is the trigger trace id (or a fixed token such as ``meta``), so re-mining the same data,
    in any order or any number of times, yields the same keys.
    """
    key = f"{info.source}:{subject.answer_id}" + (f":{cause}" if cause else "")
    return Finding(
        trace_id=subject.answer_id,
        signal=info.signal,
        detector=info.source,
        strength=round(min(1.0, max(0.0, strength)), 4),
        evidence=evidence,
        idempotency_key=key,
        observed_at=datetime.fromtimestamp(observed, UTC),
        user_id=subject.user_id,
        text=text,
    )
