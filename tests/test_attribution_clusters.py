"""Cluster-robust intervals for correlated votes (issue 13 item 8): worked values, a matrix-sandwich oracle,
coverage under intra-cluster correlation (2,000 replications), the SQL cluster sums against a plain count
of the same rows (SQLite and PostgreSQL), and compare / watch through the store and the CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from workbench.attribution.drift import window_vs_baseline
from workbench.attribution.stats import (
    Clusters,
    MeanAggregate,
    RateAggregate,
    cluster_variance,
    design_effect,
    effective_size,
    mean_difference,
    rate_difference,
    rate_interval,
    t_interval,
    wilson_interval,
)
from workbench.attribution.watch import watch
from workbench.errors import StatisticsError, ValidationError
from workbench.store import Store, open_store
from workbench.store import attribution as adb

from .conftest import run_cli
from .test_attribution_store import NOW, Data

# ---------------------------------------------------------------- worked values and oracles


def _three_sessions() -> RateAggregate:
    # sessions {1, 1, 0}, {1}, {0, 0}: N=6, T=3, p=0.5; cluster sums t=(2, 1, 0), sizes n=(3, 1, 2)
    return RateAggregate.from_outcomes([1, 1, 0, 1, 0, 0], clusters=["a", "a", "a", "b", "c", "c"])


def test_cluster_variance_by_hand() -> None:
    agg = _three_sessions()
    assert agg.clusters == Clusters(3, 5.0, 7.0, 14.0, "session")  # 4+1+0, 2*3+1*1+0, 9+1+4
    # residual sums t_c - p n_c = 0.5, 0.5, -1 -> squares 1.5; V = G/(G-1) * 1.5 / N^2 = 1.5 * 1.5 / 36
    assert cluster_variance(agg) == pytest.approx(0.0625)
    # independent votes (CR1 with one vote per cluster): p(1-p)/(N-1) = 0.05 -> design effect 1.25
    assert design_effect(agg) == pytest.approx(1.25)
    assert effective_size(agg) == pytest.approx(4.8)
    # Korn-Graubard: 4.8 * (t_{0.975, 5} / t_{0.975, 2})^2 = 4.8 * (2.570582 / 4.302653)^2
    assert effective_size(agg, 0.95) == pytest.approx(4.8 * (2.5705818366 / 4.3026527297) ** 2, rel=1e-9)
    n_eff = effective_size(agg, 0.95)
    z = stats.norm.ppf(0.975)
    half = z * np.sqrt(0.25 / n_eff + z * z / (4 * n_eff**2)) / (1 + z * z / n_eff)
    ci = rate_interval(agg)
    assert (ci.low, ci.high) == pytest.approx((0.5 - half, 0.5 + half))  # centre stays 0.5 at p = 0.5
    naive = wilson_interval(3, 6)
    assert ci.low < naive.low and ci.high > naive.high


def _sandwich(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """CR0 cluster sandwich (X'X)^-1 (sum_c X_c' e_c e_c' X_c) (X'X)^-1 of OLS, as statsmodels computes it."""
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    e = y - x @ beta
    bread = np.linalg.inv(x.T @ x)
    meat = np.zeros((x.shape[1], x.shape[1]))
    for g in np.unique(groups):
        s = x[groups == g].T @ e[groups == g]
        meat += np.outer(s, s)
    return bread @ meat @ bread


def test_sums_formula_matches_matrix_sandwich_oracle() -> None:
    """The four cluster sums give the same variance as the OLS sandwich on the raw rows (mean and difference)."""
    rng = np.random.default_rng(5)
    labels_a, labels_b = rng.integers(0, 30, size=200), rng.integers(100, 125, size=150)
    ya, yb = rng.normal(3, 1, size=200) + labels_a % 3, rng.normal(3.4, 1, size=150) + labels_b % 4
    a = MeanAggregate.from_values(ya, clusters=labels_a)
    b = MeanAggregate.from_values(yb, clusters=labels_b, shift=3.0)
    g_a, g_b = a.clusters.count, b.clusters.count
    # one mean: statsmodels' CR1 for an intercept-only model is G/(G-1) * CR0 (its (N-1)/(N-K) is 1)
    cr0 = _sandwich(np.ones((200, 1)), ya, labels_a)[0, 0]
    assert cluster_variance(a) == pytest.approx(g_a / (g_a - 1) * cr0, rel=1e-10)
    # difference: the dummy's CR0 variance equals the two arms' CR0 variances added
    y = np.concatenate([ya, yb])
    x = np.column_stack([np.ones(350), np.r_[np.zeros(200), np.ones(150)]])
    cr0_diff = _sandwich(x, y, np.concatenate([labels_a, labels_b]))[1, 1]
    ours = cluster_variance(a) * (g_a - 1) / g_a + cluster_variance(b) * (g_b - 1) / g_b
    assert ours == pytest.approx(cr0_diff, rel=1e-10)


def test_one_vote_per_cluster_is_exactly_the_independent_interval() -> None:
    rng = np.random.default_rng(1)
    xa, xb = rng.random(60) < 0.7, rng.random(45) < 0.55
    ca = RateAggregate.from_outcomes(xa, clusters=np.arange(60))
    cb = RateAggregate.from_outcomes(xb, clusters=np.arange(45), unit="trace")
    ia, ib = RateAggregate.from_outcomes(xa), RateAggregate.from_outcomes(xb)
    assert design_effect(ca) == 1.0 and effective_size(ca, 0.95) == 60.0
    assert rate_interval(ca) == wilson_interval(ia.successes, ia.n)
    assert rate_difference(ca, cb) == rate_difference(ia, ib)
    ya, yb = rng.normal(size=30), rng.normal(0.3, size=25)
    ma = MeanAggregate.from_values(ya, clusters=np.arange(30))
    mb = MeanAggregate.from_values(yb, clusters=np.arange(25))
    assert t_interval(ma) == t_interval(MeanAggregate.from_values(ya))
    assert mean_difference(ma, mb) == mean_difference(MeanAggregate.from_values(ya), MeanAggregate.from_values(yb))
    oracle = stats.ttest_ind(ya, yb, equal_var=False)
    assert mean_difference(ma, mb).p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    assert mean_difference(ma, mb).test == "welch t"


def test_one_cluster_says_nothing_is_known() -> None:
    one = RateAggregate.from_outcomes([1] * 13, clusters=["answer-1"] * 13, unit="trace")
    assert rate_interval(one) == pytest.approx(type(rate_interval(one))(0.0, 1.0))
    other = RateAggregate.from_outcomes([1, 0, 1, 1], clusters=["a", "b", "c", "d"])
    with pytest.raises(StatisticsError, match="at least 2 traces in each group"):
        rate_difference(one, other)
    with pytest.raises(StatisticsError, match="at least 2 sessions, got 1"):
        t_interval(MeanAggregate.from_values([4, 5, 3], clusters=["s"] * 3))


def test_no_variation_takes_the_worst_case() -> None:
    # 40 up-votes in 8 sessions of 5: nothing to estimate the correlation from, so each session counts once
    agg = RateAggregate.from_outcomes([1] * 40, clusters=np.repeat(np.arange(8), 5))
    assert design_effect(agg) == pytest.approx(5.0) and effective_size(agg) == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: RateAggregate(10, 5, Clusters(11, 1.0, 1.0, 11.0)), "clusters do not fit the aggregate"),
        (lambda: RateAggregate(10, 5, Clusters(3, 1.0, 1.0, 5.0)), "clusters do not fit the aggregate"),
        (lambda: Clusters(-1, 0.0, 0.0, 0.0), "integer count >= 0"),
        (lambda: Clusters(2, float("nan"), 0.0, 2.0), "non-finite"),
        (lambda: RateAggregate.from_outcomes([1, 0, 1], clusters=["a", "b"]), "differ in length"),
    ],
)
def test_bad_cluster_input(call: Any, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        call()


# ---------------------------------------------------------------- coverage under correlated votes

REPS = 2000


def _sessions_of_votes(rng: np.random.Generator, sessions: int, p: float, icc: float) -> RateAggregate:
    """Sessions of 1-15 votes; each session's up-rate is Beta-distributed around p with intra-class correlation icc."""
    sizes = rng.integers(1, 16, size=sessions)
    s = (1 - icc) / icc
    ups = rng.binomial(sizes, rng.beta(p * s, (1 - p) * s, size=sessions))
    t, n = ups.astype(float), sizes.astype(float)
    return RateAggregate(int(n.sum()), int(t.sum()), Clusters(sessions, float(t @ t), float(t @ n), float(n @ n)))


