"""Golden-set commands: ``golden build|ls|diff|show|verify``, ``export`` and the ``exports`` log.

Golden sets live in ``golden_sets/`` of the project directory: the folder holding the SQLite
store's ``.workbench/`` (found from here like git finds ``.git``), or the current directory for a
PostgreSQL store; ``--root`` points elsewhere. Listing, diffing and verifying never open the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from .. import __version__
from ..errors import GoldenSetError, NotFoundError, StoreError, ValidationError
from ..store.locate import locate
from ._common import CliState, age, console, err_console, get_store, print_json, table

if TYPE_CHECKING:
    from ..golden import GoldenItem, SetDiff
    from ..store import Store

# The golden package (its exporters pull in numpy and datasets) and the store are imported inside the
# commands: every `workbench` invocation imports this module.

__all__ = ["golden_root", "register"]

golden_app = typer.Typer(
    help="Versioned golden sets built from triage decisions, with provenance.", no_args_is_help=True
)
ROOT_HELP = "directory holding golden_sets/ (default: the project directory of the store)"
TOOL_VERSION = f"workbench {__version__}"


def _store_url(ctx: typer.Context) -> str | None:
    state = ctx.find_root().obj
    return state.store_url if isinstance(state, CliState) else None


def golden_root(ctx: typer.Context, root: Path | None) -> Path:
    """``--root``, else the directory above a SQLite store's ``.workbench/``, else the current directory."""
    if root is not None:
        return root
    location = locate(_store_url(ctx))
    return location.home.parent if location.is_sqlite else Path.cwd()


def _optional_store(ctx: typer.Context) -> tuple[Store | None, str | None]:
    """The store if there is one to read (never creates a SQLite file); else None and why."""
    location = locate(_store_url(ctx))
    if location.is_sqlite and not Path(location.url.removeprefix("sqlite:///")).is_file():
        return None, f"no store at {location.display}: provenance shown from the golden file only"
    try:
        return get_store(ctx), None
    except (StoreError, NotFoundError) as exc:
        return None, f"{exc}: provenance shown from the golden file only"


def _first_user_text(item: GoldenItem, width: int = 70) -> str:
    from ..golden.items import message_text

    text = next((message_text(m) for m in reversed(item.input) if m.get("role") == "user"), "")
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@golden_app.command("build")
def build_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="golden set name (letters, digits, . _ -)"),
    source: str = typer.Option("accepted", "--from", help="which candidates: accepted (the only source)"),
    since: str | None = typer.Option(
        None, "--since", help="start from this version (v3) and apply only decisions made after it"
    ),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Write a new version from the accepted candidates (none if nothing changed).

    Examples:

      workbench golden build support

      workbench golden build support --since v3 --json
    """
    from ..golden.service import build_from_store

    store = get_store(ctx)
    built = build_from_store(
        store, golden_root(ctx, root), name, source=source, since_version=since, tool_version=TOOL_VERSION
    )
    result, info = built.result, built.result.info
    if as_json:
        print_json(
            {
                "name": result.name,
                "version": result.version,
                "created": result.created,
                "path": str(result.path),
                "item_count": info.item_count,
                "file_sha256": info.file_sha256,
                "parent": info.parent,
                "changes": info.changes,
                "skipped": [{"candidate_id": c, "reason": r} for c, r in built.skipped],
                "removed_candidates": built.removed_candidates,
            }
        )
    elif result.created:
        changes = info.changes
        detail = (
            f" (+{changes.get('added', 0)} -{changes.get('removed', 0)} ~{changes.get('changed', 0)} vs v{info.parent})"
            if info.parent
            else ""
        )
        console.print(
            f"built {result.name} v{result.version}: {info.item_count} items{detail} -> {result.path}", highlight=False
        )
    else:
        console.print(
            f"{result.name}: nothing changed since v{result.version} ({info.item_count} items); no new version written",
            highlight=False,
        )
    if not as_json:
        for candidate_id, reason in built.skipped:
            err_console.print(f"skipped candidate {candidate_id}: {reason}", highlight=False)


@golden_app.command("ls")
def ls_command(
    ctx: typer.Context,
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List golden sets with their latest version.

    Examples:

      workbench golden ls

      workbench golden ls --json
    """
    from ..golden import list_sets

    base = golden_root(ctx, root)
    sets = list_sets(base)
    if as_json:
        print_json(
            [
                {
                    "name": s.name,
                    "versions": s.versions,
                    "latest": s.latest,
                    "item_count": s.item_count,
                    "created_at": s.created_at,
                }
                for s in sets
            ]
        )
        return
    if not sets:
        console.print(
            f"No golden sets in {base / 'golden_sets'}: accept candidates in triage, then "
            "[bold]workbench golden build NAME[/]."
        )
        return
    console.print(
        table(
            f"golden sets in {base}",
            ["name", "latest", "versions", "items", "built"],
            ((s.name, f"v{s.latest}", s.versions, s.item_count, f"{age(s.created_at)} ago") for s in sets),
        )
    )


