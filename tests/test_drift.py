"""Drift detectors: CUSUM design against its own exact Markov chain and Monte Carlo, injected
drops detected within the expected delay, the window test's false-alarm rate, input drift.

Binomial bands hold 99.9% of Binomial(R, P); means are checked within 4 standard errors.
Run with ``-s`` to see the observed rates and delays.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rapidfuzz import fuzz
from scipy import special, stats

from workbench.attribution import (
    BernoulliCusum,
    MeanAggregate,
    RateAggregate,
    design_bernoulli_cusum,
    input_drift,
    nearest_similarity,
    window_vs_baseline,
)
from workbench.errors import StatisticsError, ValidationError


def band(runs: int, p: float, mass: float = 0.999) -> tuple[int, int]:
    tail = (1 - mass) / 2
    return int(stats.binom.ppf(tail, runs, p)), int(stats.binom.isf(tail, runs, p))


def naive_cusum(increments: list[int], threshold: int) -> tuple[int | None, int, int]:
    """Textbook loop: (alarm index, start of the run that alarmed, S) with S = max(0, S + z)."""
    s, start = 0, 0
    for t, z in enumerate(increments):
        s = max(0, s + z)
        if s == 0:
            start = t + 1
        if s >= threshold:
            return t, start, s
    return None, start, s


# ---------------------------------------------------------------- CUSUM design


@pytest.mark.parametrize(
    ("p0", "p1", "arl0"), [(0.7, 0.65, 2000), (0.7, 0.62, 500), (0.05, 0.1, 5000), (0.9, 0.8, 10_000)]
)
def test_design_gives_smallest_threshold_meeting_target(p0: float, p1: float, arl0: int) -> None:
    c = design_bernoulli_cusum(p0, p1, arl0=arl0)
    assert c.arl() >= arl0
    smaller = BernoulliCusum(c.p0, c.p1, c.unit, c.step_success, c.step_failure, c.threshold - 1)
    assert smaller.arl() < arl0
    # Integer steps approximate the log-likelihood ratio: a success moves S by ln(p1/p0).
    assert c.step_success * c.unit == pytest.approx(math.log(p1 / p0), rel=0.03)
    # Lorden: ARL0 >= e^h for the LLR chart, so the calibrated h can't be much above ln(ARL0).
    assert c.h <= math.log(arl0) + 0.1
    assert c.arl(p1) < arl0 / 5  # and it reacts to the shift it was built for


def test_run_matches_textbook_loop() -> None:
    c = design_bernoulli_cusum(0.7, 0.6, arl0=300)
    rng = np.random.default_rng(0)
    for seed in range(30):
        x = np.concatenate([rng.random(200) < 0.7, rng.random(int(rng.integers(1, 400))) < 0.6]).astype(int)
        inc = [c.step_success if v else c.step_failure for v in x]
        alarm, start, s = naive_cusum(inc, c.threshold)
        r = c.run(x)
        assert r.alarm_at == alarm, seed
        assert r.statistic == pytest.approx(s * c.unit)
        if alarm is not None:
            assert r.change_at == start
            assert r.before.n == start and r.after.n == alarm + 1 - start
            assert r.after.successes == int(x[start : alarm + 1].sum())
        # Window counts: the same loop over per-window increments.
        k = x[: len(x) // 20 * 20].reshape(-1, 20).sum(axis=1)
        w_inc = [int(v) * c.step_success + (20 - int(v)) * c.step_failure for v in k]
        w_alarm, _, _ = naive_cusum(w_inc, c.threshold)
        rw = c.run_counts(k, np.full(k.size, 20))
        assert rw.alarm_at == w_alarm
        if w_alarm is not None:  # windows never alarm before the per-observation chart would
            assert alarm is not None and (w_alarm + 1) * 20 - 1 >= alarm


def test_in_control_run_length_matches_markov_chain() -> None:
    c = design_bernoulli_cusum(0.7, 0.62, arl0=500)
    rng = np.random.default_rng(42)
    runs, horizon = 1000, 300
    lengths = []
    for _ in range(runs):
        r = c.run(rng.random(8000) < 0.7)
        assert r.alarmed  # P(no alarm in 8000) ~ e^-16
        lengths.append(r.alarm_at + 1)
    rl = np.array(lengths)
    se = rl.std() / math.sqrt(runs)
    assert abs(rl.mean() - c.arl()) < 4 * se
    p_fa = c.false_alarm_probability(horizon)
    lo, hi = band(runs, p_fa)
    within = int((rl <= horizon).sum())
    print(
        f"\nCUSUM ARL0 simulated {rl.mean():.0f} (se {se:.0f}) vs exact {c.arl():.0f}; "
        f"P(false alarm in {horizon}) {within / runs:.3f} vs exact {p_fa:.3f}"
    )
    assert lo <= within <= hi


def test_design_for_false_alarm_probability_over_horizon() -> None:
    horizon = 1500
    c = design_bernoulli_cusum(0.8, 0.72, false_alarm_prob=0.05, horizon=horizon)
    exact = c.false_alarm_probability(horizon)
    assert exact <= 0.05
    assert (
        BernoulliCusum(c.p0, c.p1, c.unit, c.step_success, c.step_failure, c.threshold - 1).false_alarm_probability(
            horizon
        )
        > 0.05
    )
    rng = np.random.default_rng(8)
    runs = 2000
    alarms = sum(c.run(rng.random(horizon) < 0.8).alarmed for _ in range(runs))
    lo, hi = band(runs, exact)
    print(f"\nCUSUM set to 5% per {horizon}: {alarms / runs:.4f} false alarms (exact {exact:.4f})")
    assert lo <= alarms <= hi


def test_injected_drop_detected_within_expected_delay() -> None:
    p0, p1, tau = 0.70, 0.65, 1000  # thumbs-up rate drops 5 points at observation 1000
    c = design_bernoulli_cusum(p0, p1, arl0=5000)
    expected = c.expected_delay(tau)
    rng = np.random.default_rng(99)
    runs, early, delays, change_err = 600, 0, [], []
    for _ in range(runs):
        x = np.concatenate([rng.random(tau) < p0, rng.random(4000) < p1])
        r = c.run(x)
        assert r.alarmed
        if r.alarm_at < tau:
            early += 1
            continue
        delays.append(r.alarm_at - tau + 1)
        change_err.append(r.change_at - tau)
    d = np.array(delays)
    se = d.std() / math.sqrt(d.size)
    p_early = c.false_alarm_probability(tau)
    lo, hi = band(runs, p_early)
    print(
        f"\nCUSUM 70%->65% (ARL0 5000, h={c.h:.2f}): mean delay {d.mean():.0f} (se {se:.0f}) vs exact "
        f"{expected:.0f}; 90th pct {np.percentile(d, 90):.0f}; false alarms before the change "
        f"{early / runs:.3f} (exact {p_early:.3f}); median change-point error {np.median(change_err):.0f}"
    )
    assert abs(d.mean() - expected) < 4 * se
    assert lo <= early <= hi
    assert abs(np.median(change_err)) < expected / 2  # the estimated start is near the true change


# ---------------------------------------------------------------- window vs baseline


def exact_one_sided_z(n_w: int, n_b: int, p_w: float, p_b: float, alpha: float) -> float:
    """P(one-sided pooled z test says 'window lower'), enumerating all outcomes."""
    kw, kb = np.arange(n_w + 1)[:, None], np.arange(n_b + 1)[None, :]
    pooled = (kw + kb) / (n_w + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_w + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (kw / n_w - kb / n_b) / se, 0.0)
    reject = special.ndtr(z) < alpha
    w = stats.binom.pmf(np.arange(n_w + 1), n_w, p_w)[:, None] * stats.binom.pmf(np.arange(n_b + 1), n_b, p_b)
    return float((w * reject).sum())


@pytest.mark.parametrize(("p_window", "label"), [(0.70, "no drift"), (0.64, "drop")])
def test_window_vs_baseline_rates(p_window: float, label: str) -> None:
    n_w, n_b, alpha, runs = 400, 4000, 0.05, 3000
    truth = exact_one_sided_z(n_w, n_b, p_window, 0.70, alpha)
    rng = np.random.default_rng(31)
    kw, kb = rng.binomial(n_w, p_window, runs), rng.binomial(n_b, 0.70, runs)
    hits = sum(
        window_vs_baseline(RateAggregate(n_w, int(a)), RateAggregate(n_b, int(b)), alpha).significant
        for a, b in zip(kw, kb, strict=True)
    )
    lo, hi = band(runs, truth)
    print(f"\nwindow test, {label}: alarms {hits / runs:.4f} (exact {truth:.4f})")
    assert lo <= hits <= hi


def test_window_vs_baseline_means_and_message() -> None:
    rng = np.random.default_rng(2)
    w, b = rng.normal(3.3, 1.0, 80), rng.normal(4.0, 0.9, 900)
    check = window_vs_baseline(MeanAggregate.from_values(w), MeanAggregate.from_values(b), alpha=0.01)
    assert check.difference.p_value == pytest.approx(
        stats.ttest_ind(w, b, equal_var=False, alternative="less").pvalue, rel=1e-9
    )
    assert check.significant and check.message.startswith("ALERT")
    up = window_vs_baseline(RateAggregate(100, 90), RateAggregate(1000, 700), direction="increase")
    assert up.significant and "rose" in up.message
    assert check.to_dict()["difference"]["test"] == "welch t"


# ---------------------------------------------------------------- input drift

TOPIC_A = ["order", "refund", "shipping", "invoice", "delivery", "parcel", "tracking", "payment", "return", "account"]
TOPIC_B = ["kernel", "compile", "python", "segfault", "pointer", "thread", "deadlock", "linker", "cache", "stack"]
COMMON = ["please", "help", "me", "with", "my", "the", "a", "how", "do", "i", "can", "you", "why"]


def sentences(rng: np.random.Generator, vocab: list[str], count: int) -> list[str]:
    return [" ".join(rng.choice(vocab, 4).tolist() + rng.choice(COMMON, 4).tolist()) for _ in range(count)]


def test_nearest_similarity_is_word_dice() -> None:
    ref = ["Where is my order", "refund please, order late"]
    got = nearest_similarity(["my order is late", "unrelated words here"], ref)

    def dice(a: str, b: str) -> float:
        x, y = set(a.lower().replace(",", "").split()), set(b.lower().replace(",", "").split())
        return 200 * len(x & y) / (len(x) + len(y))

    want = [max(dice(q, r) for r in ref) for q in ["my order is late", "unrelated words here"]]
    assert got == pytest.approx(want, abs=1e-4)
    custom = nearest_similarity(["abc"], ["abd", "xyz"], scorer=fuzz.ratio)
    assert custom[0] == pytest.approx(fuzz.ratio("abc", "abd"), abs=1e-4)


def test_input_drift_detects_new_kind_of_input() -> None:
    rng = np.random.default_rng(4)
    reference = sentences(rng, TOPIC_A, 200)
    baseline = sentences(rng, TOPIC_A, 300)
    same = input_drift(sentences(rng, TOPIC_A, 200), baseline, reference, alpha=0.01)
    assert not same.drifted
    recent = sentences(rng, TOPIC_A, 120) + sentences(rng, TOPIC_B, 80)
    moved = input_drift(recent, baseline, reference, alpha=0.01)
    assert moved.drifted and moved.message.startswith("ALERT")
    assert moved.recent.successes / moved.recent.n > 0.3
    assert all(i >= 120 for i in moved.examples)  # the least similar examples are the new topic
    assert input_drift(recent, baseline, reference, threshold=moved.threshold).drifted


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: design_bernoulli_cusum(0.7, 0.7), ValidationError, "differ"),
        (lambda: design_bernoulli_cusum(1.2, 0.7), ValidationError, "p0"),
        (lambda: design_bernoulli_cusum(0.7, 0.6, arl0=0.5), ValidationError, "arl0"),
        (lambda: design_bernoulli_cusum(0.7, 0.6, false_alarm_prob=0.05), ValidationError, "horizon"),
        (
            lambda: design_bernoulli_cusum(0.7, 0.6, arl0=100, false_alarm_prob=0.05, horizon=10),
            ValidationError,
            "not both",
        ),
        (lambda: design_bernoulli_cusum(0.7, 0.6, arl0=100).run([]), StatisticsError, "empty"),
        (lambda: design_bernoulli_cusum(0.7, 0.6, arl0=100).run([0, 1, 3]), ValidationError, "0/1"),
        (lambda: design_bernoulli_cusum(0.7, 0.6, arl0=100).run_counts([1, 2], [3]), ValidationError, "same length"),
        (lambda: design_bernoulli_cusum(0.7, 0.6, arl0=100).run_counts([4], [3]), ValidationError, "successes"),
        (lambda: window_vs_baseline(RateAggregate(0, 0), RateAggregate(10, 5)), StatisticsError, "recent window"),
        (lambda: window_vs_baseline(RateAggregate(10, 5), RateAggregate(0, 0)), StatisticsError, "baseline period"),
        (
            lambda: window_vs_baseline(RateAggregate(10, 5), MeanAggregate.from_values([1, 2])),
            ValidationError,
            "same kind",
        ),
        (
            lambda: window_vs_baseline(RateAggregate(10, 5), RateAggregate(10, 5), direction="down"),
            ValidationError,
            "direction",
        ),
        (lambda: input_drift([], ["a"], ["a"]), StatisticsError, "no recent inputs"),
        (lambda: input_drift(["a"], [], ["a"]), StatisticsError, "no baseline inputs"),
        (lambda: input_drift(["a"], ["a"], []), ValidationError, "reference set"),
        (lambda: input_drift(["a"], ["a"], ["a"], threshold=150), ValidationError, "threshold"),
    ],
)
def test_bad_input_raises_clear_error(call, error: type[Exception], words: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
