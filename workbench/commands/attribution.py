"""Attribution commands: compare, watch, alerts, and the prompt decision log (promote, rollback, rollout)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from ..errors import StatisticsError, ValidationError
from ._common import age, console, err_console, get_store, parse_duration, parse_since, print_json, table
from .capture import prompts_app

if TYPE_CHECKING:
    from ..attribution.watch import WatchReport
    from ..models import PromptEvent

# The statistics (scipy) are imported inside the commands: every `workbench` invocation imports this
# module to register its commands, and scipy.stats alone costs ~1.5 s of start-up.

__all__ = ["ALERT_EXIT", "register"]

ALERT_EXIT = 3
BY_HELP = "group traces by prompt_version, model_version (model + system_fingerprint), variant or all"
METRIC_HELP = "thumbs_up_rate, rating, repeat_ask_rate, abandon_rate or judge:RUBRIC"


def _fmt(kind: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.1%}" if kind == "rate" else f"{value:.3g}"


def _fmt_diff(kind: str, value: float | None) -> str:
    if value is None:
        return ""
    return f"{value * 100:+.1f} pts" if kind == "rate" else f"{value:+.3g}"


def _ci(kind: str, ci: Any, diff: bool = False) -> str:
    if ci is None:
        return ""
    f = _fmt_diff if diff else _fmt
    return f"{f(kind, ci.low)} .. {f(kind, ci.high)}"


_VERDICT_STYLE = {
    "better": "green",
    "worse": "red",
    "no difference": "cyan",
    "too little data": "yellow",
    "baseline": "bold",
}


def compare_command(
    ctx: typer.Context,
    by: str = typer.Option("prompt_version", "--by", help=BY_HELP),
    metric: str = typer.Option("thumbs_up_rate", "--metric", help=METRIC_HELP),
    since: str | None = typer.Option(None, "--since", help="only traces since: 1h, 7d or an ISO date"),
    baseline: str | None = typer.Option(
        None,
        "--baseline",
        help="configuration to compare against (a label "
        "from the table; default: the promoted version or the most data)",
    ),
    prompt: str | None = typer.Option(None, "--prompt", help="only traces of this prompt name"),
    alpha: float = typer.Option(0.05, "--alpha", help="significance level (family-wise with holm)"),
    correction: str = typer.Option("holm", "--correction", help="multiple comparisons: holm, bh or none"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Which configuration made users happier: each one against a baseline, with CIs and p-values.

    Says when there is too little data to call a winner, and how many more observations would do.

    Examples:

      workbench compare --by variant

      workbench compare --by prompt_version --prompt support-answer --metric rating --since 7d

      workbench compare --by model_version --metric judge:helpfulness --baseline gpt-4o-2024-08-06/fp_abc --json
    """
    from ..attribution.service import compare_configurations

    report = compare_configurations(
        get_store(ctx), by, metric, parse_since(since), baseline, prompt=prompt, alpha=alpha, correction=correction
    )
    if as_json:
        print_json(report.to_dict())
        return
    result, kind = report.comparison, report.comparison.metric_kind
    arrow = "higher is better" if report.metric.higher_is_better else "lower is better"
    title = f"{report.metric.name} by {by} ({arrow}; baseline {result.baseline})"
    rows = []
    for r in result.rows:
        style = _VERDICT_STYLE.get(r.verdict, "")
        rows.append(
            [
                r.configuration,
                f"{r.n:,}",
                _fmt(kind, r.value),
                _ci(kind, r.ci),
                _fmt_diff(kind, r.diff),
                _ci(kind, r.diff_ci, diff=True),
                "" if r.p_adjusted is None else f"{r.p_adjusted:.3g}",
                f"[{style}]{r.verdict}[/]" if style else r.verdict,
            ]
        )
    console.print(
        table(
            title,
            ["configuration", "n", "value", f"{1 - alpha:.0%} CI", "vs baseline", "diff CI", "p (adj)", "verdict"],
            rows,
        )
    )
    console.print(f"[bold]{result.summary}[/]")
    for r in result.rows[1:]:
        console.print(f"  {r.message}", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"[dim]{report.method}[/]", highlight=False)