def test_rate_coverage_under_correlated_votes() -> None:
    """40 sessions per arm, ICC 0.2, rate 70%: naive Wilson/Newcombe miss, cluster-robust cover ~95%."""
    rng = np.random.default_rng(2026)
    hits: dict[str, int] = defaultdict(int)
    for _ in range(REPS):
        a, b = _sessions_of_votes(rng, 40, 0.7, 0.2), _sessions_of_votes(rng, 40, 0.7, 0.2)
        ia, ib = RateAggregate(a.n, a.successes), RateAggregate(b.n, b.successes)
        for name, ci in (("naive", wilson_interval(a.successes, a.n)), ("robust", rate_interval(a))):
            hits[name] += ci.low <= 0.7 <= ci.high
        for name, diff in (("naive diff", rate_difference(ia, ib)), ("robust diff", rate_difference(a, b))):
            hits[name] += diff.interval.low <= 0.0 <= diff.interval.high
            hits[f"{name} false alarm"] += diff.p_value < 0.05
    share = {k: v / REPS for k, v in hits.items()}
    assert share["naive"] < 0.85 and share["naive diff"] < 0.85, share
    assert 0.93 <= share["robust"] <= 0.97, share
    assert 0.93 <= share["robust diff"] <= 0.97, share
    # the test behind compare's verdict and watch's alert: A/A false alarms at alpha, not 4x it
    assert share["naive diff false alarm"] > 0.15, share
    assert 0.03 <= share["robust diff false alarm"] <= 0.07, share


