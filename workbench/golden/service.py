"""Golden sets on the store: build versions from triage decisions, trace items back, log exports.

Which candidates count as accepted (the rule ``golden build --from accepted`` applies):

* status ``accepted`` (the latest status-setting decision was an accept), or
* status ``open`` and the latest decision that touched status or expected output was an ``edit``
  that left an expected output: a reviewer who writes the right answer has accepted the example.
  An ``undo`` after it, a reject or a skip takes it out again.

An item's expected answer is the candidate's ``expected_output`` (a reviewer's edit, or the
redacted user correction the candidate builder proposed); when no decision ever set one, the
newest user correction on the candidate's traces, redacted the same way. The original (rejected)
answer is the candidate's redacted output. Versions are content-addressed (``build_version``), so a
rebuild that changes nothing writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workbench.candidates.redact import redact_text
from workbench.errors import GoldenSetError, NotFoundError, ValidationError, WorkbenchError
from workbench.golden.exporters import ExportResult, export
from workbench.golden.items import GoldenItem, from_candidate
from workbench.golden.sets import (
    BuildResult,
    GoldenVersion,
    build_version,
    check_name,
    find_item,
    load_manifest,
    load_version,
    parse_ref,
)
from workbench.golden.verify import Problem, VerifyReport, verify
from workbench.models import Export
from workbench.store import Store
from workbench.store import exports as export_rows
from workbench.store.exports import DecidedCandidate, ProvenanceRows

__all__ = [
    "SOURCES",
    "ItemView",
    "LoggedExport",
    "StoreBuild",
    "build_from_store",
    "default_root",
    "expected_output_for",
    "export_logged",
    "is_accepted",
    "item_for",
    "show_item",
    "verify_with_log",
]

SOURCES = ("accepted",)
_DECIDING_FIELDS = ("status", "expected_output")


def default_root(store: Store | None) -> Path:
    """Where ``golden_sets/`` lives: the project directory holding a SQLite store's ``.workbench/``,
    else (PostgreSQL, or no store) the current directory."""
    if store is not None and store.location.is_sqlite:
        return store.home.parent
    return Path.cwd()


def is_accepted(decided: DecidedCandidate) -> bool:
    """The acceptance rule in the module docstring."""
    cand = decided.candidate
    if cand.status == "accepted":
        return True
    if cand.status != "open":
        return False
    deciding = [d for d in decided.decisions if any(k in d.after for k in _DECIDING_FIELDS)]
    return bool(deciding) and deciding[-1].action == "edit" and bool((cand.expected_output or "").strip())


def expected_output_for(decided: DecidedCandidate) -> str | None:
    """The wanted answer: the candidate's own, else (no decision ever set one) the newest correction."""
    cand = decided.candidate
    if (cand.expected_output or "").strip():
        return cand.expected_output
    if any("expected_output" in d.after for d in decided.decisions):
        return None  # a reviewer cleared it on purpose
    texts = [f.text for f in decided.corrections if f.text and f.text.strip()]
    return redact_text(texts[-1]) if texts else None


def item_for(decided: DecidedCandidate) -> GoldenItem:
    """One golden item from an accepted candidate, with every id that led to it."""
    cand = decided.candidate.model_copy(update={"expected_output": expected_output_for(decided)})
    return from_candidate(
        cand, rubric_ids=decided.rubric_ids, decision_ids=[d.id for d in decided.decisions], tools=decided.tools
    )


@dataclass
class StoreBuild:
    result: BuildResult
    candidates: int  # accepted candidates that became items
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (candidate id, reason)
    removed_candidates: list[str] = field(default_factory=list)  # --since: dropped from the base version


def _latest_decision(decided: DecidedCandidate) -> tuple[datetime, str]:
    last = decided.decisions[-1]
    return (last.created_at, last.id)


def _items(decided: list[DecidedCandidate]) -> tuple[dict[str, GoldenItem], list[tuple[str, str]]]:
    """Items by id from the accepted candidates; two with the same input keep the later-decided one."""
    items: dict[str, tuple[GoldenItem, DecidedCandidate]] = {}
    skipped: list[tuple[str, str]] = []
    for entry in sorted((d for d in decided if is_accepted(d)), key=_latest_decision):
        try:
            item = item_for(entry)
        except ValidationError as exc:
            skipped.append((entry.candidate.id, str(exc)))
            continue
        if item.id in items:
            older = items[item.id][1].candidate.id
            skipped.append((older, f"same input as candidate {entry.candidate.id}, which was decided later"))
        items[item.id] = (item, entry)
    return {key: value[0] for key, value in items.items()}, skipped


