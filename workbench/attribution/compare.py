"""Compare configurations (prompt version, model version, variant) against a baseline.

Input is one aggregate per configuration, exactly what a SQL ``GROUP BY`` returns, so compare
scales with the number of configurations, not of traces. Each configuration gets its value with
a 95% interval, the difference from the baseline with an interval and a multiplicity-adjusted
p-value, a verdict, and how many more observations per arm would settle the question.

Correlated votes: when aggregates carry cluster sums (votes grouped by session, or by trace
where there is no session), every interval, test and sample-size estimate is cluster-robust
(see ``stats``), and each row says what its interval is over (``interval_unit``, ``clusters``,
``design_effect``); sample sizes are then in observations at the observed design effect.

Verdict rule (documented so people can trust it):
- ``better`` / ``worse``: adjusted p-value < alpha (direction by ``higher_is_better``);
- ``no difference``: not significant, and the interval of the difference lies inside
  ``(-min_effect, +min_effect)``, i.e. any difference that matters is ruled out;
- ``too little data``: neither, so no winner can be called yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from workbench.attribution import power as pw
from workbench.attribution.stats import (
    DiffResult,
    EstimateAggregate,
    Interval,
    MeanAggregate,
    RateAggregate,
    adjust_pvalues,
    design_effect,
    estimate_difference,
    mean_difference,
    normal_interval,
    rate_difference,
    rate_interval,
    t_interval,
)
from workbench.errors import StatisticsError, ValidationError

__all__ = ["DEFAULT_RATE_MIN_EFFECT", "Comparison", "ConfigResult", "MetricKind", "Verdict", "compare"]

MetricKind = Literal["rate", "mean", "estimate"]
Verdict = Literal["baseline", "better", "worse", "no difference", "too little data"]
Aggregate = RateAggregate | MeanAggregate | EstimateAggregate
_KINDS: dict[str, type] = {"rate": RateAggregate, "mean": MeanAggregate, "estimate": EstimateAggregate}
_CORRECTIONS = ("holm", "bh", "none")
# Smallest rate difference worth acting on unless the caller says otherwise: 5 points absolute.
DEFAULT_RATE_MIN_EFFECT = 0.05
# For means without a stated min_effect: Cohen's "small" effect, 0.2 baseline standard deviations.
DEFAULT_MEAN_MIN_EFFECT_SD = 0.2


@dataclass(frozen=True)
class ConfigResult:
    configuration: str
    n: int
    value: float
    ci: Interval | None
    verdict: Verdict
    message: str
    diff: float | None = None
    diff_ci: Interval | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    test: str | None = None
    power_target: float | None = None  # the difference the power estimate is for
    needed_per_arm: int | None = None  # n per arm for `power` at that difference
    additional_per_arm: int | None = None  # needed_per_arm minus the smaller arm's n (>= 0)
    power_at_min_effect: float | None = None
    interval_unit: str = "observation"  # what the interval treats as independent: session, trace, ...
    clusters: int | None = None  # how many of them (None: every observation independent)
    design_effect: float = 1.0  # cluster-robust variance / independent-vote variance

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = self.ci.to_dict() if self.ci else None
        d["diff_ci"] = self.diff_ci.to_dict() if self.diff_ci else None
        return d


@dataclass(frozen=True)
class Comparison:
    metric_kind: MetricKind
    baseline: str
    alpha: float
    correction: str
    power: float
    higher_is_better: bool
    min_effect: float | None
    rows: tuple[ConfigResult, ...]
    winner: str | None
    summary: str
    interval_unit: str = "observation"

    def row(self, configuration: str) -> ConfigResult:
        for r in self.rows:
            if r.configuration == configuration:
                return r
        raise ValidationError(f"no configuration {configuration!r} in this comparison")

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k != "rows"}
        d["rows"] = [r.to_dict() for r in self.rows]
        return d


def _fmt(kind: str, v: float) -> str:
    return f"{v:.1%}" if kind == "rate" else f"{v:.3g}"


def _fmt_diff(kind: str, v: float) -> str:
    return f"{v * 100:+.1f} points" if kind == "rate" else f"{v:+.3g}"


def _value_ci(agg: Aggregate, confidence: float) -> tuple[float, Interval | None]:
    if isinstance(agg, RateAggregate):
        return agg.value, rate_interval(agg, confidence)
    if isinstance(agg, MeanAggregate):
        try:
            return agg.value, t_interval(agg, confidence)
        except StatisticsError:  # one value, or one cluster: no interval yet
            return agg.value, None
    return agg.value, normal_interval(agg.estimate, agg.se, confidence)


def _deff(agg: Aggregate) -> float:
    return 1.0 if isinstance(agg, EstimateAggregate) else design_effect(agg)


def _unit(agg: Aggregate) -> tuple[str, int | None]:
    """(what the interval is over, how many): clusters when the aggregate has them."""
    clusters = getattr(agg, "clusters", None)
    return (clusters.unit, int(clusters.count)) if clusters is not None else ("observation", None)


def _sd(agg: Aggregate) -> float | None:
    """Per-observation standard deviation (None when it cannot be estimated)."""
    if isinstance(agg, MeanAggregate):
        return agg.sd if agg.n >= 2 else None
    if isinstance(agg, EstimateAggregate):
        return agg.se * math.sqrt(agg.n)
    return math.sqrt(agg.value * (1 - agg.value))


def _difference(a: Aggregate, b: Aggregate, confidence: float) -> DiffResult:
    if isinstance(a, RateAggregate) and isinstance(b, RateAggregate):
        return rate_difference(a, b, confidence)
    if isinstance(a, MeanAggregate) and isinstance(b, MeanAggregate):
        return mean_difference(a, b, confidence)
    assert isinstance(a, EstimateAggregate) and isinstance(b, EstimateAggregate)
    return estimate_difference(a, b, confidence)


def _power(
    agg: Aggregate, base: Aggregate, diff: float, min_effect: float | None, alpha: float, power: float
) -> tuple[float | None, int | None, float | None]:
    """(target difference, n per arm needed for it, power now at min_effect); None where undefined."""
    target = max(abs(diff), min_effect or 0.0)
    sign = 1.0 if diff > 0 else -1.0
    # Clustered votes are worth n / deff independent ones: plan in independent units, report in votes.
    deff = max(_deff(agg), _deff(base))
    n_agg, n_base = max(1, round(agg.n / _deff(agg))), max(1, round(base.n / _deff(base)))
    if isinstance(base, RateAggregate):
        pb = base.value
        pc = pb + sign * target
        if not 0 <= pc <= 1:
            pc = pb - sign * target
        needed = pw.n_per_arm_rates(pc, pb, alpha, power) if target > 0 and 0 <= pc <= 1 else None
        at_min = None
        if min_effect:
            pm = pb + sign * min_effect if 0 <= pb + sign * min_effect <= 1 else pb - sign * min_effect
            if 0 <= pm <= 1:
                at_min = pw.power_rates(pm, pb, n_agg, n_base, alpha)
        return target or None, (math.ceil(needed * deff) if needed is not None else None), at_min
    sb, sc = _sd(base), _sd(agg)
    sc = sc if sc is not None else sb
    if sb is None or sc is None or (sb == 0 and sc == 0) or target == 0:
        return target or None, None, None
    if isinstance(base, MeanAggregate):
        needed = pw.n_per_arm_means(target, sc, sb, alpha, power)
    else:
        needed = pw.n_per_arm_normal(target, sc**2, sb**2, alpha, power)
    at_min = None
    if min_effect and n_agg >= 2 and n_base >= 2:
        at_min = pw.power_means(min_effect, sc, sb, n_agg, n_base, alpha)
    return target, (math.ceil(needed * deff) if needed is not None else None), at_min


def _validate(
    aggregates: Mapping[str, Aggregate],
    baseline: str,
    metric_kind: str,
    alpha: float,
    correction: str,
    power: float,
    min_effect: float | None,
) -> None:
    if metric_kind not in _KINDS:
        raise ValidationError(f"unknown metric kind {metric_kind!r}; use one of {sorted(_KINDS)}")
    if correction not in _CORRECTIONS:
        raise ValidationError(f"unknown correction {correction!r}; use one of {_CORRECTIONS}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValidationError(f"alpha and power must be in (0, 1), got alpha={alpha!r}, power={power!r}")
    if min_effect is not None and not (math.isfinite(min_effect) and min_effect > 0):
        raise ValidationError(f"min_effect must be a positive number, got {min_effect!r}")
    if not aggregates:
        raise StatisticsError("nothing to compare: no configurations have data")
    if baseline not in aggregates:
        raise ValidationError(f"baseline {baseline!r} is not among the configurations {sorted(aggregates)}")
    for name, agg in aggregates.items():
        if not isinstance(agg, _KINDS[metric_kind]):
            raise ValidationError(
                f"configuration {name!r}: expected {_KINDS[metric_kind].__name__} for "
                f"metric kind {metric_kind!r}, got {type(agg).__name__}"
            )
        if agg.n == 0:
            raise StatisticsError(f"configuration {name!r} has no observations (n=0)")


def compare(
    aggregates: Mapping[str, Aggregate],
    baseline: str,
    metric_kind: MetricKind = "rate",
    alpha: float = 0.05,
    correction: str = "holm",
    higher_is_better: bool = True,
    min_effect: float | None = None,
    power: float = 0.8,
) -> Comparison:
    """Compare every configuration with ``baseline``; see the module docstring for the verdict rule.

    ``min_effect``: smallest difference that matters (absolute units of the metric); defaults to
    5 points for rates and 0.2 baseline SDs for means/estimates. Power estimates use alpha/m
    (m comparisons) when a correction is on: conservative, as it is Holm's first step.
    """
    _validate(aggregates, baseline, metric_kind, alpha, correction, power, min_effect)
    confidence = 1 - alpha
    base = aggregates[baseline]
    if min_effect is None:
        if metric_kind == "rate":
            min_effect = DEFAULT_RATE_MIN_EFFECT
        else:
            sd = _sd(base)
            min_effect = DEFAULT_MEAN_MIN_EFFECT_SD * sd if sd else None

    others = [c for c in aggregates if c != baseline]
    tests: dict[str, DiffResult] = {}
    untestable: dict[str, str] = {}
    for name in others:
        try:
            tests[name] = _difference(aggregates[name], base, confidence)
        except StatisticsError as exc:
            untestable[name] = str(exc)
    adjusted = dict(zip(tests, adjust_pvalues([t.p_value for t in tests.values()], correction), strict=True))
    plan_alpha = alpha / max(1, len(others)) if correction != "none" else alpha
    label = {"holm": " after Holm", "bh": " after BH", "none": ""}[correction]

    b_value, b_ci = _value_ci(base, confidence)
    rows = [
        ConfigResult(
            baseline,
            int(base.n),
            b_value,
            b_ci,
            "baseline",
            f"{baseline} is the baseline: {_fmt(metric_kind, b_value)} (n={base.n}{_per(base)})",
            interval_unit=_unit(base)[0],
            clusters=_unit(base)[1],
            design_effect=_deff(base),
        )
    ]
    for name in others:
        agg = aggregates[name]
        value, ci = _value_ci(agg, confidence)
        t = tests.get(name)
        diff = t.estimate if t else value - b_value
        target, needed, at_min = _power(agg, base, diff, min_effect, plan_alpha, power)
        more = max(0, needed - min(agg.n, base.n)) if needed is not None else None
        p_adj = adjusted.get(name)
        if t is None:
            verdict: Verdict = "too little data"
            why = f"cannot test yet ({untestable[name]})"
        elif p_adj is not None and p_adj < alpha:
            verdict = "better" if (diff > 0) == higher_is_better else "worse"
            why = f"{verdict} than {baseline}"
        elif min_effect and t.interval is not None and -min_effect < t.interval.low and t.interval.high < min_effect:
            verdict = "no difference"
            why = f"no difference of {_fmt_diff(metric_kind, min_effect).lstrip('+')} or more from {baseline}"
        else:
            verdict = "too little data"
            why = "too little data to call a winner"
        msg = f"{name}: {why}: {_fmt(metric_kind, value)} vs {_fmt(metric_kind, b_value)}"
        if t is not None and t.interval is not None:
            lo, hi = _fmt_diff(metric_kind, t.interval.low), _fmt_diff(metric_kind, t.interval.high)
            d_txt, unit = _fmt_diff(metric_kind, diff), " points" if metric_kind == "rate" else ""
            lo, hi = lo.removesuffix(unit), hi.removesuffix(unit)
            msg += f" ({d_txt}, {confidence:.0%} CI {lo} to {hi}{unit}, p={p_adj:.3g}{label})"
        if verdict == "too little data" and more and target:
            msg += (
                f"; about {more:,} more observations per arm would detect a difference of "
                f"{_fmt_diff(metric_kind, target).lstrip('+')} with {power:.0%} power"
            )
        rows.append(
            ConfigResult(
                name,
                int(agg.n),
                value,
                ci,
                verdict,
                msg,
                diff,
                t.interval if t else None,
                t.p_value if t else None,
                p_adj,
                t.test if t else None,
                target,
                needed,
                more,
                at_min,
                _unit(agg)[0],
                _unit(agg)[1],
                _deff(agg),
            )
        )
    winner, summary = _summarise(rows, baseline, metric_kind, higher_is_better)
    units = sorted({r.interval_unit for r in rows})
    return Comparison(
        metric_kind,
        baseline,
        alpha,
        correction,
        power,
        higher_is_better,
        min_effect,
        tuple(rows),
        winner,
        summary,
        units[0] if len(units) == 1 else "+".join(units),
    )


def _per(agg: Aggregate) -> str:
    unit, count = _unit(agg)
    return f" in {count:,} {unit}s" if count is not None and count < agg.n else ""


def _summarise(rows: list[ConfigResult], baseline: str, kind: str, higher_is_better: bool) -> tuple[str | None, str]:
    others = rows[1:]
    if not others:
        return None, f"only {baseline} has data; nothing to compare"
    better = [r for r in others if r.verdict == "better"]
    if better:
        sign = 1 if higher_is_better else -1
        best = max(better, key=lambda r: sign * (r.diff or 0.0))
        extra = (
            f" ({len(better)} configurations beat {baseline}; they were not tested against each other)"
            if len(better) > 1
            else ""
        )
        return best.configuration, (
            f"{best.configuration} beats {baseline}: {_fmt(kind, best.value)} vs {_fmt(kind, rows[0].value)}{extra}"
        )
    unsure = [r for r in others if r.verdict == "too little data"]
    if unsure:
        more = [r.additional_per_arm for r in unsure if r.additional_per_arm]
        tail = f"; about {max(more):,} more observations per arm needed" if more else ""
        return None, f"too little data to call a winner{tail}"
    return None, f"{baseline} holds: no configuration is better"
