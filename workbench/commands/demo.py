"""``workbench demo``: a store full of realistic traffic, mined, ranked, reviewed and exported."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ._common import console, err_console, print_json, startup_done, table

__all__ = ["register"]


def demo_command(
    directory: Path = typer.Option(Path("workbench-demo"), "--dir", help="where the demo store and files go"),
    sessions: int = typer.Option(150, "--sessions", min=1, help="scripted sessions to add to the real ones"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Build a demo store from real Open-Assistant conversations plus scripted sessions, captured
    through the real wrapper (fake transport, no network); mine, rank, review, build and export.

    Examples:

      workbench demo

      workbench demo --dir /tmp/wb-demo --json
    """
    from ..demo.run import GOLDEN_NAME, run_demo  # imports the OpenAI SDK: only when the demo runs

    startup_done()  # it runs for a while: the cyclic GC back on

    started = time.perf_counter()
    with console.status("starting") as status:
        result = run_demo(
            directory, sessions=sessions, step=None if as_json else lambda message: status.update(message)
        )
    if as_json:
        print_json(result.to_dict())
        return
    elapsed = time.perf_counter() - started
    console.print(f"[bold green]demo ready[/] in {elapsed:.0f} s: {result.store}")
    console.print(f"captured {result.traces} calls in {result.sessions} sessions; {result.votes} thumbs votes")
    console.print(table("implicit signals mined", ["signal", "new feedback rows"], result.implicit.items()))
    console.print(
        table(
            f"top of {result.candidates} candidates",
            ["priority", "signal", "users", "count", "prompt", "question"],
            ((c["priority"], c["signal"], c["users"], c["count"], c["prompt"], c["question"]) for c in result.top),
        )
    )
    console.print(
        f"a scripted reviewer (not a person) accepted {result.accepted} of the top candidates, those with a "
        "corrected or regenerated answer, and left the rest open for you; golden set "
        f"{GOLDEN_NAME} v{result.golden_version} with {result.golden_items} items in "
        f"{result.directory / 'golden_sets' / GOLDEN_NAME}",
        highlight=False,
    )
    for export in result.exports:
        console.print(
            f"  exported {export['format']}: {export['path']} ({export['items']} rows, {export['skipped']} skipped)"
        )
    err_console.print(
        "\nWhere to look next:\n"
        f"  cd {directory} && workbench          # triage the queue from the keyboard\n"
        f"  cd {directory} && workbench candidates --limit 10\n"
        f"  cd {directory} && workbench compare --by prompt_version --metric thumbs_up_rate\n"
        f"  cd {directory} && workbench golden show {GOLDEN_NAME} <ITEM>   # provenance back to traces"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
