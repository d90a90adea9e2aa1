"""The decision desk: every triage key writes to the store at once; nothing the user decided is dropped.

A decision is written in its own transaction (a bulk action: one transaction for all its rows).
If the store is unreachable the decision waits in ``pending`` and is retried before the next
write and on a timer; at exit anything still unsaved goes to a JSONL file the user is told about.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ..errors import NotFoundError, WorkbenchError
from ..models import Decision
from ..store import Store
from ..store.candidates import record_decision, undo_decision

__all__ = ["DecisionDesk", "Outcome", "Pending", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """One line for the user: our errors already are; a driver error gets its first line only."""
    if isinstance(exc, WorkbenchError):
        return str(exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no details'}"


@dataclass(frozen=True)
class Pending:
    candidate_id: str
    action: str
    after: dict[str, Any]
    at: str


@dataclass
class Outcome:
    recorded: dict[str, Decision] = field(default_factory=dict)  # candidate id -> decision written
    missing: list[str] = field(default_factory=list)  # candidates that no longer exist
    error: str | None = None  # store failure: the decisions wait in DecisionDesk.pending


class DecisionDesk:
    """Writes decisions for one actor and remembers this session's groups for undo."""

    def __init__(self, store: Store, actor: str) -> None:
        self.store = store
        self.actor = actor
        self.undo_stack: list[list[Decision]] = []
        self.pending: list[Pending] = []

    def flush(self) -> str | None:
        """Retry decisions that could not be written; returns the error if the store still refuses."""
        if not self.pending:
            return None
        try:
            with self.store.write() as conn:
                for item in self.pending:
                    try:
                        record_decision(conn, item.candidate_id, item.action, self.actor, None, item.after)
                    except NotFoundError:
                        continue  # deleted meanwhile; the user was told when it was made
        except Exception as exc:
            return describe_error(exc)
        self.pending.clear()
        return None

    def decide(self, candidate_ids: list[str], action: str, after: dict[str, Any]) -> Outcome:
        """Record ``action`` on every candidate id now (one transaction)."""
        outcome = Outcome()
        error = self.flush()
        if error is None:
            try:
                with self.store.write() as conn:
                    for cid in candidate_ids:
                        try:
                            outcome.recorded[cid] = record_decision(conn, cid, action, self.actor, None, after)
                        except NotFoundError:
                            outcome.missing.append(cid)
            except Exception as exc:
                error = describe_error(exc)
                outcome.recorded.clear()
                outcome.missing.clear()
        if error is not None:
            outcome.error = error
            now = datetime.now(UTC).isoformat()
            self.pending.extend(Pending(cid, action, dict(after), now) for cid in candidate_ids)
        elif outcome.recorded:
            self.undo_stack.append(list(outcome.recorded.values()))
        return outcome

    def undo(self) -> Outcome:
        """Undo this session's last decision group with new 'undo' decisions restoring 'before'."""
        outcome = Outcome()
        if self.pending:
            outcome.error = f"{len(self.pending)} decision(s) are still waiting to be saved; undo once they are"
            return outcome
        if not self.undo_stack:
            return outcome
        group = self.undo_stack[-1]
        try:
            with self.store.write() as conn:
                for decision in reversed(group):
                    try:
                        outcome.recorded[decision.candidate_id] = undo_decision(conn, decision.id, self.actor)
                    except NotFoundError:
                        outcome.missing.append(decision.candidate_id)
        except Exception as exc:
            return Outcome(error=describe_error(exc))
        self.undo_stack.pop()
        return outcome

    def save_unsaved(self, folder: Path | None = None) -> Path | None:
        """Last resort at exit: write still-pending decisions to a JSONL file and return its path."""
        if not self.pending or self.flush() is None:
            return None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        for target in (folder, self.store.home, Path.cwd()):
            if target is None:
                continue
            path = Path(target) / f"unsaved-decisions-{stamp}-{os.getpid()}.jsonl"
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("ab") as handle:
                    for item in self.pending:
                        handle.write(orjson.dumps({**item.__dict__, "actor": self.actor}) + b"\n")
            except OSError:
                continue
            self.pending.clear()  # they live in the file now; never written twice
            return path
        return None
