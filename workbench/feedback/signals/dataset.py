"""Labelled sessions in the implicit-signal evaluation schema, turned into the calls an app would make.

The schema (``tests/data/implicit_eval/CONVENTIONS.md``): a session is a list of turns ``{t, user, assistant,
labels}``; turn k's labels say how user message k reacts to answer k-1; ``abandoned_after_turn`` names the
last turn when the user left because its answer failed.

``calls(session)`` is the one place that decides what request each turn sends: the whole conversation so
far plus the new user message, except a regeneration, which re-sends the previous request without the
answer it replaces. The training script, the bench's direct mode (``traces``) and its replay through the
real wrapper all use it, so the three see the same conversations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.errors import ValidationError
from workbench.models import Trace

__all__ = ["SCORED", "Call", "Truth", "calls", "load_sessions", "traces", "truth"]

SCORED = ("repeat_ask", "regenerate", "pushback", "positive")
SYSTEM = "You are a helpful assistant."


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a session: sent ``t`` seconds after the session began, answered with ``answer``."""

    index: int
    t: float
    messages: list[dict[str, Any]]
    answer: str
    regenerate: bool


@dataclass
class Truth:
    """What a session's labels say, by turn index (the subject of a signal is the answer of a turn)."""

    signals: dict[str, set[int]] = field(default_factory=dict)  # signal -> indexes of answers it is about
    abandoned: int | None = None  # index of the failed last answer, or None
    turns: int = 0


def load_sessions(path: str | Path) -> list[dict[str, Any]]:
    """Sessions from a JSONL file; a bad line is a one-line ValidationError naming file and line."""
    out: list[dict[str, Any]] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            session = json.loads(line)
            if not isinstance(session.get("turns"), list) or not session["turns"]:
                raise ValueError("no turns")
            for turn in session["turns"]:
                float(turn["t"])
                str(turn["user"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValidationError(f"{path}:{number}: not a labelled session ({exc})") from None
        out.append(session)
    return out


def calls(session: dict[str, Any], system: str | None = SYSTEM) -> Iterator[Call]:
    """The requests of one session in order (see the module docstring for regenerations)."""
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    previous: list[dict[str, Any]] | None = None
    for index, turn in enumerate(session["turns"]):
        labels = turn.get("labels") or {}
        regenerate = bool(labels.get("regenerate")) and previous is not None
        if regenerate:
            assert previous is not None
            messages = list(previous)
            history = list(previous)
        else:
            messages = [*history, {"role": "user", "content": str(turn["user"])}]
        answer = str(turn.get("assistant") or "")
        yield Call(index, float(turn["t"]), messages, answer, regenerate)
        previous = messages
        history = [*messages, {"role": "assistant", "content": answer}]


def truth(session: dict[str, Any]) -> Truth:
    out = Truth(signals={name: set() for name in SCORED}, turns=len(session["turns"]))
    for index, turn in enumerate(session["turns"]):
        labels = turn.get("labels") or {}
        for name in SCORED:
            if index > 0 and labels.get(name):
                out.signals[name].add(index - 1)
    last = session.get("abandoned_after_turn")
    out.abandoned = int(last) if last is not None else None
    return out


def traces(session: dict[str, Any], start: datetime, *, prefix: str = "") -> list[Trace]:
    """The traces a wrapper would have recorded for ``session`` (ids ``{prefix}{session_id}-{k:03d}``)."""
    sid = str(session["session_id"])
    user = session.get("user_id")
    return [
        Trace(
            id=f"{prefix}{sid}-{call.index:03d}",
            created_at=start + timedelta(seconds=call.t),
            session_id=prefix + sid,
            user_id=user,
            model_requested="gpt-4o-mini",
            input=call.messages,
            output_text=call.answer,
        )
        for call in calls(session)
    ]


def sessions_start(n: int, base: datetime = datetime(2025, 1, 6, tzinfo=UTC)) -> Iterable[datetime]:
    """Start times one day apart, so sessions never overlap and every silence has passed at the end."""
    return (base + timedelta(days=i) for i in range(n))
