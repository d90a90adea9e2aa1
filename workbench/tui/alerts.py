"""Overview alerts: a prompt or model version that is clearly worse than the one before it.

"Clearly" means the 95% intervals do not overlap (Wilson for rates, Student t for judge means):
conservative on purpose, so a red line in the overview is worth acting on. The formal comparison
with p-values lives in ``workbench compare`` (attribution); this is the at-a-glance screen.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..attribution.stats import Interval, MeanAggregate, t_interval, wilson_interval
from ..store.candidates import VersionStats

__all__ = ["NEGATIVE_IMPLICIT", "VersionAlert", "find_regressions", "judge_interval", "thumbs_interval"]

NEGATIVE_IMPLICIT = ("repeat_ask", "regenerate", "abandon", "pushback")


@dataclass(frozen=True)
class VersionAlert:
    key: tuple[str | None, int | None, str | None]
    baseline: tuple[str | None, int | None, str | None]
    metric: str
    value: float
    interval: Interval
    baseline_value: float
    baseline_interval: Interval
    message: str


def thumbs_interval(stats: VersionStats) -> Interval | None:
    return wilson_interval(stats.thumbs_up, stats.thumbs_n) if stats.thumbs_n else None


def judge_interval(n: int, total: float, total_sq: float) -> Interval | None:
    if n < 2:
        return None
    return t_interval(MeanAggregate(n=n, total=total, total_sq=max(total_sq, total * total / n)))


def _label(stats: VersionStats) -> str:
    return f"{stats.prompt_ref} · {stats.model or '(no model)'}"


def _rate_checks(cur: VersionStats, prev: VersionStats) -> Iterable[VersionAlert]:
    if cur.thumbs_n and prev.thumbs_n:
        a, b = thumbs_interval(cur), thumbs_interval(prev)
        assert a is not None and b is not None
        if a.high < b.low:
            va, vb = cur.thumbs_up / cur.thumbs_n, prev.thumbs_up / prev.thumbs_n
            yield VersionAlert(
                cur.key,
                prev.key,
                "thumbs-up rate",
                va,
                a,
                vb,
                b,
                f"{_label(cur)}: thumbs-up {va:.0%} [{a.low:.0%}–{a.high:.0%}] vs "
                f"{vb:.0%} [{b.low:.0%}–{b.high:.0%}] for {_label(prev)}",
            )
    if cur.traces and prev.traces:
        for signal in NEGATIVE_IMPLICIT:
            ka, kb = cur.implicit.get(signal, 0), prev.implicit.get(signal, 0)
            a = wilson_interval(min(ka, cur.traces), cur.traces)
            b = wilson_interval(min(kb, prev.traces), prev.traces)
            if a.low > b.high:
                va, vb = ka / cur.traces, kb / prev.traces
                yield VersionAlert(
                    cur.key,
                    prev.key,
                    f"{signal} rate",
                    va,
                    a,
                    vb,
                    b,
                    f"{_label(cur)}: {signal} on {va:.1%} of traces [{a.low:.1%}–{a.high:.1%}] vs "
                    f"{vb:.1%} [{b.low:.1%}–{b.high:.1%}] for {_label(prev)}",
                )
    for rubric, (n, total, total_sq) in cur.judge.items():
        if rubric not in prev.judge:
            continue
        a, b = judge_interval(n, total, total_sq), judge_interval(*prev.judge[rubric])
        if a is None or b is None or not (math.isfinite(a.high) and math.isfinite(b.low)):
            continue
        if a.high < b.low:
            va, vb = total / n, prev.judge[rubric][1] / prev.judge[rubric][0]
            yield VersionAlert(
                cur.key,
                prev.key,
                f"judge {rubric}",
                va,
                a,
                vb,
                b,
                f"{_label(cur)}: judge {rubric} mean {va:.2f} [{a.low:.2f}–{a.high:.2f}] vs "
                f"{vb:.2f} [{b.low:.2f}–{b.high:.2f}] for {_label(prev)}",
            )


def find_regressions(rows: list[VersionStats]) -> list[VersionAlert]:
    """Compare each prompt version with the previous version (same prompt, same model), and each
    model with the model used before it (same prompt version, ordered by first trace)."""
    alerts: list[VersionAlert] = []
    by_prompt: dict[tuple[str | None, str | None], list[VersionStats]] = {}
    by_model: dict[tuple[str | None, int | None], list[VersionStats]] = {}
    for stats in rows:
        if stats.prompt_name is not None and stats.prompt_version is not None:
            by_prompt.setdefault((stats.prompt_name, stats.model), []).append(stats)
        by_model.setdefault((stats.prompt_name, stats.prompt_version), []).append(stats)
    for group in by_prompt.values():
        group.sort(key=lambda s: s.prompt_version or 0)
        for prev, cur in itertools.pairwise(group):
            alerts.extend(_rate_checks(cur, prev))
    for group in by_model.values():
        if len(group) < 2:
            continue
        group.sort(key=lambda s: (s.first_seen is None, s.first_seen or 0, s.model or ""))
        for prev, cur in itertools.pairwise(group):
            alerts.extend(_rate_checks(cur, prev))
    return alerts
