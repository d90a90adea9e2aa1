"""``workbench mine``: run the implicit-signal detectors and store their findings as feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import typer

from ..errors import ValidationError
from ._common import console, err_console, get_store, parse_since, print_json, table

if TYPE_CHECKING:  # the detectors are imported when `mine` runs, not on every `workbench` start-up
    from ..feedback import SignalConfig
    from ..feedback.mining import MineStats

__all__ = ["DETECTOR_CHOICES", "parse_settings", "register"]

DETECTOR_CHOICES = ("learned", "embedding", "llm", "lexical")


def parse_settings(items: list[str]) -> SignalConfig:
    """``KEY=VALUE`` pairs -> a validated SignalConfig. Values are JSON when they parse (600, false,
    ["a","b"]), else text; unknown keys and bad values fail with one line naming the key."""
    from ..feedback import SignalConfig

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError(f"bad --set {item!r}; use KEY=VALUE, e.g. --set abandon.window_s=600")
        try:
            value: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            value = raw
        overrides[key] = value
    return SignalConfig().with_overrides(overrides)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _render(stats: MineStats) -> None:
    rows = [(signal, f"{count.found:,}", f"{count.added:,}") for signal, count in stats.signals.items()]
    rows.append(("total", f"{stats.found:,}", f"{stats.added:,}"))
    console.print(
        f"mined {stats.traces:,} traces in {stats.sessions:,} sessions in {stats.seconds:.1f} s", highlight=False
    )
    console.print(table(None, ["signal", "found", "added"], rows))
    scope = f"sessions touched after {_when(stats.since)}" if stats.since else "every session"
    kept = "" if stats.advanced else " (kept: this run did not cover everything pending)"
    console.print(
        f"read {scope}, as of {_when(stats.now)} (the newest trace); watermark "
        f"{_when(stats.watermark)}{kept}; the next run re-reads {stats.window_s:g} s before it",
        highlight=False,
    )
    if stats.added:
        console.print("next: [bold]workbench feedback list --kind implicit[/] or [bold]workbench candidates[/]")


def mine_command(
    ctx: typer.Context,
    since: str | None = typer.Option(
        None,
        "--since",
        help="judge sessions with traces after TIME (1h, 7d or an ISO date) instead of "
        "picking up where the last run stopped",
    ),
    settings: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="override a detector setting, e.g. abandon.window_s=600 (repeatable)"
    ),
    workers: int | None = typer.Option(None, "--workers", min=0, help="detection processes (default: auto)"),
    detector: str = typer.Option(
        "learned",
        "--detector",
        help="who judges replies and abandonment: learned (default: shipped "
        "classifier, no network), embedding (needs the embeddings extra), llm (an OpenAI-compatible "
        "endpoint: --model, --base-url), lexical (the old word-list rules)",
    ),
    model: str | None = typer.Option(None, "--model", help="judge model for --detector llm"),
    base_url: str | None = typer.Option(
        None, "--base-url", help="endpoint for --detector llm (default: OPENAI_BASE_URL)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the run's counts as JSON"),
) -> None:
    """Mine implicit feedback (re-asks, regenerations, pushback, thanks, abandonment) from sessions.

    Incremental: a second run over the same data adds nothing; new turns in old sessions are picked
    up, and abandonment is decided once its window has passed (measured against the newest trace).

    Examples:

      workbench mine

      workbench mine --since 7d --json

      workbench mine --set repeat_ask.window_s=300 --set positive.enabled=false

      workbench mine --detector embedding

      workbench mine --detector llm --model gpt-4o-mini --base-url http://localhost:8000/v1

    A new detector (or version) has its own watermark and idempotency keys: it re-mines every
    session once, without duplicating what it stored before.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..feedback.mining import mine

    if detector not in DETECTOR_CHOICES:
        raise ValidationError(f"unknown --detector {detector!r}; use one of {', '.join(DETECTOR_CHOICES)}")
    config = parse_settings([f"detector={detector}", *settings])
    judge = None
    if detector == "llm":
        from ..feedback.signals.llm import reaction_judge

        if not model:
            raise ValidationError("--detector llm needs --model (the judge model to ask)")
        judge = reaction_judge(model=model, base_url=base_url, store=get_store(ctx))
    elif model is not None or base_url is not None:
        raise ValidationError("--model and --base-url are for --detector llm")
    since_at = parse_since(since)
    store = get_store(ctx)
    if as_json or not err_console.is_terminal:
        stats = mine(store, since=since_at, config=config, workers=workers, judge=judge)
    else:
        columns = (TextColumn("mining"), BarColumn(), MofNCompleteColumn(), TextColumn("traces"), TimeRemainingColumn())
        with Progress(*columns, console=err_console, transient=True) as bar:
            task = bar.add_task("mine", total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            stats = mine(store, since=since_at, config=config, workers=workers, progress=report, judge=judge)
    if as_json:
        print_json(stats.to_dict())
    else:
        _render(stats)


def register(app: typer.Typer) -> None:
    app.command("mine")(mine_command)
