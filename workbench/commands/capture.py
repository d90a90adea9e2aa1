"""Capture commands: traces, show, prompts, ingest."""

from __future__ import annotations

from typing import Any

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
    from ..store import traces as trace_rows

    name, version = None, None
    if prompt:
        from ..prompts import parse_prompt_ref

        name, version = parse_prompt_ref(prompt)
    store = get_store(ctx)
    with store.read() as conn:
        found = trace_rows.list_traces(
            conn,
            prompt_name=name,
            prompt_version=version,
            session_id=session,
            user_id=user,
            since=parse_since(since),
            limit=limit,
        )
    waiting = _spool_backlog(store)
    if waiting is not None:  # on stderr, so --json output stays one document
        err_console.print(
            f"[yellow]note:[/] {waiting} not ingested yet, so not listed: the app's background ingest adds "
            "them, or run [bold]workbench ingest[/] now",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        print_json([t.model_dump(mode="json") for t in found])
        return
    if not found:
        console.print("No traces match. Wrap a client with [bold]wb.wrap(OpenAI())[/] or run [bold]workbench demo[/].")
        return
    console.print(
        table(
            f"{len(found)} traces",
            ["id", "age", "prompt", "model", "session", "status", "ms", "input", "output"],
            (
                [
                    t.id,
                    age(t.created_at),
                    t.prompt_ref,
                    t.model_resolved or t.model_requested,
                    t.session_id,
                    t.status,
                    f"{t.latency_ms:.0f}" if t.latency_ms is not None else "",
                    _short(t.last_user_text, 40),
                    _short(t.output_text or t.error_message, 40),
                ]
                for t in found
            ),
        )
    )


def _spool_backlog(store: Any) -> str | None:
    """Captured calls not ingested yet, as "N KiB of captured calls in K segments" (None if there are none).

    Cheap on purpose (it runs on every `traces`): one directory listing, one header read per segment and
    one query for the committed offsets; the bytes between a segment's committed ingest offset and its
    high-water mark are records the store has not seen.
    """
    import os

    from ..capture.spool import DATA_START, list_segments, read_header, segment_key
    from ..errors import SpoolError
    from ..store import traces as trace_rows
    from ..workbench import spool_dir

    try:
        segments = list_segments(spool_dir(store))
    except SpoolError:
        return None
    if not segments:
        return None
    with store.read() as conn:
        offsets = trace_rows.load_offsets(conn, [segment_key(p) for p in segments])
    pending_bytes = pending_segments = 0
    for path in segments:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # ingested and removed meanwhile
        try:
            header = read_header(fd)
        finally:
            os.close(fd)
        if header is None:
            continue
        left = header.hwm - max(offsets.get(segment_key(path), DATA_START), DATA_START)
        if left > 0:
            pending_bytes += left
            pending_segments += 1
    if not pending_bytes:
        return None
    size = f"{pending_bytes / 1024:,.0f} KiB" if pending_bytes >= 1024 else f"{pending_bytes} bytes"
    return f"{size} of captured calls in {pending_segments} spool segment{'s' if pending_segments > 1 else ''}"


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
    for label, value in (
        ("tool calls", found.tool_calls),
        ("params", found.params),
        ("variables", found.variables),
        ("metadata", found.metadata),
    ):
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
    console.print(
        table(
            f"{len(found)} prompt versions",
            ["prompt", "version", "hash", "variables", "created", "template"],
            (
                (p.name, p.version, p.content_hash[:12], ", ".join(p.variables), age(p.created_at), _short(p.template))
                for p in found
            ),
        )
    )


def ingest_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="print the counts as JSON"),
    follow: bool = typer.Option(False, "--follow", help="keep ingesting as apps spool (a sidecar); Ctrl-C stops"),
    interval: float = typer.Option(0.5, "--interval", min=0.01, help="seconds between passes with --follow"),
) -> None:
    """Move spooled captures into the store now (the app's background ingester does this too).

    With --follow it keeps running beside the app (open the app with ingest="off" then), so parsing
    and inserting cost the app's process nothing. Records the store would refuse are moved to
    spool/quarantine/ with their reason, reported in one line; the rest is stored.

    Examples:

      workbench ingest

      WORKBENCH_URL=postgresql+psycopg://me@db/wb workbench ingest --json

      workbench ingest --follow --interval 0.2
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..capture.ingest import ingest_spool
    from ..capture.spool import list_segments
    from ..workbench import spool_dir

    store = get_store(ctx)
    directory = spool_dir(store)
    if follow:
        _follow(store, directory, interval, as_json)
        return
    total = sum(path.stat().st_size for path in list_segments(directory))
    with Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("traces"),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json or total < (8 << 20),
    ) as bar:
        task = bar.add_task("ingest", total=None)
        stats = ingest_spool(store, directory, pause_gc=True, progress=lambda n: bar.advance(task, n))
    if as_json:
        print_json(
            {
                "traces": stats.traces,
                "segments": stats.segments,
                "removed_segments": stats.removed_segments,
                "quarantined": stats.quarantined,
                "rejected": stats.rejected,
                "reasons": stats.reasons,
                "quarantine_files": stats.quarantine_files,
            }
        )
        return
    console.print(f"ingested {stats.traces} traces from {stats.segments} spool segments")
    if stats.quarantined:
        err_console.print(f"[yellow]warning:[/] {stats.summary()}", highlight=False, soft_wrap=True)


def _follow(store: Any, directory: Any, interval: float, as_json: bool) -> None:
    """``workbench ingest --follow``: one line per pass that moved something; Ctrl-C ends it cleanly."""
    import signal
    import threading

    from ..capture.ingest import IngestStats, follow_spool

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(stats: IngestStats) -> None:
        if as_json and (stats.traces or stats.quarantined):
            print_json({"traces": stats.traces, "quarantined": stats.quarantined, "reasons": stats.reasons})
        elif stats.traces:
            console.print(f"ingested {stats.traces} traces")
        if stats.quarantined and not as_json:
            err_console.print(f"[yellow]warning:[/] {stats.summary()}", highlight=False, soft_wrap=True)

    if not as_json:
        err_console.print(f"following {directory} (Ctrl-C to stop)")
    try:
        total = follow_spool(store, directory, interval=interval, stop=stop, on_pass=report)
    except KeyboardInterrupt:
        return
    if total.skipped:
        err_console.print(f"another `workbench ingest --follow` already follows {directory}")


def register(app: typer.Typer) -> None:
    app.command("traces")(traces_command)
    app.command("show")(show_command)
    app.add_typer(prompts_app, name="prompts")
    app.command("ingest")(ingest_command)
