"""Watch: has any configuration got worse in the recent window than in the baseline period before it?

One run (what ``workbench watch --once`` does from cron or CI):

1. one SQL query per metric returns, per configuration, the baseline period's sums (bucket -1)
   and the window's (bucket 0), with cluster sums: votes are clustered by session (by trace
   where there is no session), and a session's votes in a period stay one cluster;
2. each configuration x metric with data in both periods gets a one-sided test in the bad
   direction (``window_vs_baseline``: two-proportion z / Fisher for rates, Welch for means;
   cluster-robust when the votes are clustered, see ``stats``);
3. Holm's adjustment over all those tests, so ``false_alarm`` is the probability that a run with
   nothing changed raises any alert at all (a cron job every hour at 0.01 cries wolf about
   once in 100 runs, however many configurations and metrics it watches);
4. for each alert: evidence (counts, rates, intervals, p-values, example trace ids, and for rates
   a CUSUM over the window's ``buckets`` sub-buckets estimating when the change started, from
   one more query over the window only, run for alerting metrics), a row in the alert log,
   and an optional webhook POST. An alert already logged for the same configuration and metric
   within the last window is not logged or posted again (the run still reports it).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from workbench.attribution.drift import WindowCheck, design_bernoulli_cusum, window_vs_baseline
from workbench.attribution.inputs import input_drift
from workbench.attribution.service import (
    Metric,
    config_dict,
    jsonable,
    metric_rows,
    parse_metric,
    to_aggregate,
)
from workbench.attribution.stats import MeanAggregate, RateAggregate, adjust_pvalues
from workbench.errors import StatisticsError, ValidationError
from workbench.ids import new_id
from workbench.models import Alert, last_user_text
from workbench.store import Store
from workbench.store import attribution as rows_db

__all__ = [
    "DEFAULT_WATCH_METRICS",
    "SeriesCheck",
    "WatchReport",
    "WebhookResult",
    "format_duration",
    "post_webhook",
    "watch",
]

DEFAULT_WATCH_METRICS = ("thumbs_up_rate", "rating", "repeat_ask_rate", "abandon_rate")
EXAMPLES = 5


@dataclass(frozen=True)
class SeriesCheck:
    """One configuration x metric: ``status`` is alert, ok, no baseline, no recent data, no variation or
    untestable; only alert and ok were tested (and count in the Holm family)."""

    configuration: dict[str, Any]
    metric: str
    status: str
    window_n: int
    baseline_n: int
    window_value: float | None = None
    baseline_value: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    note: str = ""
    interval_unit: str = "observation"  # what the test treats as independent: session, trace, ...
    window_clusters: int | None = None  # how many of them in each period (None: not clustered)
    baseline_clusters: int | None = None

    @property
    def label(self) -> str:
        return str(self.configuration["label"])

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "label": self.label}


@dataclass(frozen=True)
class WebhookResult:
    url: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class WatchReport:
    now: datetime
    window: timedelta
    baseline: timedelta
    by: str
    false_alarm: float
    checks: list[SeriesCheck] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)  # new: logged (and posted) by this run
    repeats: list[Alert] = field(default_factory=list)  # still alerting, already logged within the window
    webhooks: list[WebhookResult] = field(default_factory=list)
    input_drift: dict[str, Any] | None = None

    @property
    def alerting(self) -> bool:
        return bool(self.alerts or self.repeats)

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "window": format_duration(self.window),
            "baseline": format_duration(self.baseline),
            "by": self.by,
            "false_alarm": self.false_alarm,
            "alerting": self.alerting,
            "checks": [c.to_dict() for c in self.checks],
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
            "repeats": [a.model_dump(mode="json") for a in self.repeats],
            "webhooks": [w.to_dict() for w in self.webhooks],
            "input_drift": self.input_drift,
        }


def format_duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def post_webhook(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    timeout: float = 5.0,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookResult:
    """POST JSON; retry connection errors, timeouts, 429 and 5xx with exponential backoff.

    Never raises: the alert is already logged, so a dead chat webhook must not hide it.
    """
    error, status = None, None
    with httpx.Client(timeout=timeout, transport=transport) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(url, json=payload)
                status = response.status_code
                if response.is_success:
                    return WebhookResult(url, True, attempt, status)
                error = f"HTTP {status}: {response.text[:200].strip()}"
                if status != 429 and status < 500:
                    return WebhookResult(url, False, attempt, status, error)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if attempt < attempts:
                sleep(backoff * 2 ** (attempt - 1))
    return WebhookResult(url, False, attempts, status, error)


def _split(rows: Sequence[Any], metric: Metric, buckets: int) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per configuration: baseline aggregate, window aggregate, and per-bucket (successes, n) for rates."""
    grouped: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for r in rows:
        grouped[r.key].append(r)
    out = {}
    for key, parts in grouped.items():
        base = [r for r in parts if r.bucket < 0]
        recent = [r for r in parts if r.bucket >= 0]
        out[key] = {"baseline": _sum(base, metric), "window": _sum(recent, metric), "buckets": None}
        if metric.kind == "rate":
            k, n = np.zeros(buckets, dtype=np.int64), np.zeros(buckets, dtype=np.int64)
            for r in recent:
                i = min(r.bucket, buckets - 1)  # a trace exactly at `now` rounds into the last bucket
                k[i] += round(r.total)
                n[i] += r.n
            out[key]["buckets"] = (k, n)
    return out


