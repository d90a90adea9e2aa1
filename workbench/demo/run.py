"""The demo end to end: capture -> feedback -> mine -> candidates -> review -> golden set -> exports."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..candidates.service import refresh_candidates
from ..errors import ValidationError
from ..feedback.mining import mine
from ..golden.service import build_from_store, export_logged
from ..models import last_user_text
from ..store import candidates as candidate_rows
from ..workbench import Workbench
from ..workbench import open as open_workbench
from .replay import FakeProvider, ReplayClock, replay_oasst, replay_simulated

__all__ = ["DemoResult", "run_demo"]

MARKER = ".workbench-demo"
GOLDEN_NAME = "demo-support"
REVIEWER = "demo-script"  # the decision log says a script decided, not a person


@dataclass
class DemoResult:
    directory: Path
    store: str
    traces: int = 0
    sessions: int = 0
    votes: int = 0
    implicit: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    top: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    golden_version: int | None = None
    golden_items: int = 0
    exports: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["directory"] = str(self.directory)
        return data


def _prepare(directory: Path) -> None:
    """A fresh demo directory; refuse to touch a non-empty one the demo did not make."""
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise ValidationError(f"{directory} is not empty and was not made by `workbench demo`; pick another --dir")
    for sub in (".workbench", "golden_sets", "exports"):
        shutil.rmtree(directory / sub, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by `workbench demo`; safe to delete\n")


def _review(wb: Workbench, better: dict[str, str], *, accept: int) -> int:
    """A scripted reviewer (no judgement involved): accept the top candidates that have a corrected answer,
    edit in the better (regenerated) answer where the replay knows one; leave the rest open for triage."""
    accepted = 0
    with wb.store.read() as conn:
        rows = candidate_rows.queue_page(conn, candidate_rows.QueueFilter(status="open"), limit=200)
        details = [candidate_rows.get_candidate(conn, row.id) for row in rows]
    with wb.store.write() as conn:
        for cand in details:
            if accepted >= accept:
                break
            improved = next((better[t] for t in cand.member_trace_ids if t in better), None)
            if cand.expected_output:
                candidate_rows.record_decision(conn, cand.id, "accept", REVIEWER, None, {"status": "accepted"})
            elif improved:
                candidate_rows.record_decision(
                    conn, cand.id, "edit", REVIEWER, None, {"status": "accepted", "expected_output": improved}
                )
            else:
                continue
            accepted += 1
    return accepted


def run_demo(
    directory: Path,
    *,
    oasst_trees: int | None = None,
    sessions: int = 150,
    accept: int = 20,
    step: Callable[[str], None] | None = None,
) -> DemoResult:
    directory = directory.absolute()
    say = step or (lambda _message: None)
    _prepare(directory)
    clock = ReplayClock()
    wb = open_workbench(directory / ".workbench" / "workbench.db", background_ingest=False, clock=clock)
    result = DemoResult(directory=directory, store=wb.store.location.display)
    try:
        now = datetime.now(UTC)
        prompts = {
            "A": wb.prompts.register("support-answer", "You are a helpful assistant."),
            "B": wb.prompts.register("support-answer", "You are a helpful, concise assistant. Answer in plain words."),
        }
        provider = FakeProvider()
        say("replaying 100 Open-Assistant conversations through the wrapped client")
        oasst = replay_oasst(
            wb, provider, clock, prompts, start=now - timedelta(days=7), span=timedelta(days=4), limit=oasst_trees
        )
        say(f"replaying {sessions} scripted sessions (re-asks, regenerations, pushback, thanks, walk-aways)")
        simulated = replay_simulated(wb, provider, clock, prompts, end=now, sessions=sessions)
        wb.flush()
        result.traces = oasst.traces + simulated.traces
        result.sessions = oasst.sessions + simulated.sessions
        say(f"recording {len(oasst.votes)} real +1/-1 reactions as thumbs")
        for trace_id, up, voter in oasst.votes:
            wb.feedback.thumbs(trace_id, up=up, user_id=voter, idempotency_key=f"demo:{trace_id}:{voter}")
        result.votes = len(oasst.votes)
        say("mining implicit signals")
        mined = mine(wb.store, now=now)
        result.implicit = {name: count.added for name, count in sorted(mined.signals.items())}
        say("ranking candidates")
        refreshed = refresh_candidates(wb.store, now=now)
        result.candidates = refreshed.candidates
        with wb.store.read() as conn:
            top = candidate_rows.queue_page(conn, candidate_rows.QueueFilter(status="open"), limit=5)
        result.top = [
            {
                "id": r.id,
                "priority": round(r.priority, 3),
                "signal": r.primary_signal,
                "users": r.users,
                "count": r.count,
                "prompt": r.prompt_ref,
                "question": _question(r.input),
            }
            for r in top
        ]
        say("reviewing the top candidates (as a scripted reviewer)")
        result.accepted = _review(wb, oasst.better_answers, accept=accept)
        say("building golden set and exports")
        root = directory
        build = build_from_store(wb.store, root, GOLDEN_NAME, tool_version=_version())
        result.golden_version = build.result.version
        result.golden_items = build.result.info.item_count
        (directory / "exports").mkdir(exist_ok=True)
        for fmt, name in (
            ("openai-chat", "finetune.jsonl"),
            ("trl-dpo", "dpo.jsonl"),
            ("csv", "review.csv"),
            ("hf", "hf_dataset"),
        ):
            logged = export_logged(
                wb.store, root, f"{GOLDEN_NAME}@v{build.result.version}", fmt, directory / "exports" / name
            )
            result.exports.append(
                {
                    "format": fmt,
                    "path": str(logged.result.path),
                    "items": logged.result.item_count,
                    "skipped": logged.result.skipped_count,
                }
            )
    finally:
        wb.close()
    return result


def _question(messages: list[dict[str, Any]]) -> str:
    text = " ".join(last_user_text(messages).split())
    return text if len(text) <= 70 else text[:69] + "…"


def _version() -> str:
    from .. import __version__

    return __version__