def _diff_json(result: SetDiff) -> dict[str, Any]:
    return {
        "counts": result.counts,
        "added": [i.model_dump(mode="json") for i in result.added],
        "removed": [i.model_dump(mode="json") for i in result.removed],
        "changed": [
            {
                "id": c.id,
                "fields": c.fields,
                "before": c.before.model_dump(mode="json"),
                "after": c.after.model_dump(mode="json"),
            }
            for c in result.changed
        ],
    }


@golden_app.command("diff")
def diff_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="golden set name"),
    version_a: str = typer.Argument(..., help="older version, e.g. v1"),
    version_b: str = typer.Argument(..., help="newer version, e.g. v2"),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the items that differ as JSON"),
) -> None:
    """Items added, removed and changed between two versions.

    Examples:

      workbench golden diff support v1 v2

      workbench golden diff support v2 v5 --json
    """
    from ..golden import diff

    result = diff(golden_root(ctx, root), name, version_a, version_b)
    if as_json:
        print_json(_diff_json(result))
        return
    counts = result.counts
    console.print(
        f"{name} {version_a} -> {version_b}: +{counts['added']} added, -{counts['removed']} removed, "
        f"~{counts['changed']} changed",
        highlight=False,
    )
    for item in result.added:
        console.print(f"[green]+ {item.id}[/]  {_first_user_text(item)}", highlight=False)
    for item in result.removed:
        console.print(f"[red]- {escape(item.id)}[/]  {escape(_first_user_text(item))}", highlight=False)
    for changed in result.changed:
        console.print(f"[yellow]~ {changed.id}[/]  {', '.join(changed.fields)}", highlight=False)


def _print_item_view(view: Any) -> None:
    from ..golden.items import message_text

    item, p = view.item, view.item.provenance
    console.print(f"[bold]{view.version.ref}[/] item [bold]{item.id}[/]", highlight=False)
    for message in item.input:
        console.print(f"  [dim]{message['role']}:[/] {message_text(message)}", highlight=False)
    console.print(f"  [green]expected:[/] {item.expected_output or '-'}", highlight=False)
    console.print(f"  [red]original:[/] {item.original_output or '-'}", highlight=False)
    rows = [
        ("candidate", p.candidate_id),
        ("traces", ", ".join(p.trace_ids)),
        ("feedback", ", ".join(p.feedback_ids)),
        ("decisions", ", ".join(p.decision_ids)),
        ("prompt", p.prompt),
        ("model", p.model),
        ("rubrics", ", ".join(p.rubric_ids)),
        ("labels", ", ".join(item.labels)),
        ("notes", item.notes),
    ]
    console.print(table("provenance (golden file)", ["", "value"], rows))
    rows_found = view.provenance
    if rows_found is None:
        if view.note:
            err_console.print(f"note: {view.note}", highlight=False)
        return
    if rows_found.candidate is not None:
        c = rows_found.candidate
        console.print(
            f"candidate {c.id}: status {c.status}, {c.count} traces, {c.users} users, signals {dict(c.signals)}",
            highlight=False,
        )
    console.print(
        table(
            "traces",
            ["id", "created", "prompt", "model", "user", "session", "output"],
            (
                (
                    t.id,
                    t.created_at.strftime("%Y-%m-%d %H:%M"),
                    t.prompt_ref,
                    t.model_resolved,
                    t.user_id,
                    t.session_id,
                    (t.output_text or "")[:60],
                )
                for t in rows_found.traces
            ),
        )
    )
    console.print(
        table(
            "feedback",
            ["id", "trace", "kind", "signal", "value", "source", "text"],
            ((f.id, f.trace_id, f.kind, f.signal, f.value, f.source, (f.text or "")[:60]) for f in rows_found.feedback),
        )
    )
    console.print(
        table(
            "decisions",
            ["id", "at", "action", "actor", "after"],
            ((d.id, d.created_at.strftime("%Y-%m-%d %H:%M"), d.action, d.actor, d.after) for d in rows_found.decisions),
        )
    )
    if rows_found.judge_scores:
        console.print(
            table(
                "judge scores",
                ["trace", "rubric", "judge", "score", "status"],
                (
                    (s.trace_id, f"{s.rubric_id}@{s.rubric_version}", s.judge_model, s.score, s.parse_status)
                    for s in rows_found.judge_scores
                ),
            )
        )
    for kind, ids in rows_found.missing.items():
        err_console.print(f"note: {kind} not in the store: {', '.join(ids)}", highlight=False)
    if view.exports:
        console.print(
            table(
                f"exports of {view.version.ref}",
                ["id", "at", "format", "path"],
                ((e.id, e.created_at.strftime("%Y-%m-%d %H:%M"), e.format, e.path) for e in view.exports),
            )
        )