def _render_watch(report: WatchReport) -> None:
    from rich.panel import Panel

    from ..attribution.watch import format_duration

    # every series while the table is short; past that, the ones that are not simply ok
    shown = report.checks if len(report.checks) <= 30 else [c for c in report.checks if c.status != "ok"]
    ok = sum(c.status == "ok" for c in report.checks)
    title = (
        f"watch last {format_duration(report.window)} vs {format_duration(report.baseline)} before, "
        f"by {report.by} (false alarm {report.false_alarm:g} per run)"
    )
    style = {
        "alert": "red",
        "ok": "green",
        "untestable": "yellow",
        "no baseline": "dim",
        "no recent data": "dim",
        "no variation": "dim",
    }
    console.print(
        table(
            title,
            ["configuration", "metric", "baseline n", "window n", "baseline", "window", "p (adj)", "status"],
            (
                [
                    c.label,
                    c.metric,
                    f"{c.baseline_n:,}",
                    f"{c.window_n:,}",
                    _val(c.metric, c.baseline_value),
                    _val(c.metric, c.window_value),
                    "" if c.p_adjusted is None else f"{c.p_adjusted:.3g}",
                    f"[{style.get(c.status, '')}]{c.status}[/]",
                ]
                for c in shown
            ),
        )
    )
    if ok and len(shown) < len(report.checks):
        console.print(f"[green]{ok} more series ok[/]")
    if report.input_drift:
        console.print(f"input drift: {report.input_drift.get('message', '')}", highlight=False)
    for alert in report.alerts:
        ev = alert.evidence
        body = [ev.get("message", "")]
        if (ev.get("change") or {}).get("started_at"):
            body.append(f"change estimated to start at {ev['change']['started_at']}")
        if ev.get("example_trace_ids"):
            body.append("examples: " + ", ".join(ev["example_trace_ids"]))
        console.print(
            Panel(
                "\n".join(body), title=f"ALERT {alert.metric} - {alert.configuration.get('label')}", border_style="red"
            ),
            highlight=False,
        )
    for alert in report.repeats:
        console.print(
            f"[yellow]still alerting[/] (already logged this window): {alert.metric} for "
            f"{alert.configuration.get('label')}: {alert.evidence.get('message', '')}",
            highlight=False,
        )
    for hook in report.webhooks:
        if hook.ok:
            console.print(f"[dim]webhook {hook.url}: delivered (HTTP {hook.status})[/]")
        else:
            err_console.print(
                f"[red]webhook failed[/] {hook.url} after {hook.attempts} attempts: {hook.error} (the alert is logged)",
                highlight=False,
            )
    if not report.alerting:
        console.print("[green]no alerts[/]")


def _val(metric: str, value: float | None) -> str:
    from ..attribution.service import parse_metric

    try:
        return _fmt(parse_metric(metric).kind, value)
    except ValidationError:
        return "" if value is None else f"{value:.3g}"


