"""Intervals, tests, power and compare: worked values, scipy oracles and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from workbench.attribution import (
    EstimateAggregate,
    MeanAggregate,
    RateAggregate,
    adjust_pvalues,
    compare,
    estimate_difference,
    holm,
    mean_difference,
    minimum_detectable_rate_difference,
    n_per_arm_means,
    n_per_arm_rates,
    permutation_test,
    power_rates,
    rate_difference,
    t_interval,
    wilson_interval,
)
from workbench.errors import StatisticsError, ValidationError

# ---------------------------------------------------------------- intervals


def test_wilson_8_of_10_by_hand() -> None:
    # z = 1.959964, z^2 = 3.841459; centre = (0.8 + z^2/20) / (1 + z^2/10) = 0.716752;
    # half = z * sqrt(0.8*0.2/10 + z^2/400) / (1 + z^2/10) = 0.226590.
    ci = wilson_interval(8, 10)
    assert ci.low == pytest.approx(0.490162, abs=1e-6)
    assert ci.high == pytest.approx(0.943318, abs=1e-6)


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 7), (3, 7), (7, 7), (1, 200), (137, 200), (5123, 7000)])
def test_wilson_matches_scipy(k: int, n: int, confidence: float) -> None:
    oracle = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    ci = wilson_interval(k, n, confidence)
    assert (ci.low, ci.high) == pytest.approx((oracle.low, oracle.high), abs=1e-12)


# Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (hybrid score).
@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ((56, 70), (48, 80), 0.0524, 0.3339),
        ((9, 10), (3, 10), 0.1705, 0.8090),
        ((6, 7), (2, 7), 0.0582, 0.8062),
        ((5, 56), (0, 29), -0.0381, 0.1926),
        ((0, 10), (0, 20), -0.1611, 0.2775),
        ((10, 10), (0, 20), 0.6791, 1.0),
    ],
)
def test_newcombe_interval_matches_published_values(
    a: tuple[int, int], b: tuple[int, int], low: float, high: float
) -> None:
    r = rate_difference(RateAggregate(a[1], a[0]), RateAggregate(b[1], b[0]))
    assert r.estimate == pytest.approx(a[0] / a[1] - b[0] / b[1])
    assert (r.interval.low, r.interval.high) == pytest.approx((low, high), abs=6e-5)


def test_t_interval_matches_scipy_and_shift_is_stable() -> None:
    x = np.random.default_rng(1).normal(3.2, 1.1, size=37)
    oracle = stats.ttest_1samp(x, 0).confidence_interval(0.9)
    ci = t_interval(MeanAggregate.from_values(x), 0.9)
    assert (ci.low, ci.high) == pytest.approx((oracle.low, oracle.high), rel=1e-10)
    # Values near 1e8 lose all precision in SUM(x^2) unless shifted; with a shift they match.
    big = x + 1e8
    shifted = t_interval(MeanAggregate.from_values(big, shift=1e8), 0.9)
    assert (shifted.low - 1e8, shifted.high - 1e8) == pytest.approx((oracle.low, oracle.high), rel=1e-6)


# ---------------------------------------------------------------- tests of differences


@pytest.mark.parametrize(("a", "b"), [((420, 600), (380, 600)), ((50, 400), (71, 380)), ((990, 1000), (975, 1000))])
def test_two_proportion_z_matches_chi_square(a: tuple[int, int], b: tuple[int, int]) -> None:
    r = rate_difference(RateAggregate(a[1], a[0]), RateAggregate(b[1], b[0]))
    table = [[a[0], a[1] - a[0]], [b[0], b[1] - b[0]]]
    oracle = stats.chi2_contingency(table, correction=False).pvalue  # chi2 = z^2 for the pooled test
    assert r.test == "two-proportion z"
    assert r.p_value == pytest.approx(oracle, rel=1e-9)
    one_sided = rate_difference(
        RateAggregate(a[1], a[0]), RateAggregate(b[1], b[0]), alternative="greater" if r.estimate > 0 else "less"
    )
    assert one_sided.p_value == pytest.approx(oracle / 2, rel=1e-9)


def test_small_counts_use_fisher_exact_against_hypergeometric() -> None:
    a, b = RateAggregate(12, 2), RateAggregate(8, 6)  # smallest expected cell 8 * 8/20 = 3.2 < 5
    r = rate_difference(a, b, alternative="less")
    assert r.test == "fisher exact"
    # P(X <= 2), X = successes in a's 12 draws from 20 outcomes of which 8 are successes.
    assert r.p_value == pytest.approx(stats.hypergeom(20, 8, 12).cdf(2), rel=1e-12)
    assert rate_difference(RateAggregate(10, 5), RateAggregate(12, 6)).test == "two-proportion z"


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_welch_matches_scipy_ttest_ind(alternative: str) -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(3.9, 0.8, 41), rng.normal(3.6, 1.4, 23)
    oracle = stats.ttest_ind(x, y, equal_var=False, alternative=alternative)
    r = mean_difference(MeanAggregate.from_values(x), MeanAggregate.from_values(y), 0.95, alternative)
    assert r.p_value == pytest.approx(oracle.pvalue, rel=1e-9)
    if alternative == "two-sided":
        ci = oracle.confidence_interval(0.95)
        assert (r.interval.low, r.interval.high) == pytest.approx((ci.low, ci.high), rel=1e-9)


def test_estimate_difference_worked_value() -> None:
    r = estimate_difference(EstimateAggregate(0.62, 0.03, 400), EstimateAggregate(0.70, 0.04, 500))
    # d = -0.08, se = 0.05, z = -1.6, p = 2 * Phi(-1.6) = 0.109599
    assert r.estimate == pytest.approx(-0.08)
    assert r.p_value == pytest.approx(0.1095986, abs=1e-6)
    assert (r.interval.low, r.interval.high) == pytest.approx((-0.08 - 1.959964 * 0.05, -0.08 + 1.959964 * 0.05))


def test_permutation_test_exact_small_case() -> None:
    # 20 ways to split 6 values 3/3; only {1,2,3} and {4,5,6} are as extreme as observed: p = 2/20.
    r = permutation_test([1, 2, 3], [4, 5, 6])
    assert r.estimate == -3
    assert r.p_value == pytest.approx(0.1)
    assert permutation_test([1, 2, 3], [4, 5, 6], alternative="less").p_value == pytest.approx(0.05)


def test_holm_and_bh_worked_values() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_pvalues(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_pvalues(p, "none") == pytest.approx(p)


# ---------------------------------------------------------------- power


def test_sample_size_worked_values() -> None:
    # (1.959964*sqrt(2*.675*.325) + 0.841621*sqrt(.7*.3 + .65*.35))^2 / .05^2 = 1376.3 -> 1377
    assert n_per_arm_rates(0.70, 0.65) == 1377
    assert power_rates(0.65, 0.70, 1377, 1377) == pytest.approx(0.80, abs=0.002)
    # Textbook: d = 0.5 SD, alpha 0.05, power 0.8 -> 64 per group with t quantiles (63 normal).
    assert n_per_arm_means(0.5, 1.0, 1.0) == 64
    mdd = minimum_detectable_rate_difference(0.7, 1377, 1377)
    assert mdd == pytest.approx(0.05, abs=0.001)
    assert power_rates(0.7 - mdd, 0.7, 1377, 1377) == pytest.approx(0.8, abs=1e-5)


# ---------------------------------------------------------------- compare


def test_compare_verdicts_and_power_message() -> None:
    aggs = {
        "A": RateAggregate(1400, 980),
        "B": RateAggregate(1400, 910),
        "C": RateAggregate(50, 36),
        "D": RateAggregate(20000, 14000),
    }
    c = compare(aggs, baseline="A")
    assert [r.verdict for r in c.rows] == ["baseline", "worse", "too little data", "no difference"]
    b = c.row("B")
    assert b.diff == pytest.approx(-0.05)
    raw = [rate_difference(aggs[k], aggs["A"]).p_value for k in "BCD"]
    assert [c.row(k).p_adjusted for k in "BCD"] == pytest.approx(list(holm(raw)))
    small = c.row("C")
    assert small.needed_per_arm == n_per_arm_rates(0.75, 0.70, alpha=0.05 / 3)
    assert small.additional_per_arm == small.needed_per_arm - 50
    assert "too little data to call a winner" in small.message and f"{small.additional_per_arm:,} more" in small.message
    assert c.winner is None and c.summary.startswith("too little data to call a winner")
    json.dumps(c.to_dict())  # plain JSON for --json


def test_compare_lower_is_better_and_winner() -> None:
    aggs = {"v1": RateAggregate(3000, 600), "v2": RateAggregate(3000, 480)}  # abandon rate 20% -> 16%
    c = compare(aggs, baseline="v1", higher_is_better=False)
    assert c.row("v2").verdict == "better" and c.winner == "v2"
    assert compare(aggs, baseline="v1").row("v2").verdict == "worse"


def test_compare_means_and_ppi_estimates() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(4.0, 0.9, 300), rng.normal(3.7, 1.0, 280)
    c = compare(
        {
            "p@1": MeanAggregate.from_values(a),
            "p@2": MeanAggregate.from_values(b),
            "p@3": MeanAggregate.from_values([4.0]),
        },
        baseline="p@1",
        metric_kind="mean",
    )
    r = c.row("p@2")
    assert r.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)
    assert r.verdict == "worse"
    assert c.row("p@3").verdict == "too little data" and c.row("p@3").ci is None
    e = compare(
        {"j1": EstimateAggregate(0.71, 0.012, 2000), "j2": EstimateAggregate(0.70, 0.011, 2100)},
        baseline="j1",
        metric_kind="estimate",
        min_effect=0.05,
    )
    assert e.row("j2").verdict == "no difference"
    assert e.row("j2").ci.low == pytest.approx(0.70 - 1.959964 * 0.011, abs=1e-6)


def test_single_configuration_has_nothing_to_compare() -> None:
    c = compare({"only": RateAggregate(10, 5)}, baseline="only")
    assert c.winner is None and "nothing to compare" in c.summary


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: compare({"a": RateAggregate(5, 1)}, "a", metric_kind="median"), ValidationError, "metric kind"),
        (lambda: compare({}, "a"), StatisticsError, "no configurations"),
        (lambda: compare({"a": RateAggregate(5, 1)}, "b"), ValidationError, "baseline 'b'"),
        (lambda: compare({"a": RateAggregate(5, 1), "b": RateAggregate(0, 0)}, "a"), StatisticsError, "'b' has no"),
        (lambda: compare({"a": RateAggregate(5, 1)}, "a", metric_kind="mean"), ValidationError, "MeanAggregate"),
        (lambda: compare({"a": RateAggregate(5, 1)}, "a", correction="bonf"), ValidationError, "correction"),
        (lambda: compare({"a": RateAggregate(5, 1)}, "a", alpha=1.5), ValidationError, "alpha"),
        (lambda: compare({"a": RateAggregate(5, 1)}, "a", min_effect=-1), ValidationError, "min_effect"),
        (lambda: wilson_interval(0, 0), StatisticsError, "n=0"),
        (lambda: wilson_interval(3, 10, confidence=95), ValidationError, "confidence"),
        (lambda: RateAggregate(10, 11), ValidationError, "successes <= n"),
        (lambda: RateAggregate(-1, 0), ValidationError, "successes <= n"),
        (lambda: RateAggregate.from_outcomes([0, 1, 2]), ValidationError, "0/1"),
        (lambda: MeanAggregate(3, 30.0, 10.0), ValidationError, "sum of squares"),
        (lambda: MeanAggregate(2, math.nan, 1.0), ValidationError, "non-finite"),
        (lambda: EstimateAggregate(0.5, -0.1, 10), ValidationError, "se >= 0"),
        (lambda: t_interval(MeanAggregate.from_values([1.0])), StatisticsError, "at least 2"),
        (
            lambda: mean_difference(MeanAggregate.from_values([2, 2]), MeanAggregate.from_values([3, 3])),
            StatisticsError,
            "no variation",
        ),
        (lambda: rate_difference(RateAggregate(0, 0), RateAggregate(5, 1)), StatisticsError, "n=0"),
        (
            lambda: rate_difference(RateAggregate(5, 1), RateAggregate(5, 1), alternative="up"),
            ValidationError,
            "alternative",
        ),
        (lambda: permutation_test([], [1.0]), StatisticsError, "both groups"),
        (lambda: adjust_pvalues([0.2, 1.3]), ValidationError, "[0, 1]"),
        (lambda: n_per_arm_rates(0.5, 0.5), StatisticsError, "zero difference"),
    ],
)
def test_bad_input_raises_clear_error(call, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=None) as info:
        call()
    assert words in str(info.value)
    assert "\n" not in str(info.value)