@golden_app.command("show")
def show_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME or NAME@vN (default: latest version)"),
    item_id: str = typer.Argument(..., help="item id (or a unique prefix of at least 4 characters)"),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the item and its stored provenance as JSON"),
) -> None:
    """One item with its provenance: the traces, feedback and decisions it came from.

    Examples:

      workbench golden show support 3f9a01c2

      workbench golden show support@v2 3f9a01c2d4e5b6a7 --json
    """
    from ..golden.service import show_item

    store, note = _optional_store(ctx)
    view = show_item(store, golden_root(ctx, root), ref, item_id, note=note)
    if as_json:
        print_json(view.to_dict())
    else:
        _print_item_view(view)


@golden_app.command("verify")
def verify_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="golden set name"),
    version: str | None = typer.Option(None, "--version", help="check only this version (default: all)"),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Check every file against its manifest hashes (and the export log); exit 6 on tampering.

    Examples:

      workbench golden verify support

      workbench golden verify support --version v2 --json
    """
    from ..golden.service import verify_with_log

    store, _ = _optional_store(ctx)
    report = verify_with_log(store, golden_root(ctx, root), name, version)
    if as_json:
        print_json(
            {
                "name": report.name,
                "checked": report.checked,
                "ok": report.ok,
                "problems": [p.__dict__ for p in report.problems],
            }
        )
    elif report.ok:
        console.print(f"{name}: {', '.join(f'v{v}' for v in report.checked)} match the manifest", highlight=False)
    else:
        for problem in report.problems:
            err_console.print(f"[red]{escape(problem.kind)}:[/] {escape(problem.message)}", highlight=False)
        err_console.print(
            f"[red]error:[/] golden set {name!r} failed verification: {len(report.problems)} problem(s)",
            highlight=False,
        )
    if not report.ok:
        raise typer.Exit(GoldenSetError.exit_code)


def export_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME or NAME@vN (default: latest version)"),
    fmt: str = typer.Option(
        ...,
        "--format",
        "-f",
        help="openai-chat, openai-preference, trl-dpo, trl-sft, trl-kto, anthropic-bedrock, together-chat, "
        "sharegpt, hf, langfuse, csv",
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="output file (hf: directory; langfuse: dataset name)"),
    test_fraction: float | None = typer.Option(
        None, "--test-fraction", help="hf: share of items in the test split, by item hash (default 0.2; 0 = no split)"
    ),
    salt: str = typer.Option("", "--salt", help="hf: salt for the split (a different, still stable split)"),
    move_leaks: bool = typer.Option(False, "--move-leaks", help="hf: move near-duplicate test items into train"),
    push_to_hub: str | None = typer.Option(
        None, "--push-to-hub", help="hf: also upload to this Hub dataset repo (NAMESPACE/NAME; HF_TOKEN, HF_ENDPOINT)"
    ),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the result and the export log row as JSON"),
) -> None:
    """Export a golden-set version and record it in the export log.

    Files are written to a temporary name and renamed, so a failed export leaves no partial file.
    langfuse reads LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL.

    Examples:

      workbench export support --format openai-chat --out train.jsonl

      workbench export support@v3 --format hf --out support-hf --test-fraction 0.1

      workbench export support --format trl-dpo --out pairs.jsonl --json

      workbench export support --format hf --out support-hf --push-to-hub my-org/support-golden
    """
    options: dict[str, Any] = {}
    hf_only = [
        flag
        for flag, given in (
            ("--test-fraction", test_fraction is not None),
            ("--salt", bool(salt)),
            ("--move-leaks", move_leaks),
            ("--push-to-hub", push_to_hub is not None),
        )
        if given
    ]
    if fmt == "hf":
        if test_fraction is not None:
            options["test_fraction"] = None if test_fraction == 0 else test_fraction
        options.update(salt=salt, move_leaks_to_train=move_leaks)
        if push_to_hub is not None:
            options["push_to_hub"] = push_to_hub
    elif hf_only:
        raise ValidationError(f"{', '.join(hf_only)} only apply to --format hf")
    from ..golden.service import export_logged

    store = get_store(ctx)
    logged = export_logged(store, golden_root(ctx, root), ref, fmt, out, **options)
    result, record = logged.result, logged.record
    if as_json:
        print_json(
            {
                "export_id": record.id,
                "format": result.format,
                "path": result.path,
                "golden_set": result.golden_set,
                "version": result.version,
                "item_count": result.item_count,
                "skipped_count": result.skipped_count,
                "sha256": result.sha256,
                "source_sha256": result.source_sha256,
                "warnings": result.warnings,
                "skipped": [s.__dict__ for s in result.skipped],
                "stats": result.stats,
                "item_ids": result.item_ids,
                "feedback_ids": result.feedback_ids,
            }
        )
        return
    skipped = f" ({result.skipped_count} skipped)" if result.skipped_count else ""
    console.print(
        f"exported {result.golden_set}@v{result.version} as {result.format}: {result.item_count} items"
        f"{skipped} -> {result.path} (sha256 {result.sha256[:12]}); logged as export {record.id}",
        highlight=False,
    )
    if result.stats.get("hub"):
        console.print(f"pushed to the Hub as {result.stats['hub']['repo_id']}", highlight=False)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for item in result.skipped[:10]:
        err_console.print(f"skipped {item.id}: {item.reason}", highlight=False)


def exports_command(
    ctx: typer.Context,
    golden_set: str | None = typer.Option(None, "--set", help="only exports of this golden set"),
    version: int | None = typer.Option(None, "--version", min=1, help="only exports of this version number"),
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """The export log, newest first: which golden version and file fed which export.

    Examples:

      workbench exports

      workbench exports --set support --json
    """
    from ..store import exports as export_rows

    with get_store(ctx).read() as conn:
        rows = export_rows.list_exports(conn, golden_set=golden_set, version=version, limit=limit)
    if as_json:
        print_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        console.print("No exports yet: [bold]workbench export NAME --format openai-chat --out train.jsonl[/].")
        return
    console.print(
        table(
            f"{len(rows)} exports",
            ["id", "age", "golden set", "format", "items", "path", "golden sha256", "output sha256"],
            (
                (
                    r.id,
                    age(r.created_at),
                    f"{r.golden_set}@v{r.version}",
                    r.format,
                    r.item_count,
                    r.path,
                    r.file_hash[:12],
                    (r.output_sha256 or "")[:12],
                )
                for r in rows
            ),
        )
    )


def register(app: typer.Typer) -> None:
    from . import golden_eval

    app.add_typer(golden_app, name="golden")
    app.command("export")(export_command)
    app.command("exports")(exports_command)
    golden_eval.register(app)