def watch_command(
    ctx: typer.Context,
    window: str = typer.Option("1h", "--window", help="recent period to check: 30m, 1h, 1d"),
    baseline: str = typer.Option("7d", "--baseline", help="period before the window to compare with"),
    once: bool = typer.Option(False, "--once", help=f"check once and exit ({ALERT_EXIT} if anything alerts)"),
    false_alarm: float = typer.Option(0.01, "--false-alarm", help="chance that a run raises any false alert"),
    webhook: str | None = typer.Option(None, "--webhook", help="POST each new alert as JSON to this URL"),
    by: str = typer.Option("prompt_version", "--by", help=BY_HELP),
    metric: list[str] | None = typer.Option(
        None, "--metric", help=f"{METRIC_HELP} (repeat; default: thumbs_up_rate, rating, repeat_ask_rate, abandon_rate)"
    ),
    every: str = typer.Option("5m", "--every", help="without --once: how often to check"),
    golden: str | None = typer.Option(
        None, "--golden", help="also watch input drift against this golden set's inputs: NAME or NAME@vN"
    ),
    golden_root: str = typer.Option(".", "--golden-root", help="directory holding golden_sets/"),
    now: str | None = typer.Option(None, "--now", help="check as if at this ISO time (replays, benchmarks)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """Alert when a configuration got worse in the recent window than in the baseline before it.

    Each alert is logged (see `workbench alerts`), printed, and optionally POSTed to a webhook.

    Examples:

      workbench watch --once                      # from cron: exit 3 on an alert

      workbench watch --window 1h --baseline 7d --false-alarm 0.01 --webhook https://hooks.slack.com/...

      workbench watch --by variant --metric thumbs_up_rate --metric judge:helpfulness --once --json
    """
    from ..attribution.watch import watch

    store = get_store(ctx)
    options: dict[str, Any] = {"by": by, "metrics": metric or None, "webhook": webhook}
    options["now"] = parse_since(now) if now else None
    if golden:
        options["reference_inputs"], options["reference_name"] = _golden_inputs(golden, golden_root)
    w, b, pause = parse_duration(window), parse_duration(baseline), parse_duration(every)
    while True:
        try:
            report = watch(store, w, b, false_alarm, **options)
        except StatisticsError as exc:
            if once:
                raise
            err_console.print(f"[yellow]{datetime.now(UTC):%H:%M:%S}[/] {exc}", highlight=False)
        else:
            print_json(report.to_dict()) if as_json else _render_watch(report)
            if once:
                raise typer.Exit(ALERT_EXIT if report.alerting else 0)
        time.sleep(pause.total_seconds())


def _golden_inputs(ref: str, root: str) -> tuple[list[str], str]:
    from ..golden import load_version, parse_ref

    name, version = parse_ref(ref)
    loaded = load_version(root, name, version)
    texts = [item.prompt_text for item in loaded.items if item.prompt_text.strip()]
    if not texts:
        raise ValidationError(f"golden set {loaded.ref} has no input text to compare with")
    return texts, loaded.ref


def alerts_command(
    ctx: typer.Context,
    since: str | None = typer.Option(None, "--since", help="1h, 7d or an ISO date"),
    metric: str | None = typer.Option(None, "--metric", help="only this metric"),
    limit: int = typer.Option(50, "--limit", min=1, help="at most this many (newest first)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """List logged alerts, newest first.

    Examples:

      workbench alerts --since 1d

      workbench alerts --metric thumbs_up_rate --json
    """
    from ..store import attribution as attribution_rows

    with get_store(ctx).read() as conn:
        found = attribution_rows.list_alerts(conn, since=parse_since(since), metric=metric, limit=limit)
    if as_json:
        print_json([a.model_dump(mode="json") for a in found])
        return
    if not found:
        console.print("No alerts. [bold]workbench watch --once[/] checks for drops.")
        return
    console.print(
        table(
            f"{len(found)} alerts",
            ["id", "age", "configuration", "metric", "window", "evidence"],
            (
                (
                    a.id,
                    age(a.created_at),
                    a.configuration.get("label"),
                    a.metric,
                    f"{a.window} vs {a.baseline}",
                    a.evidence.get("message", ""),
                )
                for a in found
            ),
        )
    )


def _print_event(event: PromptEvent, as_json: bool) -> None:
    if as_json:
        print_json(event.model_dump(mode="json"))
        return
    what = {"promote": "promoted", "rollback": "rolled back to", "rollout": "rolling out"}[event.action]
    share = f" to {event.share:.0%} of sessions" if event.share is not None else ""
    console.print(
        f"{what} [bold]{event.prompt_name}@{event.prompt_version}[/]{share} "
        f"(by {event.actor}{': ' + event.reason if event.reason else ''})",
        highlight=False,
    )
    comparison = event.evidence.get("comparison")
    note = comparison["summary"] if comparison else event.evidence.get("comparison_note", "")
    console.print(f"[dim]evidence: {note}[/]", highlight=False)


def promote_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    why: str | None = typer.Option(None, "--why", help="why (required): kept in the decision log"),
    actor: str | None = typer.Option(None, "--actor", help="who decides (default: $WORKBENCH_ACTOR or login)"),
    metric: str = typer.Option("thumbs_up_rate", "--metric", help=f"evidence metric: {METRIC_HELP}"),
    since: str | None = typer.Option(None, "--since", help="evidence from traces since: 7d or an ISO date"),
    as_json: bool = typer.Option(False, "--json", help="print the recorded event as JSON"),
) -> None:
    """Serve NAME@VERSION to everyone: wb.prompts.get(NAME) returns it from now on.

    Examples:

      workbench prompts promote support-answer@3 --why "thumbs up +6 points vs v2, p=0.003"
    """
    from ..attribution import decisions

    event = decisions.promote(get_store(ctx), ref, why=why, actor=actor, metric=metric, since=parse_since(since))
    _print_event(event, as_json)


def rollback_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., metavar="NAME[@VERSION]", help="prompt NAME, or NAME@VERSION to go back to"),
    to: int | None = typer.Option(
        None,
        "--to",
        help="version to go back to, same as NAME@VERSION (default: end "
        "the rollout, else the previously promoted version)",
    ),
    why: str | None = typer.Option(None, "--why", help="why (required): kept in the decision log"),
    actor: str | None = typer.Option(None, "--actor", help="who decides (default: $WORKBENCH_ACTOR or login)"),
    metric: str = typer.Option("thumbs_up_rate", "--metric", help=f"evidence metric: {METRIC_HELP}"),
    since: str | None = typer.Option(None, "--since", help="evidence from traces since: 7d or an ISO date"),
    as_json: bool = typer.Option(False, "--json", help="print the recorded event as JSON"),
) -> None:
    """Go back to an earlier version (or end a staged rollout).

    Examples:

      workbench prompts rollback support-answer@2 --why "abandon rate doubled after v3"

      workbench prompts rollback support-answer --why "end the v4 canary"
    """
    from ..attribution import decisions
    from ..prompts import parse_prompt_ref

    name, version = parse_prompt_ref(ref)
    if version is not None and to is not None and version != to:
        raise ValidationError(f"{ref} and --to {to} name different versions; give one of them")
    to = version if version is not None else to

    event = decisions.rollback(
        get_store(ctx), name, why=why, to=to, actor=actor, metric=metric, since=parse_since(since)
    )
    _print_event(event, as_json)


def rollout_command(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME@VERSION"),
    share: float = typer.Option(..., "--share", help="fraction of sessions, e.g. 0.1 for 10%"),
    why: str | None = typer.Option(None, "--why", help="why: kept in the decision log"),
    actor: str | None = typer.Option(None, "--actor", help="who decides (default: $WORKBENCH_ACTOR or login)"),
    metric: str = typer.Option("thumbs_up_rate", "--metric", help=f"evidence metric: {METRIC_HELP}"),
    as_json: bool = typer.Option(False, "--json", help="print the recorded event as JSON"),
) -> None:
    """Staged rollout: wb.prompts.get(NAME, session_id=...) hands NAME@VERSION to this share of sessions.

    The same session always gets the same answer; raising the share keeps the sessions already in.

    Examples:

      workbench prompts rollout support-answer@4 --share 0.1 --why "canary"

      workbench prompts rollout support-answer@4 --share 0.5
    """
    from ..attribution import decisions

    event = decisions.rollout(get_store(ctx), ref, share=share, why=why, actor=actor, metric=metric)
    _print_event(event, as_json)


def history_command(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="prompt NAME (default: all prompts)"),
    as_json: bool = typer.Option(False, "--json", help="print JSON for scripts"),
) -> None:
    """The decision log: promotions, rollbacks and rollouts with who, when and why.

    Examples:

      workbench prompts history support-answer --json
    """
    from ..store import attribution as attribution_rows

    with get_store(ctx).read() as conn:
        events = attribution_rows.list_prompt_events(conn, name)
    if as_json:
        print_json([e.model_dump(mode="json") for e in events])
        return
    if not events:
        console.print("No decisions yet: [bold]workbench prompts promote NAME@VERSION --why ...[/]")
        return
    console.print(
        table(
            f"{len(events)} decisions",
            ["when", "prompt", "action", "share", "actor", "why"],
            (
                (
                    e.created_at.strftime("%Y-%m-%d %H:%M"),
                    f"{e.prompt_name}@{e.prompt_version}",
                    e.action,
                    "" if e.share is None else f"{e.share:.0%}",
                    e.actor,
                    e.reason or "",
                )
                for e in events
            ),
        )
    )


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
    app.command("watch")(watch_command)
    app.command("alerts")(alerts_command)
    prompts_app.command("promote")(promote_command)
    prompts_app.command("rollback")(rollback_command)
    prompts_app.command("rollout")(rollout_command)
    prompts_app.command("history")(history_command)
