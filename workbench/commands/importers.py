"""`workbench import openai-jsonl|langfuse|otlp` and `workbench export-traces`: bring history in, take it out.

Module-level imports stay typer/_common only (start-up); the importers load inside each command.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ._common import console, err_console, get_store, parse_since, print_json

if TYPE_CHECKING:
    from ..importers.batch import ImportReport

__all__ = ["register"]

import_app = typer.Typer(
    help="Import history: your own JSONL logs, a Langfuse project, OTLP files. Idempotent (a second run adds "
    "nothing), resumable, with --dry-run and --since.\n\n"
    "Examples:\n\n  workbench import openai-jsonl calls.jsonl\n\n"
    "  workbench import langfuse --host https://cloud.langfuse.com --public-key pk-lf-... --secret-key sk-lf-...\n\n"
    "  workbench import otlp traces.json --dry-run",
    no_args_is_help=True,
)

_SINCE_HELP = "only calls at or after this time: 7d, 1h or an ISO date"


@contextmanager
def _bar(label: str, enabled: bool, unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (only on a terminal, and not with --json); yields update(done, total)."""
    if not enabled or not err_console.is_terminal:
        yield lambda _done, _total: None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(unit),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        yield update


def _finish(report: ImportReport, as_json: bool) -> None:
    """Print the one-line report (and the first malformed inputs); exit 2 if any input was malformed."""
    if as_json:
        print_json(report.to_json())
    else:
        console.print(report.summary(), highlight=False, markup=False, soft_wrap=True)
        for problem in report.problems:
            err_console.print(f"{report.source}: {problem}", highlight=False, markup=False, soft_wrap=True)
        hidden = report.bad_input - len(report.problems)
        if hidden > 0:
            err_console.print(f"... and {hidden:,} more", highlight=False, markup=False)
    if report.bad_input:
        raise typer.Exit(2)


@import_app.command("openai-jsonl")
def import_openai_jsonl(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="JSONL file: one call per line (see below)"),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="read and check everything, write nothing"),
    workers: int = typer.Option(
        0, "--workers", min=0, max=8, help="extra processes that parse while one inserts (idle multi-core machines)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import calls from a JSONL file: {"ts", "request", "response", ...} per line (what export-traces writes).

    "request" is the chat.completions / responses kwargs and "response" the API's response object; optional:
    "ts" (epoch seconds or ISO 8601; times are kept), "latency_ms", "session_id", "user_id",
    "prompt" ("NAME@VERSION"), "variant", "tags", "metadata". A malformed line is reported with its line
    number and skipped (exit 2; the good lines are stored all the same). Importing twice adds nothing; an
    interrupted import resumes where it stopped.

    Examples:

      workbench import openai-jsonl calls.jsonl

      workbench import openai-jsonl calls.jsonl --since 30d --dry-run --json
    """
    from ..importers.jsonl import import_jsonl

    since_at = parse_since(since)
    store = get_store(ctx)
    with _bar("importing", not as_json, "of the file") as update:
        report = import_jsonl(store, path, since=since_at, dry_run=dry_run, progress=update, workers=workers)
    _finish(report, as_json)


@import_app.command("langfuse")
def import_langfuse(
    ctx: typer.Context,
    host: str = typer.Option(..., "--host", envvar="LANGFUSE_HOST", help="e.g. https://cloud.langfuse.com"),
    public_key: str = typer.Option(..., "--public-key", envvar="LANGFUSE_PUBLIC_KEY", help="pk-lf-..."),
    secret_key: str = typer.Option(..., "--secret-key", envvar="LANGFUSE_SECRET_KEY", help="sk-lf-..."),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="read everything, write nothing"),
    page_size: int = typer.Option(100, "--page-size", min=1, max=1000, help="items per API page"),
    retries: int = typer.Option(6, "--retries", min=0, help="retries of a page on 429/5xx/dropped connections"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import a Langfuse project: generations become traces (with prompt name and version, session, user,
    tags), scores become feedback (numeric -> rating, boolean -> thumbs, categorical -> comment).

    Paged through Langfuse's public API with retries on 429 and 5xx; an interrupted import resumes at
    the page where it stopped, and a second run adds nothing. The keys may also come from
    LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY.

    Examples:

      workbench import langfuse --host https://cloud.langfuse.com --public-key pk-lf-1 --secret-key sk-lf-1

      LANGFUSE_HOST=http://localhost:3000 workbench import langfuse --since 90d --json
    """
    from ..importers.langfuse import LangfuseSource
    from ..importers.langfuse import import_langfuse as run

    since_at = parse_since(since)
    store = get_store(ctx)
    source = LangfuseSource(host, public_key, secret_key)
    with _bar("importing", not as_json, "items") as update:
        report = run(
            store, source, since=since_at, dry_run=dry_run, page_size=page_size, retries=retries, progress=update
        )
    _finish(report, as_json)


@import_app.command("otlp")
def import_otlp(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="OTLP/JSON file (the Collector's file exporter: one request per line)"),
    since: str | None = typer.Option(None, "--since", help=_SINCE_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="read and check everything, write nothing"),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Import LLM spans from OTLP/JSON files, mapped exactly as `workbench serve` maps them.

    Non-LLM spans are counted and skipped; a malformed line is reported with its line number (exit 2).

    Examples:

      workbench import otlp /var/otel/traces.json

      workbench import otlp traces.json --since 7d --dry-run
    """
    from ..importers.otlp import import_otlp as run

    since_at = parse_since(since)
    store = get_store(ctx)
    with _bar("importing", not as_json, "of the file") as update:
        report = run(store, path, since=since_at, dry_run=dry_run, progress=update)
    _finish(report, as_json)


def export_traces_command(
    ctx: typer.Context,
    out: str = typer.Option("-", "--out", "-o", help="file to write (default: stdout)"),
    since: str | None = typer.Option(None, "--since", help="only traces at or after: 7d, 1h or an ISO date"),
    until: str | None = typer.Option(None, "--until", help="only traces before: an ISO date or 1h (ago)"),
    as_json: bool = typer.Option(False, "--json", help="print the count as JSON (with --out)"),
) -> None:
    """Write traces as JSONL, one call per line: the format `workbench import openai-jsonl` reads.

    Each line keeps the trace id, time, request, response, tokens, latency, session, user, prompt
    version, tags and metadata, so export + import into another store gives the same traces.
    The file is written owner-only (0600) and appears only when complete.

    Examples:

      workbench export-traces --out traces.jsonl

      workbench export-traces --since 30d | gzip > last-month.jsonl.gz
    """
    from ..importers.jsonl import export_traces

    since_at, until_at = parse_since(since), parse_since(until)
    store = get_store(ctx)
    to_file = out != "-"
    with _bar("exporting", to_file and not as_json, "traces") as update:
        count = export_traces(store, None if not to_file else out, since=since_at, until=until_at, progress=update)
    if not to_file:
        return
    if as_json:
        print_json({"exported": count, "out": out})
    else:
        console.print(f"exported {count:,} traces to {out}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.command("export-traces")(export_traces_command)