def build_from_store(
    store: Store,
    root: str | Path,
    name: str,
    *,
    source: str = "accepted",
    since_version: int | str | None = None,
    tool_version: str,
    created_at: datetime | None = None,
) -> StoreBuild:
    """Build a new version of ``name`` from the store's accepted candidates (nothing if unchanged).

    With ``since_version`` the build starts from that version's items and applies only what was
    decided after it was built: newly accepted candidates are added (or replace their old item),
    candidates decided otherwise since then are dropped, everything else is carried over as is.
    """
    check_name(name)  # a bad name is bad input whatever the store holds
    if source not in SOURCES:
        raise ValidationError(f"--from {source!r}: the only source is {', '.join(SOURCES)}")
    base: GoldenVersion | None = None
    if since_version is not None:
        base = load_version(root, name, parse_ref(f"{name}@{since_version}")[1])
    with store.read() as conn:
        decided = export_rows.decided_candidates(conn, decided_after=base.info.created_at if base else None)
    items, skipped = _items(decided)
    removed: list[str] = []
    label = source
    if base is not None:
        touched = {d.candidate.id for d in decided}
        carried = {}
        for item in base.items:
            if item.provenance.candidate_id in touched:
                removed.append(item.provenance.candidate_id)
            else:
                carried[item.id] = item
        items = {**carried, **items}
        label = f"{source} since v{base.version}"
        removed = sorted(set(removed) - {i.provenance.candidate_id for i in items.values()})
    if not items:
        where = f" since {base.ref}" if base is not None else ""
        raise GoldenSetError(
            f"golden set {name!r}: no accepted candidates{where} in store {store.location.display}; "
            "accept some in triage (`workbench`) first"
        )
    result = build_version(
        root, name, list(items.values()), tool_version=tool_version, source=label, created_at=created_at
    )
    return StoreBuild(result, len(items), skipped, removed)


# ---------------------------------------------------------------- show


@dataclass
class ItemView:
    version: GoldenVersion
    item: GoldenItem
    provenance: ProvenanceRows | None  # None: no store to look in
    exports: list[Export] = field(default_factory=list)  # export log rows of this version
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "golden_set": self.version.name,
            "version": self.version.version,
            "file_sha256": self.version.info.file_sha256,
            "item": self.item.model_dump(mode="json"),
            "exports": [e.model_dump(mode="json") for e in self.exports],
            "note": self.note,
        }
        p = self.provenance
        out["store"] = (
            None
            if p is None
            else {
                "candidate": p.candidate.model_dump(mode="json") if p.candidate else None,
                "traces": [t.model_dump(mode="json") for t in p.traces],
                "feedback": [f.model_dump(mode="json") for f in p.feedback],
                "decisions": [d.model_dump(mode="json") for d in p.decisions],
                "judge_scores": [s.model_dump(mode="json") for s in p.judge_scores],
                "missing": p.missing,
            }
        )
        return out


def show_item(store: Store | None, root: str | Path, ref: str, item_id: str, *, note: str | None = None) -> ItemView:
    """An item of ``NAME[@vN]`` with the stored traces, feedback and decisions its provenance names."""
    name, version = parse_ref(ref)
    loaded = load_version(root, name, version)
    item = find_item(loaded, item_id)
    if store is None:
        return ItemView(loaded, item, None, note=note)
    p = item.provenance
    with store.read() as conn:
        rows = export_rows.provenance_rows(
            conn,
            candidate_id=p.candidate_id,
            trace_ids=p.trace_ids,
            feedback_ids=p.feedback_ids,
            decision_ids=p.decision_ids,
        )
        logged = export_rows.list_exports(conn, golden_set=name, version=loaded.version)
    return ItemView(loaded, item, rows, logged, note)


# ---------------------------------------------------------------- export + log


@dataclass(frozen=True)
class LoggedExport:
    result: ExportResult
    record: Export


def export_logged(
    store: Store, root: str | Path, ref: str, fmt: str, out: str | Path | None, **options: Any
) -> LoggedExport:
    """Export ``NAME[@vN]`` (refusing a tampered file) and append the export log row.

    The row is written once the output is complete; if the store then refuses it, the error says
    the output exists but is not logged.
    """
    name, version = parse_ref(ref)
    loaded = load_version(root, name, version)
    records: list[Export] = []

    def log(result: ExportResult) -> None:
        record = result.to_record().model_copy(update={"output_sha256": result.sha256})
        try:
            with store.write() as conn:
                export_rows.insert_export(conn, record)
        except WorkbenchError as exc:
            raise type(exc)(f"{result.path} was written but the export log was not: {exc}") from exc
        records.append(record)

    result = export(loaded, fmt, out, on_export=log, **options)
    return LoggedExport(result, records[0])


# ---------------------------------------------------------------- verify


def verify_with_log(store: Store | None, root: str | Path, name: str, version: int | str | None = None) -> VerifyReport:
    """``verify`` plus the outside anchor: each logged export's golden-file hash must match the manifest.

    A file edited together with its manifest passes the file checks; the export log, written when
    the version was exported, still holds the hash the version had then.
    """
    report = verify(root, name, version)
    if store is None:
        return report
    manifest = load_manifest(root, name)
    with store.read() as conn:
        logged = export_rows.list_exports(conn, golden_set=name)
    for number in report.checked:
        info = manifest.get(number)
        if info is None:
            raise NotFoundError(f"golden set {name!r} has no v{number}")
        for row in logged:
            if row.version == number and row.file_hash != info.file_sha256:
                report.problems.append(
                    Problem(
                        number,
                        "export_log",
                        f"{info.file}: manifest hash {info.file_sha256[:12]} differs from {row.file_hash[:12]} logged "
                        f"by export {row.id} ({row.format}, {row.created_at:%Y-%m-%d %H:%M}); the version was changed "
                        "after it was exported",
                    )
                )
                break
    return report
