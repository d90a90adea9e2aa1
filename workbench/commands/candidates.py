"""Candidate commands: list the queue, refresh from feedback, show one; and ``purge --user`` (privacy).

``workbench.candidates`` (numpy, rapidfuzz) and the store are imported inside the commands that need
them, so every other command starts without paying for it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from ..errors import ValidationError
from ._common import age, console, err_console, get_store, print_json, table

if TYPE_CHECKING:
    from ..store.candidates import QueueRow
    from ..store.purge import PurgeCounts

__all__ = ["register"]

candidates_app = typer.Typer(
    help="Golden-set candidates built from negative or conflicting feedback.\n\nExamples:\n\n"
    "  workbench candidates\n\n  workbench candidates --signal thumbs_down --limit 20 --json\n\n"
    "  workbench candidates refresh\n\n  workbench candidates show 01J9Z...",
    invoke_without_command=True,
)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _snippet(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _row_json(row: QueueRow) -> dict[str, Any]:
    from ..models import last_user_text

    return {
        "id": row.id,
        "priority": row.priority,
        "count": row.count,
        "users": row.users,
        "primary_signal": row.primary_signal,
        "prompt_name": row.prompt_name,
        "prompt_version": row.prompt_version,
        "model": row.model_resolved,
        "status": row.status,
        "labels": row.labels,
        "input_snippet": _snippet(last_user_text(row.input), 200),
        "created_at": row.created_at,
    }


@candidates_app.callback()
def list_command(
    ctx: typer.Context,
    status: str = typer.Option("open", "--status", help="open, accepted, rejected, skipped or all"),
    signal: str | None = typer.Option(None, "--signal", help="primary signal: thumbs_down, correction, ..."),
    limit: int = typer.Option(50, "--limit", min=1, help="how many, highest priority first"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List candidates, highest priority first (input text is redacted)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..models import last_user_text
    from ..store.candidates import STATUSES, QueueFilter, count_queue, queue_page

    if status not in (*STATUSES, "all"):
        raise ValidationError(f"bad --status {status!r}; use one of {', '.join(STATUSES)} or all")
    from ..candidates.score import LABELS

    if signal is not None and signal not in LABELS:
        raise ValidationError(f"bad --signal {signal!r}; use one of {', '.join(LABELS)}")
    flt = QueueFilter(status=None if status == "all" else status, signal=signal)
    with get_store(ctx).read() as conn:
        rows = queue_page(conn, flt, limit=limit)
        total = count_queue(conn, flt) if not as_json else len(rows)
    if as_json:
        print_json([_row_json(row) for row in rows])
        return
    if not rows:
        console.print(
            "No candidates match. Record feedback or run [bold]workbench mine[/], then "
            "[bold]workbench candidates refresh[/]."
        )
        return
    console.print(
        table(
            f"{len(rows)} of {total} candidates",
            ["id", "priority", "count", "users", "signal", "prompt", "model", "status", "age", "input"],
            (
                (
                    r.id,
                    f"{r.priority:.3f}",
                    r.count,
                    r.users,
                    r.primary_signal,
                    r.prompt_ref,
                    r.model_resolved,
                    r.status,
                    age(r.created_at),
                    _snippet(last_user_text(r.input)),
                )
                for r in rows
            ),
        )
    )


@candidates_app.command("refresh")
def refresh_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
) -> None:
    """Rebuild candidates from stored feedback; decisions, labels and notes are kept.

    Examples:

      workbench candidates refresh

      workbench candidates refresh --json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..candidates.service import refresh_candidates

    store = get_store(ctx)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("traces"),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                labels = {"scan": "reading feedback", "cluster": "clustering", "build": "building"}
                tasks[phase] = bar.add_task(labels.get(phase, phase), total=total)
            bar.update(tasks[phase], completed=done, total=total)

        stats = refresh_candidates(store, progress=progress)
    if as_json:
        print_json(stats.as_dict())
        return
    console.print(
        f"{stats.candidates} candidates from {stats.flagged_traces} flagged traces "
        f"({stats.inserted} new, {stats.updated} updated, {stats.unchanged} unchanged, {stats.removed} removed)"
    )
    if stats.skipped_feedback:
        err_console.print(
            f"[yellow]warning:[/] skipped {stats.skipped_feedback} feedback rows that cannot be interpreted:",
            highlight=False,
        )
        for problem in stats.problems:
            err_console.print(f"  {problem}", highlight=False)


