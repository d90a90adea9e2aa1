"""Compare configurations on a user-outcome metric, straight from the store's SQL aggregates.

This is the glue between ``workbench.store.attribution`` (one row per configuration, computed
by ``GROUP BY``) and the pure statistics in ``compare``: it names the metrics, turns rows into
aggregates, picks a baseline, and says which method produced the numbers.

Metrics (``higher is better`` decides what "worse" means):

- ``thumbs_up_rate``: each user's latest thumbs vote on a trace; share up (rate, higher better)
- ``rating``: each user's latest rating on a trace; mean (Welch t, higher better)
- ``repeat_ask_rate`` / ``abandon_rate``: share of traces with that implicit signal (lower better)
- ``judge:RUBRIC``: mean judge score per trace; when every configuration has user ratings on a
  labelled subset, the prediction-powered (PPI) estimate of the mean *user rating* instead
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from workbench.attribution.compare import Comparison, MetricKind, compare
from workbench.attribution.stats import Clusters, EstimateAggregate, MeanAggregate, RateAggregate
from workbench.errors import NotFoundError, StatisticsError, ValidationError
from workbench.store import Store
from workbench.store import attribution as rows_db
from workbench.store.attribution import GroupRow, JudgeRow

__all__ = [
    "METRICS",
    "CompareReport",
    "Metric",
    "compare_configurations",
    "config_dict",
    "config_label",
    "jsonable",
    "judge_mean",
    "metric_rows",
    "parse_metric",
    "ppi_estimate",
    "row_clusters",
    "to_aggregate",
]

Aggregate = RateAggregate | MeanAggregate | EstimateAggregate
# PPI needs a variance on both parts: at least this many labelled and unlabelled traces per configuration.
MIN_PPI_LABELED = 3
MIN_PPI_UNLABELED = 2


@dataclass(frozen=True)
class Metric:
    name: str
    kind: MetricKind
    higher_is_better: bool
    source: str  # what the store aggregates: thumbs, rating, an implicit signal, or judge:RUBRIC
    description: str

    @property
    def rubric(self) -> str | None:
        return self.source.removeprefix("judge:") if self.source.startswith("judge:") else None


METRICS: dict[str, Metric] = {
    "thumbs_up_rate": Metric("thumbs_up_rate", "rate", True, "thumbs", "share of thumbs-up votes"),
    "rating": Metric("rating", "mean", True, "rating", "mean user rating"),
    "repeat_ask_rate": Metric("repeat_ask_rate", "rate", False, "repeat_ask", "share of traces the user re-asked"),
    "abandon_rate": Metric("abandon_rate", "rate", False, "abandon", "share of traces the user abandoned"),
}


def jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars become floats, NaN becomes null), ready for a JSON column."""
    return orjson.loads(
        orjson.dumps(
            value,
            option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
            default=lambda v: v.item() if hasattr(v, "item") else str(v),
        )
    )


def parse_metric(text: str) -> Metric:
    """A metric name (see the module docstring) -> its definition; unknown names fail with the list."""
    if text in METRICS:
        return METRICS[text]
    if text.startswith("judge:") and text.removeprefix("judge:").strip():
        rubric = text.removeprefix("judge:").strip()
        return Metric(f"judge:{rubric}", "mean", True, f"judge:{rubric}", f"mean judge score ({rubric})")
    raise ValidationError(f"unknown metric {text!r}; use one of {', '.join(METRICS)} or judge:RUBRIC")


def config_label(by: str, key: Iterable[Any]) -> str:
    """Readable, unique name of a configuration: ``support@2``, ``gpt-4o-2024-08-06/fp_abc``, ``B``."""
    key = tuple(key)
    if by == "prompt_version":
        name, version = key
        return f"{name}@{version}" if name is not None else "(no prompt)"
    if by == "model_version":
        model, fingerprint = key
        model = model if model is not None else "(unknown model)"
        return f"{model}/{fingerprint}" if fingerprint else model
    if by == "variant":
        return key[0] if key[0] is not None else "(none)"
    return "all"


def config_dict(by: str, key: Iterable[Any]) -> dict[str, Any]:
    """The configuration as stored in alerts: ``by``, ``label`` and the key fields."""
    key = tuple(key)
    return {"by": by, "label": config_label(by, key), **dict(zip(rows_db.config_fields(by), key, strict=True))}


