"""Per prompt version x model version: traces, thumbs-up rate, implicit-signal rates, open candidates,
judge means, and a visible alert where a version is clearly worse than the one before it."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Static

from ...models import Alert
from ...store.attribution import JudgeRow, judge_groups, list_alerts
from ...store.candidates import VersionStats, version_overview
from .. import keymap
from ..decisions import describe_error
from ..format import pct
from ..widgets.keybar import KeyBar

if TYPE_CHECKING:
    from ..alerts import VersionAlert
    from ..app import TriageApp

__all__ = ["OverviewScreen"]

_COLUMNS = (
    "",
    "prompt@version",
    "model",
    "traces",
    "thumbs-up [95% CI]",
    "implicit (share of traces)",
    "open",
    "judge mean [95% CI]",
)


LOGGED_ALERTS_SHOWN = 5


def _compute(store: object) -> tuple[list[VersionStats], list[VersionAlert], list[Alert], Text | None]:
    from ..alerts import find_regressions  # scipy is imported only when the overview is opened

    with store.read() as conn:  # type: ignore[attr-defined]
        rows = version_overview(conn)
        logged = list_alerts(conn, limit=LOGGED_ALERTS_SHOWN)
        rubrics = sorted({rubric for s in rows for rubric in s.judge})
        judged = {rubric: judge_groups(conn, "prompt_version", rubric_id=rubric) for rubric in rubrics}
    return rows, find_regressions(rows), logged, _calibrated_text(judged)


def _calibrated_text(judged: dict[str, list[JudgeRow]]) -> Text | None:
    """Judge scores calibrated on the users' ratings (PPI) per prompt version, where enough traces are rated."""
    from ...attribution.service import ppi_estimate

    parts = []
    for rubric, groups in judged.items():
        for row in groups:
            est = ppi_estimate(row)
            if est is None:
                continue
            low, high = est.estimate - 1.96 * est.se, est.estimate + 1.96 * est.se
            parts.append(
                f"{row.key[0]}@{row.key[1]} {rubric} {est.estimate:.2f} [{low:.2f}–{high:.2f}] "
                f"n={row.n}, rated {row.n_labeled}"
            )
    if not parts:
        return None
    return Text.assemble(("Calibrated judge score (PPI, on the users' rating scale): ", "bold"), "; ".join(parts))


def _logged_alert_text(alert: Alert) -> Text:
    """One line per alert from `workbench watch`'s log: when, what, for which configuration, and examples."""
    ev = alert.evidence
    text = Text()
    text.append(f"⚠ watch {alert.created_at:%Y-%m-%d %H:%M} ", style="bold")
    text.append(f"{alert.metric} for {alert.configuration.get('label', '?')}: {ev.get('message', '')}")
    if ev.get("example_trace_ids"):
        text.append(f"  e.g. {', '.join(ev['example_trace_ids'][:3])}", style="dim")
    return text


def _cells(s: VersionStats, flagged: bool) -> list[Text | str]:
    from ..alerts import judge_interval, thumbs_interval

    thumbs = "—"
    interval = thumbs_interval(s)
    if interval is not None:
        thumbs = f"{s.thumbs_up / s.thumbs_n:.0%} [{interval.low:.0%}–{interval.high:.0%}] n={s.thumbs_n}"
    implicit = " ".join(f"{sig} {pct(n / s.traces) if s.traces else n}" for sig, n in sorted(s.implicit.items()))
    judge = []
    for rubric, (n, total, total_sq) in sorted(s.judge.items()):
        ji = judge_interval(n, total, total_sq)
        ci = f" [{ji.low:.2f}–{ji.high:.2f}]" if ji is not None else ""
        judge.append(f"{rubric} {total / n:.2f}{ci} n={n}")
    mark = Text("▼", style="bold red") if flagged else Text("")
    style = "red" if flagged else ""
    return [
        mark,
        Text(s.prompt_ref, style=style),
        Text(s.model or "(no model)", style=style),
        f"{s.traces:,}",
        thumbs,
        implicit or "—",
        f"{s.open_candidates:,}",
        "; ".join(judge) or "—",
    ]


class OverviewScreen(Screen[None]):
    BINDINGS = keymap.OVERVIEW
    app: TriageApp

    def compose(self) -> ComposeResult:
        yield Static("Overview: per prompt version and model version", id="overview-title")
        yield Static(Text("computing…", style="italic"), id="overview-alerts")
        yield DataTable(id="overview-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="overview-calibrated")
        yield Static(
            Text(
                "Rates are per configuration; ▼ = 95% interval entirely below (thumbs, judge) or above "
                "(re-asks, regenerations, abandons, pushback) the previous prompt version with the same "
                "model, or the previous model on the same prompt version. workbench compare gives the "
                "formal test.",
                style="dim",
            ),
            id="overview-note",
        )
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in _COLUMNS:
            table.add_column(label, key=label or "flag")
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        self.run_worker(self._load(), group="overview", exclusive=True)

    async def _load(self) -> None:
        try:
            rows, alerts, logged, calibrated = await asyncio.to_thread(_compute, self.app.store)
        except Exception as exc:
            if not self.is_attached:
                return
            self.query_one("#overview-alerts", Static).update(
                Text(f"Could not compute the overview: {describe_error(exc)}", style="bold red")
            )
            return
        if not self.is_attached:
            return
        flagged = {a.key for a in alerts}
        table = self.query_one(DataTable)
        table.clear()
        for stats in rows:
            table.add_row(*_cells(stats, stats.key in flagged))
        calibrated_box = self.query_one("#overview-calibrated", Static)
        calibrated_box.update(calibrated or "")
        calibrated_box.display = calibrated is not None
        box = self.query_one("#overview-alerts", Static)
        if not rows:
            box.update(
                Text("No traces yet: capture calls with wb.wrap(OpenAI()) or run workbench demo.", style="italic")
            )
            box.set_class(False, "alert")
        elif alerts or logged:
            lines = []
            for alert in alerts:
                lines.append(Text.assemble(("▼ clearly worse: ", "bold"), alert.message))
            lines.extend(_logged_alert_text(alert) for alert in logged)
            box.update(Text("\n").join(lines))
            box.set_class(True, "alert")
        else:
            box.update(
                Text(
                    "No version is clearly worse than the one before it; workbench watch logged no alerts.",
                    style="green",
                )
            )
            box.set_class(False, "alert")

    def action_back(self) -> None:
        self.app.pop_screen()