def _show_json(explanation: Any) -> dict[str, Any]:
    from ..candidates.redact import redact_text

    detail = explanation.detail
    score = explanation.score
    return {
        "candidate": detail.candidate.model_dump(mode="json"),
        "members": [
            {
                "id": t.id,
                "created_at": t.created_at,
                "user_id": t.user_id,
                "session_id": t.session_id,
                "prompt": t.prompt_ref,
                "model": t.model_resolved,
            }
            for t in detail.members
        ],
        "feedback": [
            {
                "id": f.id,
                "trace_id": f.trace_id,
                "kind": f.kind,
                "signal": f.signal,
                "value": f.value,
                "strength": f.strength,
                "user_id": f.user_id,
                "source": f.source,
                "created_at": f.created_at,
                "text": redact_text(f.text) if f.text else None,
            }
            for f in detail.feedback
        ],
        "judge_scores": [
            {
                "id": s.id,
                "trace_id": s.trace_id,
                "rubric_id": s.rubric_id,
                "judge_model": s.judge_model,
                "score": s.score,
            }
            for s in detail.judge_scores
        ],
        "decisions": [d.model_dump(mode="json") for d in detail.decisions],
        "score": None if score is None else {**score.as_dict(), "explain": score.explain()},
        "redactions": explanation.redactions,
        "note": explanation.note,
    }


