"""Capture commands: traces, show, prompts, ingest."""

from __future__ import annotations

import typer

from ._common import age, console, err_console, get_store, parse_since, print_json, table

__all__ = ["register"]

prompts_app = typer.Typer(
    help="List registered prompts and their versions.\n\nExamples:\n\n  workbench prompts\n\n"
    "  workbench prompts --json",
    invoke_without_command=True,
)


def _short(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def traces_command(
    ctx: typer.Context,
    prompt: str | None = typer.Option(None, "--prompt", help="NAME or NAME@VERSION"),
    session: str | None = typer.Option(None, "--session", help="only this session id"),
    user: str | None = typer.Option(None, "--user", help="only this user id"),
    since: str | None = typer.Option(None, "--since", help="1h, 7d or an ISO date"),
    limit: int = typer.Option(50, "--limit", min=1, help="at most this many (newest first)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List captured traces, newest first.

    Examples:

      workbench traces --prompt support-answer@2 --limit 20

      workbench traces --session s-1 --json
    """
    from ..prompts import parse_prompt_ref
    from ..store import traces as trace_rows

    name, version = parse_prompt_ref(prompt) if prompt else (None, None)
    store = get_store(ctx)
    with store.read() as conn:
        found = trace_rows.list_traces(
            conn, prompt_name=name, prompt_version=version, session_id=session, user_id=user,
            since=parse_since(since), limit=limit,
        )
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    if not found:
        console.print("No traces match. Wrap a client with [bold]wb.wrap(OpenAI())[/] or run [bold]workbench demo[/].")
        return
    console.print(table(
        f"{len(found)} traces",
        ["id", "age", "prompt", "model", "session", "status", "ms", "input", "output"],
        ([t.id, age(t.created_at), t.prompt_ref, t.model_resolved or t.model_requested, t.session_id, t.status,
          f"{t.latency_ms:.0f}" if t.latency_ms is not None else "", _short(t.last_user_text, 40),
          _short(t.output_text or t.error_message, 40)] for t in found),
    ))


def show_command(
    ctx: typer.Context,
    trace: str = typer.Argument(..., help="a trace id or the provider's response id"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Show one trace in full.

    Examples:

      workbench show 01a2083909d9e12219b0218a55

      workbench show chatcmpl-abc123 --json
    """
    from ..store import traces as trace_rows

    store = get_store(ctx)
    with store.read() as conn:
        found = trace_rows.get_trace(conn, trace)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    fields = found.model_dump(exclude={"input", "output_text", "params", "tool_calls", "metadata", "variables"})
    rows = ((k, v) for k, v in fields.items() if v not in (None, []))
    console.print(table(f"trace {found.id}", ["field", "value"], rows))
    console.print("[bold]input[/]")
    for message in found.input:
        console.print(f"  [cyan]{message.get('role')}[/]: {message.get('content')}")
    console.print("[bold]output[/]")
    console.print(f"  {found.output_text if found.output_text is not None else found.error_message}")
    for label, value in (("tool calls", found.tool_calls), ("params", found.params), ("variables", found.variables),
                         ("metadata", found.metadata)):
        if value:
            import orjson
            from rich.syntax import Syntax

            console.print(f"[bold]{label}[/]")
            console.print(Syntax(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), "json"))


@prompts_app.callback()
def prompts_command(
    ctx: typer.Context,
    name: str | None = typer.Option(None, "--name", help="only versions of this prompt"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List registered prompts and their versions."""
    if ctx.invoked_subcommand is not None:
        return
    from ..store import prompts as prompt_rows

    store = get_store(ctx)
    with store.read() as conn:
        found = prompt_rows.list_prompts(conn, name)
    if as_json:
        print_json([p.model_dump(mode="json") for p in found])
        return
    if not found:
        console.print("No prompts registered yet: [bold]wb.prompts.register(NAME, TEMPLATE)[/].")
        return
    console.print(table(
        f"{len(found)} prompt versions", ["prompt", "version", "hash", "variables", "created", "template"],
        ((p.name, p.version, p.content_hash[:12], ", ".join(p.variables), age(p.created_at), _short(p.template))
         for p in found),
    ))


def ingest_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
) -> None:
    """Move spooled captures into the store now (the app's background ingester does this too).

    Examples:

      workbench ingest

      WORKBENCH_URL=postgresql+psycopg://me@db/wb workbench ingest --json
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..capture.ingest import ingest_spool
    from ..capture.spool import list_segments
    from ..workbench import spool_dir

    store = get_store(ctx)
    directory = spool_dir(store)
    total = sum(path.stat().st_size for path in list_segments(directory))
    with Progress(TextColumn("ingesting"), BarColumn(), MofNCompleteColumn(), TextColumn("traces"),
                  TimeElapsedColumn(), console=err_console, disable=as_json or total < (8 << 20)) as bar:
        task = bar.add_task("ingest", total=None)
        stats = ingest_spool(store, directory, pause_gc=True, progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json({"traces": stats.traces, "segments": stats.segments, "removed_segments": stats.removed_segments,
                    "quarantined": stats.quarantined, "quarantine_files": stats.quarantine_files})
        return
    console.print(f"ingested {stats.traces} traces from {stats.segments} spool segments")
    if stats.quarantined:
        err_console.print(
            f"[yellow]warning:[/] quarantined {stats.quarantined} corrupt spool records: "
            f"{', '.join(stats.quarantine_files)}"
        )


def register(app: typer.Typer) -> None:
    app.command("traces")(traces_command)
    app.command("show")(show_command)
    app.add_typer(prompts_app, name="prompts")
    app.command("ingest")(ingest_command)