def _sum(rows: Sequence[Any], metric: Metric) -> RateAggregate | MeanAggregate | None:
    if not rows:
        return None
    n = sum(r.n for r in rows)
    if metric.rubric is not None:  # drift of the judge's own scores: plain means, no PPI needed
        return MeanAggregate(n=n, total=sum(r.f_total for r in rows), total_sq=sum(r.f_sq for r in rows))
    clusters = {f: sum(getattr(r, f) for r in rows) for f in ("clusters", "sessions", "c_sq", "c_cross", "c_nsq")}
    return to_aggregate(
        metric,
        rows_db.GroupRow(rows[0].key, None, n, sum(r.total for r in rows), sum(r.total_sq for r in rows), **clusters),
    )


def _bucket_counts(
    store: Store, metric: Metric, by: str, start: datetime, now: datetime, step: timedelta, buckets: int
) -> dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray] | None]:
    """Per configuration, (successes, n) in each of the window's sub-buckets, for the CUSUM of an alert."""
    rows = metric_rows(store, metric, by, since=start, until=now, split_at=start, bucket_seconds=step.total_seconds())
    return {key: parts["buckets"] for key, parts in _split(rows, metric, buckets).items()}


def _change_start(
    base: RateAggregate, buckets: tuple[np.ndarray, np.ndarray], start: datetime, step: timedelta
) -> dict[str, Any] | None:
    """Run a CUSUM (baseline rate -> window rate) over the window's buckets to date the change."""
    k, n = buckets
    p0, p1 = base.value, k.sum() / max(1, n.sum())
    if not (0 < p0 < 1 and 0 < p1 < 1) or p0 == p1:
        return None
    try:
        result = design_bernoulli_cusum(p0, float(p1)).run_counts(k, n)
    except StatisticsError:
        return None
    out = {"cusum": result.to_dict(), "bucket": format_duration(step)}
    if result.change_at is not None:
        out["started_at"] = (start + step * result.change_at).isoformat()
    return out


@dataclass
class _Pending:
    key: tuple[Any, ...]
    metric: Metric
    check: WindowCheck
    window: RateAggregate | MeanAggregate
    baseline: RateAggregate | MeanAggregate
    buckets: tuple[np.ndarray, np.ndarray] | None


def _evidence(
    p: _Pending, p_adj: float, tests: int, false_alarm: float, start: datetime, end: datetime, step: timedelta
) -> dict[str, Any]:
    c = p.check
    ev: dict[str, Any] = {
        "message": c.message.removeprefix("ALERT: "),
        "direction": c.direction,
        "window": {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "n": c.window_n,
            "value": c.window_value,
            "ci": c.window_ci.to_dict() if c.window_ci else None,
            "aggregate": p.window.to_dict(),
        },
        "baseline": {
            "n": c.baseline_n,
            "value": c.baseline_value,
            "ci": c.baseline_ci.to_dict() if c.baseline_ci else None,
            "aggregate": p.baseline.to_dict(),
        },
        "difference": c.difference.to_dict(),
        "p_value": c.difference.p_value,
        "p_adjusted": p_adj,
        "false_alarm": false_alarm,
        "tests_in_run": tests,
        "correction": "holm",
        "interval_unit": next((a.clusters.unit for a in (p.window, p.baseline) if a.clusters), "observation"),
    }
    if p.buckets is not None and isinstance(p.baseline, RateAggregate):
        change = _change_start(p.baseline, p.buckets, start, step)
        if change:
            ev["change"] = change
    return ev


