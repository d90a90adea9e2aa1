"""Seeded traffic simulations: compare finds a 5-point drop with the planned power, and A/A
comparisons raise false alarms at about alpha (Holm keeps the family-wise rate at alpha).

Every check is a binomial band: if the true per-run probability is P, the count over R runs is
Binomial(R, P); the band holds 99.9% of that distribution. P itself comes from an independent
exact computation where possible (enumerating all outcomes of the z test), not from our code.
Run with ``-s`` to see the observed rates.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

from workbench.attribution import (
    EstimateAggregate,
    MeanAggregate,
    RateAggregate,
    compare,
    n_per_arm_rates,
)

ALPHA = 0.05


def band(runs: int, p: float, mass: float = 0.999) -> tuple[int, int]:
    tail = (1 - mass) / 2
    return int(stats.binom.ppf(tail, runs, p)), int(stats.binom.isf(tail, runs, p))


def exact_z_rejection(n: int, p_base: float, p_other: float, alpha: float, worse_only: bool) -> float:
    """P(pooled two-proportion z test rejects), summed over all (k_base, k_other) outcomes."""
    k = np.arange(n + 1)
    fa, fb = stats.binom.pmf(k, n, p_base), stats.binom.pmf(k, n, p_other)
    ka, kb = k[:, None], k[None, :]
    pooled = (ka + kb) / (2 * n)
    se = np.sqrt(pooled * (1 - pooled) * 2 / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (kb - ka) / n / se, 0.0)
    reject = 2 * special.ndtr(-np.abs(z)) < alpha
    if worse_only:
        reject &= kb < ka
    return float((fa[:, None] * fb[None, :] * reject).sum())


def simulate_counts(rng: np.random.Generator, runs: int, n: int, p: float) -> np.ndarray:
    """Per-run thumbs-up counts from individual simulated feedback events."""
    return (rng.random((runs, n)) < p).sum(axis=1)


def test_five_point_drop_is_found_with_planned_power() -> None:
    p_a, p_b, runs = 0.70, 0.65, 2000
    n = n_per_arm_rates(p_b, p_a, ALPHA, 0.8)
    truth = exact_z_rejection(n, p_a, p_b, ALPHA, worse_only=True)
    assert abs(truth - 0.80) < 0.01  # the sample-size formula delivers the power it promises
    rng = np.random.default_rng(20240801)
    ka, kb = simulate_counts(rng, runs, n, p_a), simulate_counts(rng, runs, n, p_b)
    found = sum(
        compare({"A": RateAggregate(n, int(a)), "B": RateAggregate(n, int(b))}, "A").row("B").verdict == "worse"
        for a, b in zip(ka, kb, strict=True)
    )
    lo, hi = band(runs, truth)
    print(f"\npower: n={n}/arm, detected {found}/{runs} = {found / runs:.3f} (exact {truth:.3f}, band {lo}-{hi})")
    assert lo <= found <= hi


def test_aa_false_alarms_at_alpha() -> None:
    p, n, runs = 0.70, 1377, 3000
    truth = exact_z_rejection(n, p, p, ALPHA, worse_only=False)
    rng = np.random.default_rng(11)
    ka, kb = simulate_counts(rng, runs, n, p), simulate_counts(rng, runs, n, p)
    alarms = sum(
        compare({"A": RateAggregate(n, int(a)), "A'": RateAggregate(n, int(b))}, "A").row("A'").verdict
        in ("better", "worse")
        for a, b in zip(ka, kb, strict=True)
    )
    lo, hi = band(runs, truth)
    print(f"\nA/A rates: {alarms}/{runs} = {alarms / runs:.4f} false alarms (exact {truth:.4f}, band {lo}-{hi})")
    assert lo <= alarms <= hi


def test_holm_controls_family_wise_rate_with_many_configurations() -> None:
    p, n, k, runs = 0.70, 500, 10, 800
    rng = np.random.default_rng(5)
    counts = rng.binomial(n, p, size=(runs, k + 1))
    fam = {"holm": 0, "none": 0}
    for row in counts:
        aggs = {f"c{i}": RateAggregate(n, int(x)) for i, x in enumerate(row)}
        for method in fam:
            rows = compare(aggs, "c0", correction=method).rows[1:]
            fam[method] += any(r.verdict in ("better", "worse") for r in rows)
    _, hi = band(runs, ALPHA)
    print(
        f"\nfamily-wise false alarms, {k} configs: Holm {fam['holm'] / runs:.3f}, "
        f"uncorrected {fam['none'] / runs:.3f} (Holm must be <= {hi / runs:.3f})"
    )
    assert fam["holm"] <= hi
    assert fam["none"] > hi  # without a correction the family-wise rate is far above alpha


def test_bh_keeps_false_discovery_rate() -> None:
    p, n, runs, drops = 0.70, 800, 600, 3
    rng = np.random.default_rng(9)
    rates = np.array([p] * 8 + [p - 0.08] * drops)  # c0 baseline, 7 nulls, 3 real drops
    counts = rng.binomial(n, rates, size=(runs, rates.size))
    fdp = []
    for row in counts:
        c = compare({f"c{i}": RateAggregate(n, int(x)) for i, x in enumerate(row)}, "c0", correction="bh")
        sig = [int(r.configuration[1:]) for r in c.rows[1:] if r.verdict in ("better", "worse")]
        fdp.append(sum(i < 8 for i in sig) / max(1, len(sig)))
    mean, se = float(np.mean(fdp)), float(np.std(fdp) / np.sqrt(runs))
    print(f"\nBH false discovery proportion: {mean:.4f} (se {se:.4f})")
    assert mean <= ALPHA + 3.5 * se


def test_welch_aa_false_alarms_at_alpha() -> None:
    runs = 3000
    rng = np.random.default_rng(17)
    alarms = 0
    for _ in range(runs):
        a, b = rng.normal(4.0, 0.6, 40), rng.normal(4.0, 1.3, 25)  # unequal variances, unequal n
        c = compare({"a": MeanAggregate.from_values(a), "b": MeanAggregate.from_values(b)}, "a", metric_kind="mean")
        alarms += c.row("b").verdict in ("better", "worse")
    lo, hi = band(runs, ALPHA)
    print(f"\nA/A Welch: {alarms / runs:.4f} false alarms (band {lo / runs:.4f}-{hi / runs:.4f})")
    assert lo <= alarms <= hi


def test_ppi_estimates_aa_false_alarms_at_alpha() -> None:
    runs, se_a, se_b = 4000, 0.02, 0.035
    rng = np.random.default_rng(23)
    ea, eb = rng.normal(0.6, se_a, runs), rng.normal(0.6, se_b, runs)
    alarms = sum(
        compare(
            {"a": EstimateAggregate(float(x), se_a, 900), "b": EstimateAggregate(float(y), se_b, 300)},
            "a",
            metric_kind="estimate",
        )
        .row("b")
        .verdict
        in ("better", "worse")
        for x, y in zip(ea, eb, strict=True)
    )
    lo, hi = band(runs, ALPHA)
    print(f"\nA/A PPI estimates: {alarms / runs:.4f} false alarms (band {lo / runs:.4f}-{hi / runs:.4f})")
    assert lo <= alarms <= hi
