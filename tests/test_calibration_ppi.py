"""PPI / PPI++ mean estimation: worked values, coverage simulation, real-data splits, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from workbench.errors import StatisticsError
from workbench.judge.calibration import classical_mean, estimate_mean, ppi_mean

DATA = Path(__file__).parent / "data"
Z95 = 1.959963984540054


def test_worked_ppi_by_hand():
    # Y = 3,4,5 ; f_l = 2.5,4,4.5 ; f_u = 3,4,5,4 (n=3, N=4).
    # PPI: mean(f_u) + mean(Y - f_l) = 4 + 1/3; var(f_u)/N = (2/3)/4 = 1/6; var(Y-f_l)/n = (1/12)/3 = 1/36.
    # classical: mean 4, se = 1/sqrt(3).
    # PPI++: cov(Y, f_l) = 1; pooled var(f) = (108.5 - 27^2/7)/6 = 61/84; lambda = 1/((1 + 3/4) * 61/84) = 48/61.
    result = ppi_mean([3, 4, 5], [2.5, 4, 4.5], [3, 4, 5, 4])
    assert result.ppi.estimate == pytest.approx(13 / 3)
    assert result.ppi.se == pytest.approx(np.sqrt(1 / 6 + 1 / 36))
    assert result.ppi.ci_low == pytest.approx(13 / 3 - Z95 * np.sqrt(7 / 36))
    assert result.classical.estimate == pytest.approx(4.0)
    assert result.classical.se == pytest.approx(1 / np.sqrt(3))
    assert result.lam == pytest.approx(48 / 61)
    lam = 48 / 61
    residual = np.array([3, 4, 5]) - lam * np.array([2.5, 4, 4.5])
    assert result.ppi_plus.estimate == pytest.approx(lam * 4 + residual.mean())
    assert result.ppi_plus.se == pytest.approx(np.sqrt(lam**2 * (2 / 3) / 4 + residual.var(ddof=1) / 3))
    assert result.effective_n == pytest.approx(3 * (1 / 3) / result.ppi_plus.se**2)
    assert result.gain == pytest.approx(result.effective_n / 3)


def test_lambda_zero_is_classical_and_one_is_ppi():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    f = y + rng.normal(size=50)
    u = rng.normal(size=500)
    zero = ppi_mean(y, f, u, lam=0.0)
    assert zero.ppi_plus.estimate == pytest.approx(zero.classical.estimate)
    assert zero.ppi_plus.se == pytest.approx(zero.classical.se)
    one = ppi_mean(y, f, u, lam=1.0)
    assert one.ppi_plus == one.ppi


def test_useless_judge_gets_lambda_near_zero_and_constant_judge_exactly_zero():
    rng = np.random.default_rng(1)
    y = rng.normal(size=400)
    noise = ppi_mean(y, rng.normal(size=400), rng.normal(size=4000))
    assert noise.lam < 0.2
    assert noise.ppi_plus.se < noise.ppi.se  # plain PPI pays for the noise, PPI++ does not
    constant = ppi_mean(y, np.ones(400), np.ones(100))
    assert constant.lam == 0.0 and constant.ppi_plus.estimate == pytest.approx(y.mean())


def _population(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """1-5 human ratings and an informative judge on another scale (0-1, non-linear, noisy)."""
    latent = rng.normal(size=size)
    human = np.clip(np.round(3 + 1.1 * latent + rng.normal(scale=0.5, size=size)), 1, 5)
    judge = 1 / (1 + np.exp(-(latent + rng.normal(scale=0.6, size=size))))
    return judge, human


COVERAGE_REPS = 2000
# 2,000 replications: a 95% interval covers 0.95 +- 0.0049 (one standard error), so [0.93, 0.97] is +-4 SE
# around it, while a 90% interval (0.90 +- 0.0067) is 4.5 SE below the band: mislabelled levels fail.
COVERAGE_BAND = (0.93, 0.97)


def _interval_coverage(confidence: float, reps: int = COVERAGE_REPS, seed: int = 2024) -> dict[str, list[float]]:
    """Share of ``reps`` labelled/unlabelled draws whose interval covers the population mean, per estimator.

    Returns, per estimator, [coverage of the reported interval, coverage of estimate +- z_0.95 * se (what a
    95% interval must be), coverage of estimate +- z_0.90 * se (a 90% interval)]. The judge is put on the
    human scale by a fixed map (PPI is valid for any fixed map), so each draw costs one ppi_mean call.
    """
    rng = np.random.default_rng(seed)
    judge, human = _population(rng, 100_000)
    mapped = 1 + 4 * judge
    truth = human.mean()
    z95, z90 = stats.norm.ppf(0.975), stats.norm.ppf(0.95)
    hits = {name: [0, 0, 0] for name in ("classical", "ppi", "ppi++")}
    for _ in range(reps):
        pick = rng.integers(0, human.size, 100 + 2000)  # with replacement: the truth is exactly the mean
        lab, unl = pick[:100], pick[100:]
        result = ppi_mean(human[lab], mapped[lab], mapped[unl], confidence=confidence)
        for name, est in (("classical", result.classical), ("ppi", result.ppi), ("ppi++", result.ppi_plus)):
            hits[name][0] += est.ci_low <= truth <= est.ci_high
            hits[name][1] += abs(est.estimate - truth) <= z95 * est.se
            hits[name][2] += abs(est.estimate - truth) <= z90 * est.se
    return {name: [h / reps for h in counts] for name, counts in hits.items()}


def test_interval_coverage_is_95_percent_and_a_90_percent_interval_fails():
    """2,000 draws: every 95% interval covers within [0.93, 0.97]; the same check rejects 90% intervals."""
    low, high = COVERAGE_BAND
    coverage = _interval_coverage(0.95)
    for name, (reported, at_95, at_90) in coverage.items():
        assert low <= reported <= high, (name, coverage)
        assert reported == at_95, (name, coverage)  # the reported interval is estimate +- z_0.975 * se
        assert at_90 < low, (name, coverage)  # a 90% interval labelled 95% would fail the band above


def test_coverage_simulation():
    """300 random labelled/unlabelled splits through the cross-fitted mapping: coverage near 95%, narrower.

    The level itself is pinned by the 2,000-draw test above; this one runs the whole pipeline
    (isotonic mapping cross-fitted on the labelled items), which costs ~16 ms a draw.
    """
    rng = np.random.default_rng(2024)
    judge, human = _population(rng, 20_000)
    truth = human.mean()
    reps, n, big_n = 300, 100, 2000
    covered = {"classical": 0, "ppi": 0, "ppi++": 0}
    width = {"classical": 0.0, "ppi": 0.0, "ppi++": 0.0}
    for rep in range(reps):
        pick = rng.choice(human.size, n + big_n, replace=False)
        labelled, unlabelled = pick[:n], pick[n:]
        _, result = estimate_mean(judge[labelled], human[labelled], judge[unlabelled], seed=rep)
        for name, est in (("classical", result.classical), ("ppi", result.ppi), ("ppi++", result.ppi_plus)):
            covered[name] += est.ci_low <= truth <= est.ci_high
            width[name] += (est.ci_high - est.ci_low) / reps
    coverage = {name: count / reps for name, count in covered.items()}
    # 300 draws: +-2.4 SE around 0.95; a 90% interval would land here with probability ~0.12 only
    for name in coverage:
        assert 0.92 <= coverage[name] <= 0.98, coverage
    assert width["ppi"] < 0.85 * width["classical"], width
    assert width["ppi++"] < 0.85 * width["classical"], width


def test_coverage_on_unieval_splits():
    """Real data: 60 rated / 300 unrated out of 360, target = mean human overall rating of all 360."""
    rows = [json.loads(line) for line in (DATA / "unieval_topical_chat.jsonl").read_text().splitlines()]
    judge = np.array([r["predict_scores"]["overall"] for r in rows])
    human = np.array([r["scores"]["overall"] for r in rows])
    truth = human.mean()
    rng = np.random.default_rng(7)
    reps = 200
    hits, ppi_width, classical_width, gains = 0, 0.0, 0.0, []
    for rep in range(reps):
        order = rng.permutation(human.size)
        labelled, unlabelled = order[:60], order[60:]
        _, result = estimate_mean(judge[labelled], human[labelled], judge[unlabelled], seed=rep)
        hits += result.ppi_plus.ci_low <= truth <= result.ppi_plus.ci_high
        ppi_width += result.ppi_plus.ci_high - result.ppi_plus.ci_low
        classical_width += result.classical.ci_high - result.classical.ci_low
        gains.append(result.gain)
    assert hits / reps >= 0.90
    assert ppi_width < classical_width
    assert np.median(gains) > 1.2


def test_estimate_mean_without_unlabeled_is_classical_only():
    classical, ppi = estimate_mean([1, 2, 3, 4], [1, 2, 2, 5])
    assert ppi is None
    assert classical == classical_mean([1, 2, 2, 5])


def test_estimate_mean_unmapped_uses_raw_scores():
    _, mapped = estimate_mean([1, 2, 3, 4, 5], [1, 2, 2, 4, 5], [2, 3, 4], map_scores=True)
    _, raw = estimate_mean([1, 2, 3, 4, 5], [1, 2, 2, 4, 5], [2, 3, 4], map_scores=False)
    assert raw.ppi.estimate == pytest.approx(3.0 + (14 / 5 - 3))
    assert mapped.ppi.estimate != raw.ppi.estimate


def test_to_dict_shape():
    result = ppi_mean([3, 4, 5], [2.5, 4, 4.5], [3, 4, 5, 4])
    d = result.to_dict()
    assert set(d["ppi"]) == {"estimate", "ci_low", "ci_high", "se", "method", "lambda"}
    assert d["ppi"]["method"] == "ppi++" and d["ppi_plain"]["lambda"] == 1.0
    assert set(d["classical"]) == {"estimate", "ci_low", "ci_high", "se"}
    assert d["effective_sample_size"]["labeled"] == 3
    json.dumps(d)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 2], [1, 2], [1, 2, 3]), "need at least 3 labelled pairs, got 2"),
        (([1, 2, 3], [1, 2], [1, 2, 3]), r"differ in length \(3 vs 2\)"),
        (([1, 2, 3], [1, 2, 3], [1]), "need at least 2 unlabelled judge scores, got 1"),
        (([1, 2, "a"], [1, 2, 3], [1, 2]), "human scores: item 2 is 'a', not a number"),
        (([1, 2, 3], [1, 2, 3], [1, float("inf")]), "judge scores \\(unlabelled\\): item 1 is inf"),
    ],
)
def test_bad_ppi_input(args, message):
    with pytest.raises(StatisticsError, match=message):
        ppi_mean(*args)


def test_bad_confidence_and_too_few_ratings():
    with pytest.raises(StatisticsError, match="confidence must be between 0 and 1"):
        ppi_mean([1, 2, 3], [1, 2, 3], [1, 2], confidence=1.0)
    with pytest.raises(StatisticsError, match="need at least 3 human ratings"):
        classical_mean([1, 2])