def _bad_direction(metric: Metric) -> str:
    return "decrease" if metric.higher_is_better else "increase"


def watch(
    store: Store,
    window: timedelta = timedelta(hours=1),
    baseline: timedelta = timedelta(days=7),
    false_alarm: float = 0.01,
    *,
    by: str = "prompt_version",
    metrics: Sequence[str] | None = None,
    now: datetime | None = None,
    webhook: str | None = None,
    buckets: int = 12,
    reference_inputs: Sequence[str] | None = None,
    reference_name: str = "golden",
    webhook_options: dict[str, Any] | None = None,
) -> WatchReport:
    """One watch run over ``[now - window - baseline, now)``; see the module docstring."""
    if window <= timedelta(0) or baseline <= timedelta(0):
        raise ValidationError("--window and --baseline must be positive durations")
    if not 0 < false_alarm < 1:
        raise ValidationError(f"--false-alarm must be in (0, 1), got {false_alarm!r}")
    if buckets < 1:
        raise ValidationError(f"buckets must be >= 1, got {buckets}")
    rows_db.config_fields(by)
    specs = [parse_metric(m) for m in (metrics or DEFAULT_WATCH_METRICS)]
    now = (now or datetime.now(UTC)).astimezone(UTC)
    start, since = now - window, now - window - baseline
    step = window / buckets
    with store.read() as conn:
        recent_traces = rows_db.count_traces(conn, since=start, until=now)
    if recent_traces == 0:
        raise StatisticsError(
            f"no traces in the window {start.isoformat()} .. {now.isoformat()} "
            f"(last {format_duration(window)}): nothing to watch"
        )
    report = WatchReport(now, window, baseline, by, false_alarm)
    pending: list[_Pending] = []
    for spec in specs:
        rows = metric_rows(store, spec, by, since=since, until=now, split_at=start)  # periods -1 and 0
        for key, parts in _split(rows, spec, 1).items():
            cfg, w, b = config_dict(by, key), parts["window"], parts["baseline"]
            wn, bn = (w.n if w else 0), (b.n if b else 0)
            if not wn or not bn:
                status = "no baseline" if wn else "no recent data"
                report.checks.append(SeriesCheck(cfg, spec.name, status, wn, bn))
                continue
            if (
                isinstance(w, RateAggregate)
                and isinstance(b, RateAggregate)
                and (w.successes + b.successes in (0, w.n + b.n))
            ):
                # e.g. no abandon signals mined at all: nothing to test, and it would only dilute the others
                report.checks.append(
                    SeriesCheck(
                        cfg,
                        spec.name,
                        "no variation",
                        wn,
                        bn,
                        w.value,
                        b.value,
                        note="the same outcome for every observation in both periods",
                    )
                )
                continue
            try:
                check = window_vs_baseline(w, b, alpha=false_alarm, direction=_bad_direction(spec))
            except StatisticsError as exc:
                report.checks.append(SeriesCheck(cfg, spec.name, "untestable", wn, bn, note=str(exc)))
                continue
            pending.append(_Pending(key, spec, check, w, b, None))
    drift = _input_drift(store, reference_inputs, since, start, now, false_alarm) if reference_inputs else None
    pvalues = [p.check.difference.p_value for p in pending] + ([drift.difference.p_value] if drift else [])
    adjusted = adjust_pvalues(pvalues, "holm") if pvalues else np.array([])
    found: list[Alert] = []
    counts: dict[str, dict[tuple[Any, ...], Any]] = {}
    for p, p_adj in zip(pending, adjusted, strict=False):
        if p_adj < false_alarm and p.metric.kind == "rate":
            if p.metric.name not in counts:
                counts[p.metric.name] = _bucket_counts(store, p.metric, by, start, now, step, buckets)
            p.buckets = counts[p.metric.name].get(p.key)
    with store.read() as conn:
        for p, p_adj in zip(pending, adjusted, strict=False):
            cfg, c = config_dict(by, p.key), p.check
            alert = bool(p_adj < false_alarm)
            note = (
                c.message.removeprefix("ALERT: ")
                if alert
                else f"no significant {c.direction} after Holm over {len(pvalues)} tests "
                f"(p={c.difference.p_value:.3g}, adjusted {p_adj:.3g})"
            )
            wc, bc = getattr(p.window, "clusters", None), getattr(p.baseline, "clusters", None)
            report.checks.append(
                SeriesCheck(
                    cfg,
                    p.metric.name,
                    "alert" if alert else "ok",
                    c.window_n,
                    c.baseline_n,
                    c.window_value,
                    c.baseline_value,
                    c.difference.p_value,
                    float(p_adj),
                    note,
                    (wc or bc).unit if (wc or bc) else "observation",
                    wc.count if wc else None,
                    bc.count if bc else None,
                )
            )
            if alert:
                ev = _evidence(p, float(p_adj), len(pvalues), false_alarm, start, now, step)
                ev["example_trace_ids"] = rows_db.example_trace_ids(
                    conn, p.metric.source, by, p.key, since=start, until=now, limit=EXAMPLES
                )
                found.append(
                    Alert(
                        id=new_id(),
                        configuration=cfg,
                        metric=p.metric.name,
                        window=format_duration(window),
                        baseline=format_duration(baseline),
                        evidence=jsonable(ev),
                    )
                )
        if drift is not None:
            p_adj = float(adjusted[-1])
            report.input_drift = jsonable({**drift.to_dict(), "p_adjusted": p_adj, "reference": reference_name})
            if p_adj < false_alarm:
                found.append(
                    Alert(
                        id=new_id(),
                        configuration=config_dict("all", ()),
                        metric=f"input_drift:{reference_name}",
                        window=format_duration(window),
                        baseline=format_duration(baseline),
                        evidence={
                            **report.input_drift,
                            "message": drift.message.removeprefix("ALERT: "),
                            "window": {"start": start.isoformat(), "end": now.isoformat()},
                        },
                    )
                )
        previous = rows_db.list_alerts(conn, since=None, limit=1000) if found else []
    for alert in found:
        (report.repeats if _already_logged(alert, previous, now, window) else report.alerts).append(alert)
    if report.alerts:
        with store.write() as conn:
            rows_db.insert_alerts(conn, report.alerts)
    if webhook:
        for alert in report.alerts:
            report.webhooks.append(post_webhook(webhook, webhook_payload(alert), **(webhook_options or {})))
    return report


def _already_logged(alert: Alert, previous: Sequence[Alert], now: datetime, window: timedelta) -> bool:
    for old in previous:
        if old.metric != alert.metric or old.configuration != alert.configuration:
            continue
        end = (old.evidence.get("window") or {}).get("end")
        if end and now - window < datetime.fromisoformat(end) <= now:
            return True
    return False


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """Slack/Teams-style ``text`` plus the full alert, evidence included."""
    label = alert.configuration.get("label", "")
    text = f"workbench alert: {alert.metric} for {label}: {alert.evidence.get('message', '')}"
    return {"text": text, "alert": alert.model_dump(mode="json")}


def _input_drift(
    store: Store,
    reference: Sequence[str],
    since: datetime,
    start: datetime,
    now: datetime,
    alpha: float,
    sample: int = 2000,
) -> Any:
    with store.read() as conn:
        recent = [last_user_text(m or []) for m in rows_db.trace_inputs(conn, since=start, until=now, limit=sample)]
        base = [last_user_text(m or []) for m in rows_db.trace_inputs(conn, since=since, until=start, limit=sample)]
    recent, base = [t for t in recent if t], [t for t in base if t]
    if not recent or not base:
        return None
    return input_drift(recent, base, reference, alpha=alpha)