def row_clusters(row: GroupRow) -> Clusters | None:
    """The row's cluster sums (None when its query does not cluster). The unit is "session" when any
    cluster is a session; a trace without a session is then its own cluster."""
    if not row.clusters:
        return None
    return Clusters(
        count=row.clusters,
        sum_sq=max(row.c_sq, 0.0),
        sum_cross=row.c_cross,
        n_sq=max(row.c_nsq, float(row.n)),
        unit="session" if row.sessions else "trace",
    )


def to_aggregate(metric: Metric, row: GroupRow) -> RateAggregate | MeanAggregate:
    if metric.kind == "rate":
        return RateAggregate(n=row.n, successes=round(row.total), clusters=row_clusters(row))
    return MeanAggregate(n=row.n, total=row.total, total_sq=max(row.total_sq, 0.0), clusters=row_clusters(row))


def judge_mean(row: JudgeRow) -> MeanAggregate:
    """Mean judge score over every scored trace (judge scale)."""
    return MeanAggregate(n=row.n, total=row.f_total, total_sq=row.f_sq)


def _var(n: int, total: float, total_sq: float) -> float:
    return max(0.0, (total_sq - total * total / n) / (n - 1))


def ppi_estimate(row: JudgeRow) -> EstimateAggregate | None:
    """Prediction-powered mean user rating (Angelopoulos et al. 2023) from sums, or None if too few labels.

    theta = mean(f over unlabelled) + mean(y - f over labelled); se^2 = var_u(f)/N + var_l(y - f)/n.
    Unbiased however biased the judge, *if* the rated traces are a random subset of the scored ones.
    """
    n_l, n_u = row.n_labeled, row.n - row.n_labeled
    if n_l < MIN_PPI_LABELED or n_u < MIN_PPI_UNLABELED:
        return None
    u_total, u_sq = row.f_total - row.lf_total, row.f_sq - row.lf_sq
    theta = u_total / n_u + row.resid_total / n_l
    se = math.sqrt(_var(n_u, u_total, u_sq) / n_u + _var(n_l, row.resid_total, row.resid_sq) / n_l)
    return EstimateAggregate(estimate=theta, se=se, n=row.n)


def metric_rows(store: Store, metric: Metric, by: str, **options: Any) -> list[GroupRow] | list[JudgeRow]:
    """Per-configuration (and bucket) sums for ``metric``; ``options`` go to the store query."""
    with store.read() as conn:
        if metric.rubric is not None:
            return rows_db.judge_groups(conn, by, rubric_id=metric.rubric, **options)
        if metric.source == "thumbs":
            return rows_db.vote_groups(conn, by, signal="thumbs", **options)
        if metric.source == "rating":
            return rows_db.mean_groups(conn, by, signal="rating", **options)
        return rows_db.rate_groups(conn, by, signal=metric.source, **options)


@dataclass(frozen=True)
class CompareReport:
    by: str
    metric: Metric
    since: datetime | None
    until: datetime | None
    prompt: str | None
    method: str
    configurations: dict[str, dict[str, Any]]
    aggregates: dict[str, Aggregate]
    comparison: Comparison
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "by": self.by,
                "metric": self.metric.name,
                "metric_kind": self.metric.kind,
                "higher_is_better": self.metric.higher_is_better,
                "description": self.metric.description,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "prompt": self.prompt,
                "method": self.method,
                "notes": list(self.notes),
                "configurations": self.configurations,
                "aggregates": {k: v.to_dict() for k, v in self.aggregates.items()},
                **self.comparison.to_dict(),
            }
        )


def _method(metric: Metric, ppi: bool, correction: str, unit: str = "observation") -> str:
    adjust = {"holm": "Holm-adjusted", "bh": "Benjamini-Hochberg-adjusted", "none": "unadjusted"}[correction]
    if metric.kind == "rate":
        test = "Wilson intervals; Newcombe interval and two-proportion z test (Fisher exact for small counts)"
    elif ppi:
        test = "prediction-powered estimate of the mean user rating (normal intervals, z test)"
    else:
        test = "t intervals; Welch's t test"
    if unit in ("session", "trace"):
        where = "by session (a trace without a session is its own cluster)" if unit == "session" else "by trace"
        test += (
            f", cluster-robust: votes clustered {where}, CR1 sandwich variance with clusters - 1 degrees of "
            f"freedom; rates on effective sample sizes"
        )
    return f"{test}; {adjust} p-values against the baseline"