@candidates_app.command("show")
def show_command(
    ctx: typer.Context,
    candidate_id: str = typer.Argument(..., metavar="ID", help="candidate id"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Show one candidate: redacted text, member traces, feedback, decisions and its score breakdown.

    Examples:

      workbench candidates show 01J9Z4X7T1C0M2E8R5V6B3N9QK

      workbench candidates show 01J9Z4X7T1C0M2E8R5V6B3N9QK --json
    """
    from ..candidates.redact import redact_text
    from ..candidates.service import explain_candidate

    explanation = explain_candidate(get_store(ctx), candidate_id)
    if as_json:
        print_json(_show_json(explanation))
        return
    cand = explanation.detail.candidate
    prompt = f"{cand.prompt_name}@{cand.prompt_version}" if cand.prompt_name else "(no prompt)"
    console.print(
        f"[bold]candidate {cand.id}[/]  {cand.status}  priority {cand.priority:.3f}  "
        f"{cand.count} traces, {cand.users} users  {prompt}  {cand.model_resolved or ''}",
        highlight=False,
    )
    signals = ", ".join(f"{label} x{int(n)}" for label, n in cand.signals.items())
    console.print(f"signals: {signals} (primary: {cand.primary_signal})", highlight=False)
    console.print("[bold]input[/] (redacted)")
    for message in cand.input:
        console.print(
            f"  {message.get('role')}: {_snippet(_message_text(message), 400)}", highlight=False, markup=False
        )
    console.print("[bold]output[/] (redacted)")
    console.print(f"  {cand.output_text or ''}", highlight=False, markup=False)
    if cand.expected_output:
        console.print("[bold]expected output[/]")
        console.print(f"  {cand.expected_output}", highlight=False, markup=False)
    if cand.labels or cand.notes:
        console.print(f"labels: {', '.join(cand.labels)}  notes: {cand.notes or ''}", highlight=False, markup=False)
    detail = explanation.detail
    console.print(
        table(
            f"{len(cand.member_trace_ids)} member traces (originals: workbench show TRACE_ID)",
            ["trace", "age", "user", "session", "prompt", "model"],
            (
                (t.id, age(t.created_at), t.user_id, t.session_id, t.prompt_ref, t.model_resolved)
                for t in detail.members
            ),
        )
    )
    console.print(
        table(
            f"{len(cand.feedback_ids)} feedback rows",
            ["id", "trace", "signal", "value", "strength", "user", "text"],
            (
                (
                    f.id,
                    f.trace_id,
                    f.signal,
                    f.value,
                    f"{f.strength:.2f}",
                    f.user_id,
                    _snippet(redact_text(f.text), 50) if f.text else "",
                )
                for f in detail.feedback
            ),
        )
    )
    if detail.decisions:
        console.print(
            table(
                "decisions",
                ["when", "actor", "action", "after"],
                ((age(d.created_at), d.actor, d.action, d.after) for d in detail.decisions),
            )
        )
    if explanation.score is not None:
        console.print("[bold]score now[/]")
        console.print(f"  {explanation.score.explain()}", highlight=False, markup=False)
    if explanation.note:
        err_console.print(f"[yellow]note:[/] {explanation.note}", highlight=False)


def _counts_line(counts: PurgeCounts) -> str:
    return (
        f"{counts.traces} traces, {counts.feedback} feedback rows, {counts.judge_scores} judge scores; "
        f"{counts.candidates_deleted} candidates deleted ({counts.decisions} decisions), "
        f"{counts.candidates_updated} updated"
    )


def purge_command(
    ctx: typer.Context,
    user: str = typer.Option(..., "--user", help="the user id whose data is deleted"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation (needed without a terminal)"),
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
) -> None:
    """Delete one user's traces, feedback and the candidates built on them (privacy requests).

    Spooled captures are ingested first so they are purged too. Then no copy is left behind: the spool's
    consumed records are erased (also in a running app's open segment), quarantined records holding the
    user's data are deleted, and the database drops deleted content (SQLite: secure_delete, VACUUM, WAL
    checkpoint; PostgreSQL: VACUUM of the touched tables). Golden-set files already written are not
    changed. Run `workbench candidates refresh` afterwards to rebuild affected candidates. Exit 1 if the
    freed space could not be erased (another process kept the SQLite WAL or a lock); run it again then.

    Examples:

      workbench purge --user u-42

      workbench purge --user u-42 --yes --json
    """
    if not user.strip():
        raise ValidationError("--user must be a non-empty user id")
    if not yes and not sys.stdin.isatty():
        raise ValidationError("refusing to purge without confirmation: stdin is not a terminal; pass --yes")
    from ..capture.ingest import ingest_spool
    from ..capture.scrub import scrub_spool
    from ..store.purge import erase_freed_space, preview_purge, purge_user, user_texts
    from ..workbench import spool_dir

    store = get_store(ctx)
    spool = spool_dir(store)
    ingest_spool(store, spool)
    out = err_console if as_json else console
    if not yes:
        with store.read() as conn:
            preview = preview_purge(conn, user)
        if not preview.nothing:
            out.print(f"purge user {user!r}: {_counts_line(preview)}", highlight=False, markup=False)
            if not typer.confirm("Delete this permanently?", default=False, err=True):
                err_console.print("purge cancelled; nothing deleted")
                raise typer.Exit(1)
    with store.read() as conn:
        texts = user_texts(conn, user)
    with store.write() as conn:
        counts = purge_user(conn, user)
    scrubbed = scrub_spool(store, spool, user, texts)
    compaction = erase_freed_space(store)
    erased = [scrubbed.line(), *compaction.steps]
    if as_json:
        print_json({**counts.as_dict(), "erased": erased, "complete": compaction.complete})
    else:
        if counts.nothing:
            console.print(f"no stored data for user {user!r}; nothing deleted", highlight=False, markup=False)
        else:
            console.print(f"purged user {user!r}: {_counts_line(counts)}", highlight=False, markup=False)
        for step in erased:
            console.print(f"  {step}", highlight=False, markup=False)
        if counts.candidates_updated or counts.candidates_deleted:
            console.print("run [bold]workbench candidates refresh[/] to rebuild affected candidates")
    if not compaction.complete:
        err_console.print(
            "purge incomplete: the user's rows are deleted but the database may still hold copies in freed "
            "space (see the steps above); run the purge again when no other process is using the store",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(candidates_app, name="candidates")
    app.command("purge")(purge_command)