def test_mean_coverage_under_correlated_ratings() -> None:
    """40 sessions per arm of 1-15 ratings, ICC 0.2: t / Welch cover ~76%, cluster-robust ~95%."""
    rng = np.random.default_rng(2027)
    hits: dict[str, int] = defaultdict(int)

    def arm() -> MeanAggregate:
        sizes = rng.integers(1, 16, size=40)
        labels = np.repeat(np.arange(40), sizes)
        y = 3.0 + rng.normal(0, np.sqrt(0.2), size=40)[labels] + rng.normal(0, np.sqrt(0.8), size=labels.size)
        return MeanAggregate.from_values(y, clusters=labels)

    for _ in range(REPS):
        a, b = arm(), arm()
        ia, ib = MeanAggregate(a.n, a.total, a.total_sq), MeanAggregate(b.n, b.total, b.total_sq)
        for name, ci in (("naive", t_interval(ia)), ("robust", t_interval(a))):
            hits[name] += ci.low <= 3.0 <= ci.high
        for name, diff in (("naive diff", mean_difference(ia, ib)), ("robust diff", mean_difference(a, b))):
            hits[name] += diff.interval.low <= 0.0 <= diff.interval.high
    share = {k: v / REPS for k, v in hits.items()}
    assert share["naive"] < 0.85 and share["naive diff"] < 0.85, share
    assert 0.93 <= share["robust"] <= 0.97, share
    assert 0.93 <= share["robust diff"] <= 0.97, share


# ---------------------------------------------------------------- the store's cluster sums


@pytest.fixture
def store(store_url: str) -> Any:
    s = open_store(store_url)
    yield s
    s.close()


def _session_data(seed: int = 4) -> Data:
    """Sessions of several traces, traces without a session, several voters per trace, changed votes."""
    rng = np.random.default_rng(seed)
    d = Data()
    for s in range(60):
        session = None if s % 7 == 0 else f"s-{s}"
        for _ in range(rng.integers(1, 5)):
            at = NOW - timedelta(hours=float(rng.random() * 48))
            tid = d.trace(
                at,
                variant=["A", "B"][s % 2],
                session=session,
                fingerprint=f"fp_{s % 3}",
                requested=["gpt-4o", "gpt-4o-2024-08-06"][int(rng.integers(2))],
            )  # two aliases, one model
            for user in rng.choice(["u-1", "u-2", "u-3", None], size=rng.integers(0, 4), replace=False):
                user = None if user is None else str(user)
                for _ in range(rng.integers(1, 3)):  # a changed vote: only the latest counts
                    d.feedback_row(tid, "thumbs", float(rng.random() < 0.6), user=user)
                d.feedback_row(tid, "rating", float(rng.integers(1, 6)), user=user)
    return d


def _config(t: dict[str, Any], by: str) -> tuple[Any, ...]:
    return (
        (t["variant"],) if by == "variant" else (t["model_resolved"] or t["model_requested"], t["system_fingerprint"])
    )


def _cluster_oracle(d: Data, signal: str, split_at: Any, by: str) -> dict[tuple[Any, ...], list[float]]:
    """Per (configuration, period): [G, sessions, n, total, sum t_c^2, sum t_c n_c, sum n_c^2] by plain loops."""
    traces = {t["id"]: t for t in d.traces}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for f in d.feedback:
        if f["signal"] == signal:
            k = (f["trace_id"], f["user_id"] or f["source"])
            if k not in latest or f["id"] > latest[k]["id"]:
                latest[k] = f
    per_cluster: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0.0])
    for (tid, _), f in latest.items():
        if f["value"] is None:
            continue
        t = traces[tid]
        y = float(f["value"] > 0) if signal == "thumbs" else float(f["value"])
        cell = per_cluster[
            (
                _config(t, by),
                -1 if t["created_at"] < split_at else 0,
                t["session_id"] or tid,
                t["session_id"] is not None,
            )
        ]
        cell[0] += 1
        cell[1] += y
    out: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0] * 7)
    for (config, period, _, is_session), (n, t) in per_cluster.items():
        row = out[(*config, period)]
        for i, v in enumerate((1, int(is_session), n, t, t * t, t * n, n * n)):
            row[i] += v
    return out