def _aggregates(
    metric: Metric, rows: list[Any], by: str
) -> tuple[dict[str, Aggregate], dict[str, dict[str, Any]], bool, list[str]]:
    configs = {config_label(by, r.key): config_dict(by, r.key) for r in rows}
    notes: list[str] = []
    if metric.rubric is None:
        if metric.kind == "rate" and metric.source != "thumbs":
            notes.append(
                f"{metric.name}: each trace counts as one independent observation (traces are not clustered by "
                f"session for implicit signals yet); traces in one session are correlated, so these intervals "
                f"may be too narrow"
            )
        return {config_label(by, r.key): to_aggregate(metric, r) for r in rows}, configs, False, notes
    estimates = {config_label(by, r.key): ppi_estimate(r) for r in rows}
    missing = sorted(k for k, v in estimates.items() if v is None)
    if not missing:
        notes.append(
            "judge scores corrected with user ratings on the rated subset (PPI): values are on the "
            "user-rating scale; assumes rated traces are a random subset of scored ones"
        )
        return {k: v for k, v in estimates.items() if v is not None}, configs, True, notes
    if any(r.n_labeled for r in rows):
        notes.append(
            f"no PPI: too few user ratings on judged traces in {', '.join(missing)} (need "
            f"{MIN_PPI_LABELED}); showing raw judge means, on the judge's scale"
        )
    return {config_label(by, r.key): judge_mean(r) for r in rows}, configs, False, notes


def _default_baseline(store: Store, aggs: Mapping[str, Aggregate], by: str, prompt: str | None) -> str:
    """The promoted version when comparing one prompt's versions; otherwise the configuration with most data."""
    if by == "prompt_version" and prompt is not None:
        with store.read() as conn:
            promoted = rows_db.prompt_state(conn, prompt).promoted
        if promoted is not None and f"{prompt}@{promoted}" in aggs:
            return f"{prompt}@{promoted}"
    return min(aggs, key=lambda k: (-aggs[k].n, k))


def compare_configurations(
    store: Store,
    by: str = "prompt_version",
    metric: str | Metric = "thumbs_up_rate",
    since: datetime | None = None,
    baseline: str | None = None,
    *,
    until: datetime | None = None,
    prompt: str | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    min_effect: float | None = None,
    power: float = 0.8,
) -> CompareReport:
    """Per configuration under ``by``: n, value with CI, difference from ``baseline`` with CI and p-value.

    ``baseline`` is a configuration label (see :func:`config_label`); by default the promoted
    version (``--prompt`` with ``by=prompt_version``) or else the configuration with the most data.
    """
    spec = metric if isinstance(metric, Metric) else parse_metric(metric)
    rows_db.config_fields(by)
    rows = metric_rows(store, spec, by, since=since, until=until, prompt_name=prompt)
    rows = [r for r in rows if r.n > 0]
    if not rows:
        scope = "".join(
            [
                f" for prompt {prompt!r}" if prompt else "",
                f" since {since.isoformat()}" if since else "",
                f" until {until.isoformat()}" if until else "",
            ]
        )
        raise StatisticsError(f"no {spec.name} data{scope}: nothing to compare ({spec.description})")
    aggs, configs, ppi, notes = _aggregates(spec, rows, by)
    if baseline is None:
        baseline = _default_baseline(store, aggs, by, prompt)
    elif baseline not in aggs:
        raise NotFoundError(
            f"no configuration {baseline!r} with {spec.name} data under --by {by}; known: {', '.join(sorted(aggs))}"
        )
    kind: MetricKind = "estimate" if ppi else spec.kind
    result = compare(
        aggs,
        baseline,
        kind,
        alpha=alpha,
        correction=correction,
        higher_is_better=spec.higher_is_better,
        min_effect=min_effect,
        power=power,
    )
    method = _method(spec, ppi, correction, result.interval_unit)
    return CompareReport(by, spec, since, until, prompt, method, configs, aggs, result, tuple(notes))
