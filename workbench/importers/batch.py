"""The write side every importer shares: checked rows in batches, already-stored ids skipped and counted,
progress saved in the same transaction as the rows, and one report of what was imported, skipped and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..models import Feedback
from ..store import Store
from ..store import feedback as feedback_rows
from ..store import imports as import_rows
from ..store import traces as trace_rows

__all__ = ["ImportReport", "TraceBatch"]

MAX_PROBLEMS = 20  # lines quoted in the report; the rest are counted


@dataclass
class ImportReport:
    """What one import did. ``skipped`` counts by reason; ``problems`` quotes the first bad inputs."""

    source: str
    imported: int = 0
    feedback: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    resumed_from: str | None = None
    dry_run: bool = False

    def skip(self, reason: str, problem: str | None = None) -> None:
        self.skipped[reason] += 1
        if problem is not None and len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def bad_input(self) -> int:
        """Inputs skipped because they were malformed (as opposed to already imported or filtered)."""
        return sum(n for reason, n in self.skipped.items() if reason in BAD_INPUT)

    def summary(self) -> str:
        """One line: ``imported 9,998 traces; skipped 3 (2 already imported, 1 malformed)``."""
        verb = "would import" if self.dry_run else "imported"
        head = f"{verb} {self.imported:,} traces"
        if self.feedback:
            head += f" and {self.feedback:,} feedback rows"
        head += f" from {self.source}"
        if self.resumed_from:
            head += f" (resumed at {self.resumed_from})"
        total = sum(self.skipped.values())
        if not total:
            return head + "; skipped 0"
        parts = ", ".join(f"{n:,} {reason}" for reason, n in self.skipped.most_common())
        return f"{head}; skipped {total:,} ({parts})"

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "imported": self.imported,
            "feedback": self.feedback,
            "skipped": dict(self.skipped),
            "problems": self.problems,
            "resumed_from": self.resumed_from,
            "dry_run": self.dry_run,
        }


ALREADY = "already imported"
FEEDBACK_ALREADY = "feedback already imported"
BEFORE_SINCE = "before --since"
NOT_A_CALL = "not a model call"
MALFORMED = "malformed"
REFUSED = "refused by the store"
BAD_INPUT = frozenset({MALFORMED, REFUSED})  # the reasons that make the CLI exit 2 (the rest are expected)


class TraceBatch:
    """Collects checked rows and writes them with the importer's progress (``state``) in one transaction.

    ``flush(state)`` skips ids already stored (counted as already imported), inserts the rest with
    ``ON CONFLICT DO NOTHING`` and saves ``state`` under ``source``: an import killed between two flushes
    resumes from the last saved state and loses nothing, and a re-run adds nothing.
    """

    def __init__(
        self,
        store: Store,
        source: str,
        report: ImportReport,
        *,
        dry_run: bool = False,
        since: datetime | None = None,
        on_flush: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.source = source
        self.report = report
        self.dry_run = dry_run
        self.since = since
        self.on_flush = on_flush
        self.dialect = store.dialect
        self._ids: list[str] = []
        self._rows: list[tuple[Any, ...]] = []
        self._labels: list[str] = []
        self._feedback: list[Feedback] = []

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, row: Mapping[str, Any], label: str) -> bool:
        """Check and queue one row (``label`` names it in a problem, e.g. ``line 7``); False if skipped."""
        if self.since is not None and row["created_at"] < self.since:
            self.report.skip(BEFORE_SINCE)
            return False
        try:
            encoded = trace_rows.encode_trace_row(row, self.dialect)
        except trace_rows.RowRefused as exc:
            self.report.skip(REFUSED, f"{label}: {exc}")
            return False
        self._ids.append(row["id"])
        self._rows.append(encoded)
        self._labels.append(label)
        return True

    def add_encoded(self, trace_id: str, encoded: tuple[Any, ...], label: str) -> None:
        """Queue a row already checked and encoded (encode_trace_row, e.g. in a worker process)."""
        self._ids.append(trace_id)
        self._rows.append(encoded)
        self._labels.append(label)

    def add_feedback(self, item: Feedback) -> None:
        self._feedback.append(item)

    def flush(self, state: dict[str, Any] | None) -> None:
        """Write what is queued and ``state`` (None: leave the saved state as it is)."""
        ids, rows, labels, items = self._ids, self._rows, self._labels, self._feedback
        self._ids, self._rows, self._labels, self._feedback = [], [], [], []
        if self.dry_run:
            with self.store.read() as conn:
                self._count(conn, ids, rows, labels)
            self.report.feedback += len(items)
        else:
            with self.store.write() as conn:
                fresh, fresh_labels = self._count(conn, ids, rows, labels)
                for index, reason in trace_rows.insert_traces(conn, fresh) if fresh else []:
                    self.report.imported -= 1
                    self.report.skip(REFUSED, f"{fresh_labels[index]}: {reason}")
                if items:
                    added = feedback_rows.add_feedback_many(conn, items)
                    self.report.feedback += added
                    if added < len(items):
                        self.report.skipped[FEEDBACK_ALREADY] += len(items) - added
                if state is not None:
                    import_rows.save_state(conn, self.source, state)
        if self.on_flush is not None:
            self.on_flush(len(ids))

    def _count(
        self, conn: Any, ids: list[str], rows: list[tuple[Any, ...]], labels: list[str]
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Drop rows already stored (or repeated within the batch); count the rest as imported."""
        stored = import_rows.existing_trace_ids(conn, ids) if ids else set()
        fresh: list[tuple[Any, ...]] = []
        fresh_labels: list[str] = []
        for trace_id, row, label in zip(ids, rows, labels, strict=True):
            if trace_id in stored:
                self.report.skip(ALREADY)
                continue
            stored.add(trace_id)
            fresh.append(row)
            fresh_labels.append(label)
        self.report.imported += len(fresh)
        return fresh, fresh_labels

    def clear(self) -> None:
        """The import finished: forget where it stopped (a re-run starts over, and adds nothing)."""
        if not self.dry_run:
            with self.store.write() as conn:
                import_rows.clear_state(conn, self.source)
