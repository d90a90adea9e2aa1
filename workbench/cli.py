"""The ``workbench`` command: a thin layer that parses, calls domain code, and renders (rich or --json).

Errors the user can act on (``WorkbenchError``) print one line and exit non-zero, never a traceback.

Start-up is part of the interface: every command module is imported to build the command tree, so they
import only typer, rich and ``_common`` at the top and pull in the store, numpy, the exporters or textual
inside the command that needs them (tests/test_cli_startup.py checks ``import workbench.cli``).
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
import threading
from pathlib import Path

import typer
from rich.markup import escape

from .commands._common import CliState, console, err_console, get_store, print_json, require_project_store
from .errors import NotFoundError, ValidationError, WorkbenchError

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
    state = ctx.find_root().obj
    store_url = state.store_url if isinstance(state, CliState) else None
    require_project_store(store_url)
    get_store(ctx).close()  # a mistyped --store is exit 4 here, before the app takes the screen
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # CI, cron, a pipe: a full-screen app would wait forever for keys nobody presses.
        raise ValidationError(
            "the triage app needs a terminal (stdin and stdout are not a TTY); in scripts use "
            "`workbench candidates --json` or `workbench --help`"
        )
    from .tui import run_triage

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


@app.command("init")
def init_command(
    ctx: typer.Context,
    location: str | None = typer.Argument(
        None, help="directory, SQLite file or PostgreSQL URL (default: --store / WORKBENCH_URL, else ./.workbench/)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the store location as JSON"),
) -> None:
    """Create a new store (every other command only opens an existing one, so a typo in --store fails).

    Idempotent: on an existing store it applies pending migrations and says so. Your app's
    workbench.open() also creates the store on first use.

    Examples:

      workbench init                # creates ./.workbench/workbench.db, like git init

      workbench init ~/projects/support

      workbench --store postgresql+psycopg://me@db/wb init
    """
    from .store import open_store
    from .store.locate import locate

    state = ctx.find_root().obj
    url = location or (state.store_url if isinstance(state, CliState) else None) or str(Path.cwd())
    where = locate(url)
    existed = True
    try:
        open_store(url, create=False).close()
    except NotFoundError:
        existed = False
        open_store(url).close()
    if as_json:
        print_json({"store": where.display, "created": not existed})
        return
    verb = "store already exists (schema up to date)" if existed else "created store"
    console.print(f"{verb}: {where.display}", highlight=False)


# Command areas: one module each under workbench/commands/, with ``register(app)``. A new module is added to
# AREAS (that is enough: it is registered whenever its command name is not in COMMAND_AREAS) and, for the
# fast path, its top-level command names to COMMAND_AREAS.
AREAS = ("capture", "feedback", "mine", "candidates", "judge", "golden", "attribution", "demo", "serve", "importers")

# The areas a top-level command needs: `workbench traces` imports and builds only the capture commands,
# not all thirty (typer turns every registered function into a click command on each run).
COMMAND_AREAS: dict[str, tuple[str, ...]] = {
    "init": (),
    "triage": (),
    "traces": ("capture",),
    "show": ("capture",),
    "ingest": ("capture",),
    "prompts": ("capture", "attribution"),
    "feedback": ("feedback",),
    "mine": ("mine",),
    "candidates": ("candidates",),
    "purge": ("candidates",),
    "rubrics": ("judge",),
    "judge": ("judge",),
    "golden": ("golden",),
    "export": ("golden",),
    "exports": ("golden",),
    "eval": ("golden",),
    "compare": ("attribution",),
    "watch": ("attribution",),
    "alerts": ("attribution",),
    "demo": ("demo",),
    "serve": ("serve",),
    "keys": ("serve",),
    "import": ("importers",),
    "export-traces": ("importers",),
}


def register(areas: tuple[str, ...] = AREAS) -> typer.Typer:
    """Add these command areas to ``app`` (each at most once) and return it."""
    for area in areas:
        if area in _registered:
            continue
        _registered.add(area)
        try:
            module = importlib.import_module(f"workbench.commands.{area}")
        except ModuleNotFoundError as exc:
            if exc.name != f"workbench.commands.{area}":
                raise
            continue
        module.register(app)
    return app


_registered: set[str] = set()


def areas_for(argv: list[str]) -> tuple[str, ...]:
    """The areas a command line needs: its command's, none for the bare triage app, all for --help,
    completion or a name not listed (so click can list every command or say which one is unknown)."""
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--store":
            index += 2
        elif token.startswith("--store="):
            index += 1
        elif token.startswith("-"):
            return AREAS
        else:
            return COMMAND_AREAS.get(token, AREAS)
    return ()


def main() -> None:
    """Console-script entry: click handles usage errors (exit 2); ours print one line and exit non-zero."""
    gc.disable()  # until start-up is over (see commands._common.startup_done): ~50 ms of pointless collections
    register(areas_for(sys.argv[1:]))
    try:
        app()
    except WorkbenchError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        _exit(130)
    except SystemExit as exc:
        _exit(exc.code)
    _exit(0)


def _exit(code: int | str | None) -> None:
    """Leave without tearing the interpreter down: exit handlers still run and output is flushed, but
    the ~80 ms CPython spends freeing every module at shutdown (a fifth of `workbench traces`) is skipped.
    Only when the main thread is alone; otherwise (a server or follower left threads) exit normally."""
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    if threading.active_count() > 1 or run_exit_handlers is None:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message") semantics
        print(code, file=sys.stderr)
        status = 1
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`workbench traces | head`) or a closed stream
            status = status or 1
    os._exit(status)