@pytest.mark.parametrize(("signal", "by"), [("thumbs", "variant"), ("rating", "variant"), ("thumbs", "model_version")])
def test_sql_cluster_sums_equal_python_count(store: Store, signal: str, by: str) -> None:
    """model_version: a session that reached one model through two aliases is still one cluster."""
    d = _session_data()
    split_at = NOW - timedelta(hours=20)
    want = _cluster_oracle(d, signal, split_at, by)
    d.save(store)
    query = adb.vote_groups if signal == "thumbs" else adb.mean_groups
    with store.read() as conn:
        rows = query(conn, by, signal=signal, split_at=split_at)
    got = {(*r.key, r.bucket): [r.clusters, r.sessions, r.n, r.total, r.c_sq, r.c_cross, r.c_nsq] for r in rows}
    assert set(got) == set(want)
    for k, v in want.items():
        assert got[k][:3] == v[:3], k  # counts are exact
        assert got[k] == pytest.approx(v, rel=1e-12), k
    assert any(r.sessions < r.clusters for r in rows)  # traces without a session are clusters of their own


def _one_answer_many_votes(d: Data, rng: np.random.Generator) -> None:
    """A week of 3-vote sessions at 75% up, then an hour where one answer got 13 down-votes from 13 users."""
    for s in range(300):
        at = NOW - timedelta(hours=1) - timedelta(seconds=float(rng.random() * 6 * 86400))
        for _ in range(3):
            tid = d.trace(at, variant="A", session=f"week-{s}")
            d.feedback_row(tid, "thumbs", float(rng.random() < 0.75), user=f"u-{s}", at=at)
    for s in range(25):
        at = NOW - timedelta(minutes=float(rng.random() * 50))
        tid = d.trace(at, variant="A", session=f"hour-{s}")
        d.feedback_row(tid, "thumbs", float(rng.random() < 0.75), user=f"v-{s}", at=at)
    bad = d.trace(NOW - timedelta(minutes=30), variant="A", session="shared-answer")
    for u in range(13):
        d.feedback_row(bad, "thumbs", 0.0, user=f"w-{u}", at=NOW - timedelta(minutes=29))


def test_watch_counts_one_answer_once(tmp_path: Path, sqlite_url: str) -> None:
    """13 down-votes on one answer are one cluster: watch does not alert, where counting votes would."""
    store = open_store(sqlite_url)
    d = Data()
    _one_answer_many_votes(d, np.random.default_rng(11))
    d.save(store)
    report = watch(
        store, window=timedelta(hours=1), baseline=timedelta(days=7), by="variant", metrics=["thumbs_up_rate"], now=NOW
    )
    (check,) = report.checks
    assert check.status == "ok" and not report.alerting, check
    assert (check.interval_unit, check.window_clusters, check.baseline_clusters) == ("session", 26, 300)
    # the same counts treated as independent votes: an alert (so this test can fail)
    with store.read() as conn:
        parts = adb.vote_groups(
            conn, "variant", since=NOW - timedelta(days=7, hours=1), until=NOW, split_at=NOW - timedelta(hours=1)
        )
    window = next(r for r in parts if r.bucket == 0)
    base = next(r for r in parts if r.bucket == -1)
    assert window.clusters == 26 and window.n == 38
    naive = window_vs_baseline(
        RateAggregate(window.n, round(window.total)), RateAggregate(base.n, round(base.total)), alpha=0.01
    )
    assert naive.significant, naive.message
    store.close()


def test_compare_json_says_what_the_interval_is_over(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    d = _session_data()
    d.save(store)
    store.close()
    run = run_cli(
        "--store", sqlite_url, "compare", "--by", "variant", "--metric", "thumbs_up_rate", "--json", cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["interval_unit"] == "session"
    for row in report["rows"]:
        assert row["interval_unit"] == "session" and 1 < row["clusters"] < row["n"]
        assert row["design_effect"] >= 1.0
    assert "cluster-robust" in report["method"]
    table = run_cli("--store", sqlite_url, "compare", "--by", "variant", "--metric", "rating", cwd=tmp_path)
    assert table.returncode == 0 and "session" in table.stdout, table.stdout
