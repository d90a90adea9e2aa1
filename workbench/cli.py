"""The ``workbench`` command: a thin layer that parses, calls domain code, and renders (rich or --json).

Errors the user can act on (``WorkbenchError``) print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from .commands import capture
from .commands._common import CliState, err_console, require_project_store
from .errors import WorkbenchError

__all__ = ["app", "main"]

app = typer.Typer(
    name="workbench",
    help=(
        "Capture LLM calls, mine user feedback, calibrate judges, ship golden sets.\n\n"
        "Run with no command to open the triage app on the store found from the current directory.\n\n"
        "Examples:\n\n"
        "  workbench demo\n\n"
        "  workbench traces --prompt support-answer@2 --json\n\n"
        "  workbench --store postgresql+psycopg://me@db/wb candidates"
    ),
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    store: str | None = typer.Option(
        None, "--store", envvar="WORKBENCH_URL", help="store URL or path (default: .workbench/ found from here)"
    ),
) -> None:
    ctx.obj = CliState(store)
    if ctx.invoked_subcommand is None:
        _triage(ctx)


def _triage(ctx: typer.Context, actor: str | None = None) -> None:
    from .tui import run_triage

    state = ctx.find_root().obj
    store_url = state.store_url if isinstance(state, CliState) else None
    require_project_store(store_url)
    run_triage(store_url, actor=actor)


@app.command("triage")
def triage_command(
    ctx: typer.Context,
    actor: str | None = typer.Option(None, "--actor", help="who is deciding (default: $WORKBENCH_ACTOR or $USER)"),
) -> None:
    """Work the candidate queue from the keyboard (also: `workbench` with no command).

    Keys: a accept, r reject, s skip, e edit expected output, l labels, n notes, u undo, space select,
    / search, f filter, o overview, ? help, q quit.

    Examples:

      workbench triage --actor alice

      workbench --store postgresql+psycopg://me@db/wb triage
    """
    _triage(ctx, actor)


capture.register(app)

for _area in ("feedback", "mine", "candidates", "judge", "golden", "attribution", "demo"):
    try:
        _module = __import__(f"workbench.commands.{_area}", fromlist=["register"])
    except ModuleNotFoundError as _exc:
        if _exc.name != f"workbench.commands.{_area}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry: click handles usage errors (exit 2); ours print one line and exit non-zero."""
    try:
        app()
    except WorkbenchError as exc:
        err_console.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
