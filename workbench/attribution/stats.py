"""Intervals and two-sample tests computed from per-configuration aggregates.

Everything takes what one SQL ``GROUP BY`` can return (counts; ``COUNT``, ``SUM``, ``SUM`` of
squares; or an estimate with its standard error from PPI), so compare and watch never have to
pull raw rows into Python. Conventions: a difference is always ``a - b`` (configuration minus
baseline), intervals are two-sided at ``confidence``.

Correlated observations. Votes on one answer, or in one session, are not independent (one user's
mood, one good answer voted on by 13 people), so intervals that count every vote as a fresh
draw are too narrow. An aggregate may carry :class:`Clusters`: four more sums per configuration
over its clusters c (a session, or a trace that has no session), with ``t_c`` the cluster's sum
and ``n_c`` its count: G, sum t_c^2, sum t_c n_c, sum n_c^2 (a two-level GROUP BY in SQL). From
them the cluster-robust (CR1 sandwich) variance of a mean or rate m = T/N is

    V = G/(G-1) * sum_c (t_c - m n_c)^2 / N^2
      = G/(G-1) * (sum t_c^2 - 2 m sum t_c n_c + m^2 sum n_c^2) / N^2,

with t(G-1) quantiles (Cameron & Miller 2015, "A practitioner's guide to cluster-robust
inference"). Rates keep their score intervals: the Wilson interval and Newcombe's difference use
an *effective* sample size n* = N / deff (deff = V / (p(1-p)/(N-1)), never below 1) scaled by
(t_{N-1} / t_{G-1})^2 for the few-cluster case (Korn & Graubard 1998), and the z / Fisher
p-values run on effective counts (Rao & Scott's design-effect correction). With one observation
per cluster every formula here reduces exactly to its independent-observation version.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import special, stats

from workbench.errors import StatisticsError, ValidationError

__all__ = [
    "Alternative",
    "Clusters",
    "DiffResult",
    "EstimateAggregate",
    "Interval",
    "MeanAggregate",
    "RateAggregate",
    "adjust_pvalues",
    "cluster_variance",
    "design_effect",
    "effective_size",
    "estimate_difference",
    "holm",
    "mean_difference",
    "normal_interval",
    "permutation_test",
    "rate_difference",
    "rate_interval",
    "t_interval",
    "wilson_interval",
]

Alternative = Literal["two-sided", "less", "greater"]
_ALTERNATIVES = ("two-sided", "less", "greater")
# Below this expected cell count the normal approximation of the two-proportion z test is poor,
# so rate_difference switches to Fisher's exact test (the usual "expected count >= 5" rule).
MIN_EXPECTED_FOR_Z = 5.0


def _z(confidence: float) -> float:
    """Two-sided normal quantile; ``special.ndtri`` is a ufunc, ~50x faster than ``stats.norm.ppf``."""
    if not 0.0 < confidence < 1.0:
        raise ValidationError(f"confidence must be in (0, 1), got {confidence!r}")
    return float(special.ndtri(0.5 + confidence / 2.0))


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValidationError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")


def _p_from_z(z: float, alternative: str) -> float:
    if alternative == "less":
        return float(special.ndtr(z))
    if alternative == "greater":
        return float(special.ndtr(-z))
    return float(min(1.0, 2.0 * special.ndtr(-abs(z))))


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Clusters:
    """How an aggregate's observations fall into clusters of correlated observations.

    ``count`` = G clusters; with t_c the sum of a cluster's values (successes for rates, values
    minus the aggregate's ``shift`` for means) and n_c its observations: ``sum_sq`` = sum t_c^2,
    ``sum_cross`` = sum t_c n_c, ``n_sq`` = sum n_c^2. ``unit`` says what a cluster is
    ("session", "trace", ...). All are sums over clusters, so clusters of disjoint parts add up.
    """

    count: int
    sum_sq: float
    sum_cross: float
    n_sq: float
    unit: str = "session"

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int | np.integer) or self.count < 0:
            raise ValidationError(f"clusters need an integer count >= 0, got {self.count!r}")
        if not all(math.isfinite(float(v)) for v in (self.sum_sq, self.sum_cross, self.n_sq)):
            raise ValidationError("clusters have a non-finite sum")
        if self.sum_sq < 0 or self.n_sq < self.count:
            raise ValidationError(
                f"clusters: sums of squares cannot be below 0 / the cluster count, got "
                f"sum_sq={self.sum_sq}, n_sq={self.n_sq}, count={self.count}"
            )

    @classmethod
    def from_values(
        cls,
        values: Sequence[float] | np.ndarray,
        labels: Sequence[Any] | np.ndarray,
        shift: float = 0.0,
        unit: str = "session",
    ) -> Clusters:
        """Cluster sums of raw values (``labels[i]`` is the cluster of ``values[i]``); for tests and small data."""
        x = np.asarray(values, dtype=float) - shift
        lab = np.asarray(labels)
        if lab.shape != x.shape:
            raise ValidationError(f"values and cluster labels differ in length ({x.size} vs {lab.size})")
        _, inverse = np.unique(lab, return_inverse=True)
        t = np.bincount(inverse, weights=x) if x.size else np.zeros(0)
        n = np.bincount(inverse).astype(float) if x.size else np.zeros(0)
        return cls(int(t.size), float(t @ t), float(t @ n), float(n @ n), unit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": int(self.count),
            "sum_sq": float(self.sum_sq),
            "sum_cross": float(self.sum_cross),
            "n_sq": float(self.n_sq),
            "unit": self.unit,
        }


def _check_clusters(clusters: Clusters | None, n: int) -> None:
    if clusters is not None and not (min(n, 1) <= clusters.count <= n and clusters.n_sq >= n):
        raise ValidationError(
            f"clusters do not fit the aggregate: {clusters.count} clusters, "
            f"sum n_c^2={clusters.n_sq}, for n={n} observations"
        )


@dataclass(frozen=True)
class RateAggregate:
    """``n`` observations of a yes/no outcome, ``successes`` of them yes (SQL: COUNT, SUM).

    ``clusters``: how they group into correlated clusters (None: every observation independent).
    """

    n: int
    successes: int
    clusters: Clusters | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.n, bool)
            or isinstance(self.successes, bool)
            or not (isinstance(self.n, int | np.integer) and isinstance(self.successes, int | np.integer))
        ):
            raise ValidationError(f"rate aggregate needs integer n and successes, got {self.n!r}, {self.successes!r}")
        if self.n < 0 or not 0 <= self.successes <= self.n:
            raise ValidationError(
                f"rate aggregate needs 0 <= successes <= n, got successes={self.successes}, n={self.n}"
            )
        _check_clusters(self.clusters, self.n)

    @classmethod
    def from_outcomes(
        cls,
        outcomes: Sequence[bool | int] | np.ndarray,
        clusters: Sequence[Any] | np.ndarray | None = None,
        unit: str = "session",
    ) -> RateAggregate:
        """From 0/1 outcomes; ``clusters`` (one label per outcome) marks which are correlated."""
        x = np.asarray(outcomes)
        if x.size and not np.isin(x, (0, 1)).all():
            raise ValidationError("rate outcomes must be 0/1 or booleans")
        groups = Clusters.from_values(x, clusters, unit=unit) if clusters is not None else None
        return cls(n=int(x.size), successes=int(x.sum()), clusters=groups)

    @property
    def value(self) -> float:
        if self.n == 0:
            raise StatisticsError("rate of an empty group (n=0) is undefined")
        return self.successes / self.n

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"n": int(self.n), "successes": int(self.successes)}
        if self.clusters is not None:
            d["clusters"] = self.clusters.to_dict()
        return d


@dataclass(frozen=True)
class MeanAggregate:
    """``n`` values summarised as ``total`` = SUM(x - shift) and ``total_sq`` = SUM((x - shift)^2).

    ``shift`` (any constant near the mean, e.g. the middle of a rating scale) keeps the
    sum-of-squares variance formula free of cancellation for large n; 0 is fine for ratings.
    """

    n: int
    total: float
    total_sq: float
    shift: float = 0.0
    clusters: Clusters | None = None

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValidationError(f"mean aggregate needs an integer n >= 0, got {self.n!r}")
        if not all(math.isfinite(float(v)) for v in (self.total, self.total_sq, self.shift)):
            raise ValidationError("mean aggregate has a non-finite sum or sum of squares")
        if self.n and self.total_sq < self.total**2 / self.n * (1 - 1e-9) - 1e-9:
            raise ValidationError(
                f"mean aggregate: sum of squares {self.total_sq} < sum^2/n "
                f"{self.total**2 / self.n}; they cannot come from the same values"
            )
        _check_clusters(self.clusters, self.n)

    @classmethod
    def from_values(
        cls,
        values: Sequence[float] | np.ndarray,
        shift: float = 0.0,
        clusters: Sequence[Any] | np.ndarray | None = None,
        unit: str = "session",
    ) -> MeanAggregate:
        """From raw values; ``clusters`` (one label per value) marks which are correlated."""
        x = np.asarray(values, dtype=float) - shift
        groups = Clusters.from_values(x, clusters, unit=unit) if clusters is not None else None
        return cls(n=int(x.size), total=float(x.sum()), total_sq=float((x * x).sum()), shift=shift, clusters=groups)

    @property
    def value(self) -> float:
        if self.n == 0:
            raise StatisticsError("mean of an empty group (n=0) is undefined")
        return self.shift + self.total / self.n

    @property
    def variance(self) -> float:
        """Sample variance (ddof=1); needs n >= 2."""
        if self.n < 2:
            raise StatisticsError(f"variance needs at least 2 values, got n={self.n}")
        return max(0.0, (self.total_sq - self.total**2 / self.n) / (self.n - 1))

    @property
    def sd(self) -> float:
        return math.sqrt(self.variance)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "n": int(self.n),
            "total": float(self.total),
            "total_sq": float(self.total_sq),
            "shift": float(self.shift),
        }
        if self.clusters is not None:
            d["clusters"] = self.clusters.to_dict()
        return d


@dataclass(frozen=True)
class EstimateAggregate:
    """An already-estimated mean (e.g. prediction-powered inference) with its standard error.

    ``n`` is the number of observations the estimate rests on; power estimates assume the
    standard error shrinks as 1/sqrt(n) with the labelled share held fixed.
    """

    estimate: float
    se: float
    n: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.estimate) and math.isfinite(self.se)) or self.se < 0:
            raise ValidationError(f"estimate needs a finite value and se >= 0, got {self.estimate!r}, se={self.se!r}")
        if isinstance(self.n, bool) or not isinstance(self.n, int | np.integer) or self.n < 0:
            raise ValidationError(f"estimate needs an integer n >= 0, got {self.n!r}")

    @property
    def value(self) -> float:
        if self.n == 0:
            raise StatisticsError("estimate from an empty group (n=0) is undefined")
        return float(self.estimate)

    def to_dict(self) -> dict[str, Any]:
        return {"estimate": float(self.estimate), "se": float(self.se), "n": int(self.n)}


@dataclass(frozen=True)
class DiffResult:
    """A difference ``a - b`` with its interval and a p-value; ``test`` names the test used."""

    estimate: float
    interval: Interval | None
    p_value: float
    test: str
    alternative: str = "two-sided"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval"] = self.interval.to_dict() if self.interval else None
        return d


def _wilson(p: float, n: float, confidence: float) -> Interval:
    """Wilson score interval for a proportion ``p`` observed on ``n`` (possibly effective, non-integer) draws."""
    z = _z(confidence)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The exact bounds at k=0 and k=n are 0 and 1; clip the float noise.
    low = 0.0 if p == 0 else max(0.0, centre - half)
    high = 1.0 if p == 1 else min(1.0, centre + half)
    return Interval(low, high, confidence)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval: keeps good coverage near 0 and 1, where Wald collapses."""
    agg = RateAggregate(n=n, successes=successes)
    if agg.n == 0:
        raise StatisticsError("Wilson interval needs at least one observation, got n=0")
    return _wilson(agg.successes / agg.n, agg.n, confidence)


def _is_clustered(agg: RateAggregate | MeanAggregate) -> bool:
    """Some cluster holds more than one observation (with one each, nothing is correlated)."""
    return agg.clusters is not None and agg.clusters.count < agg.n


def _cluster_total(agg: RateAggregate | MeanAggregate) -> float:
    return float(agg.successes) if isinstance(agg, RateAggregate) else float(agg.total)


def cluster_variance(agg: RateAggregate | MeanAggregate) -> float:
    """CR1 sandwich variance of the aggregate's rate or mean (see the module docstring); needs G >= 2."""
    c = agg.clusters
    if c is None:
        raise StatisticsError("cluster-robust variance needs cluster sums; this aggregate has none")
    if c.count < 2:
        raise StatisticsError(f"a cluster-robust interval needs at least 2 {c.unit}s, got {c.count}")
    m = _cluster_total(agg) / agg.n
    ss = c.sum_sq - 2.0 * m * c.sum_cross + m * m * c.n_sq
    return c.count / (c.count - 1) * max(0.0, ss) / agg.n**2


def design_effect(agg: RateAggregate | MeanAggregate) -> float:
    """Cluster-robust variance over the variance if every observation were independent; >= 1.

    1 without clusters or with one observation per cluster. Floored at 1 because a design
    effect estimated below 1 (votes within a session disagreeing more than across sessions)
    is mostly noise from few clusters: the intervals are never narrower than the naive ones.
    A rate of exactly 0 or 1 shows no variation to estimate it from, so the worst case is
    taken: every cluster counts once (deff = n / G).
    """
    if not _is_clustered(agg):
        return 1.0
    c = agg.clusters
    assert c is not None
    if c.count < 2:
        return float(agg.n)
    if isinstance(agg, RateAggregate):
        p = agg.value
        naive = p * (1 - p) / (agg.n - 1)  # CR1 with one observation per cluster is exactly this
    else:
        naive = agg.variance / agg.n
    if naive <= 0:
        return agg.n / c.count
    return max(1.0, cluster_variance(agg) / naive)


def _t(confidence: float, df: float) -> float:
    return float(stats.t.ppf(0.5 + confidence / 2, df))


def effective_size(agg: RateAggregate | MeanAggregate, confidence: float | None = None) -> float:
    """n / deff: how many independent observations the clustered ones are worth.

    With ``confidence`` (for rate intervals), also scaled by (t_{n-1} / t_{G-1})^2 so that a
    z-based score interval on the effective size is as wide as a t interval with G-1 degrees
    of freedom (Korn & Graubard 1998); 0 when there is a single cluster (nothing is known).
    """
    if not _is_clustered(agg):
        return float(agg.n)
    c = agg.clusters
    assert c is not None
    if c.count < 2:
        return 0.0
    n_eff = agg.n / design_effect(agg)
    if confidence is not None:
        _z(confidence)
        n_eff *= (_t(confidence, agg.n - 1) / _t(confidence, c.count - 1)) ** 2
    return n_eff


def rate_interval(agg: RateAggregate, confidence: float = 0.95) -> Interval:
    """Wilson interval of a rate; on the cluster-robust effective size when the votes are clustered."""
    if agg.n == 0:
        raise StatisticsError("Wilson interval needs at least one observation, got n=0")
    if not _is_clustered(agg):
        return wilson_interval(agg.successes, agg.n, confidence)
    n_eff = effective_size(agg, confidence)
    if n_eff <= 0:
        return Interval(0.0, 1.0, confidence)
    return _wilson(agg.value, n_eff, confidence)


def _mean_var_df(agg: MeanAggregate) -> tuple[float, float]:
    """Variance of the mean and its degrees of freedom: s^2/n with n-1, or cluster-robust with G-1."""
    if not _is_clustered(agg):
        if agg.n < 2:
            raise StatisticsError(f"a t interval needs at least 2 values, got n={agg.n}")
        return agg.variance / agg.n, agg.n - 1
    c = agg.clusters
    assert c is not None
    if c.count < 2:
        raise StatisticsError(f"a cluster-robust interval needs at least 2 {c.unit}s, got {c.count}")
    return max(cluster_variance(agg), agg.variance / agg.n), c.count - 1


def t_interval(agg: MeanAggregate, confidence: float = 0.95) -> Interval:
    """Student-t interval for a mean from n, sum and sum of squares (cluster-robust with G-1 df if clustered)."""
    _z(confidence)
    var, df = _mean_var_df(agg)
    half = _t(confidence, df) * math.sqrt(var)
    return Interval(agg.value - half, agg.value + half, confidence)


def normal_interval(estimate: float, se: float, confidence: float = 0.95) -> Interval:
    """Normal interval, for estimators (like PPI) that come with an asymptotic standard error."""
    half = _z(confidence) * se
    return Interval(estimate - half, estimate + half, confidence)


def _satterthwaite(va: float, dfa: float, vb: float, dfb: float) -> float:
    """Welch-Satterthwaite degrees of freedom of va + vb (an infinite df contributes no term)."""
    denom = (va * va / dfa if math.isfinite(dfa) else 0.0) + (vb * vb / dfb if math.isfinite(dfb) else 0.0)
    return (va + vb) ** 2 / denom if denom > 0 else math.inf


def _p_from_t(t: float, df: float, alternative: str) -> float:
    if not math.isfinite(df):
        return _p_from_z(t, alternative)
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))


def _unit(*aggs: RateAggregate | MeanAggregate) -> str:
    return next((a.clusters.unit for a in aggs if a.clusters is not None and _is_clustered(a)), "observation")


def rate_difference(
    a: RateAggregate,
    b: RateAggregate,
    confidence: float = 0.95,
    alternative: Alternative = "two-sided",
    exact: bool | None = None,
) -> DiffResult:
    """Difference of two proportions ``p_a - p_b``.

    Interval: Newcombe's hybrid score interval (1998, method 10), built from the two Wilson
    intervals, because the Wald interval undercovers for small n or rates near 0/1.
    p-value: pooled two-proportion z test, or Fisher's exact test when any expected cell count
    is below ``MIN_EXPECTED_FOR_Z`` (or when ``exact=True``).
    Clustered votes: both on effective sizes (module docstring); the z test's reference is then
    t with Welch-Satterthwaite df from G_a - 1 and G_b - 1. Clusters spanning both groups are
    treated as independent pieces, which errs wide when votes within a cluster agree.
    """
    _check_alternative(alternative)
    if a.n == 0 or b.n == 0:
        raise StatisticsError(f"difference of rates needs observations in both groups, got n={a.n} and n={b.n}")
    pa, pb = a.value, b.value
    ea, eb = effective_size(a, confidence), effective_size(b, confidence)
    if ea <= 0 or eb <= 0:
        ga, gb = (x.clusters.count if x.clusters else x.n for x in (a, b))
        raise StatisticsError(f"difference of rates needs at least 2 {_unit(a, b)}s in each group, got {ga} and {gb}")
    wa, wb = _wilson(pa, ea, confidence), _wilson(pb, eb, confidence)
    d = pa - pb
    low = d - math.sqrt((pa - wa.low) ** 2 + (wb.high - pb) ** 2)
    high = d + math.sqrt((wa.high - pa) ** 2 + (pb - wb.low) ** 2)
    interval = Interval(max(-1.0, low), min(1.0, high), confidence)

    clustered = _is_clustered(a) or _is_clustered(b)
    na, nb = effective_size(a), effective_size(b)  # the test's variance: n / deff, no interval scaling
    pooled = (a.successes + b.successes) / (a.n + b.n)
    min_expected = min(na, nb) * min(pooled, 1 - pooled)
    if exact is None:
        exact = min_expected < MIN_EXPECTED_FOR_Z
    if exact:
        ma, mb = max(1, round(na)), max(1, round(nb))
        ka, kb = min(ma, round(pa * na)), min(mb, round(pb * nb))
        table = [[ka, ma - ka], [kb, mb - kb]]
        p = float(stats.fisher_exact(table, alternative=alternative).pvalue)
        return DiffResult(
            d, interval, min(1.0, p), "fisher exact" + (" on effective counts" if clustered else ""), alternative
        )
    va, vb = pooled * (1 - pooled) / na, pooled * (1 - pooled) / nb
    se = math.sqrt(va + vb)
    if not clustered:
        p = _p_from_z(d / se, alternative) if se > 0 else 1.0
        return DiffResult(d, interval, p, "two-proportion z", alternative)
    dfa = a.clusters.count - 1 if a.clusters is not None and _is_clustered(a) else math.inf
    dfb = b.clusters.count - 1 if b.clusters is not None and _is_clustered(b) else math.inf
    df = _satterthwaite(va, dfa, vb, dfb)
    p = _p_from_t(d / se, df, alternative) if se > 0 else 1.0
    return DiffResult(d, interval, p, f"two-proportion test, cluster-robust by {_unit(a, b)}", alternative)


def mean_difference(
    a: MeanAggregate, b: MeanAggregate, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> DiffResult:
    """Welch's t test and interval for ``mean_a - mean_b`` (no equal-variance assumption).

    Clustered values: each mean's cluster-robust variance with G-1 df, combined by Welch-Satterthwaite.
    """
    _check_alternative(alternative)
    _z(confidence)
    if a.n < 2 or b.n < 2:
        raise StatisticsError(f"Welch's test needs at least 2 values per group, got n={a.n} and n={b.n}")
    (va, dfa), (vb, dfb) = _mean_var_df(a), _mean_var_df(b)
    se2 = va + vb
    if se2 == 0:
        raise StatisticsError("Welch's test is undefined: no variation in either group")
    df = _satterthwaite(va, dfa, vb, dfb)
    d = a.value - b.value
    half = _t(confidence, df) * math.sqrt(se2)
    p = _p_from_t(d / math.sqrt(se2), df, alternative)
    clustered = _is_clustered(a) or _is_clustered(b)
    return DiffResult(
        d,
        Interval(d - half, d + half, confidence),
        p,
        f"welch t, cluster-robust by {_unit(a, b)}" if clustered else "welch t",
        alternative,
    )


def estimate_difference(
    a: EstimateAggregate, b: EstimateAggregate, confidence: float = 0.95, alternative: Alternative = "two-sided"
) -> DiffResult:
    """z test for two independent estimates with standard errors (e.g. PPI means).

    Assumes independence: if both estimates reuse one labelled set, the se of the difference is
    not sqrt(se_a^2 + se_b^2) and this test is only approximate.
    """
    _check_alternative(alternative)
    if a.n == 0 or b.n == 0:
        raise StatisticsError(f"difference of estimates needs n >= 1 in both groups, got {a.n} and {b.n}")
    se = math.hypot(a.se, b.se)
    if se == 0:
        raise StatisticsError("difference of estimates is undefined: both standard errors are 0")
    d = a.estimate - b.estimate
    return DiffResult(
        d, normal_interval(d, se, confidence), _p_from_z(d / se, alternative), "z (estimate, se)", alternative
    )


def permutation_test(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    alternative: Alternative = "two-sided",
    n_resamples: int = 9999,
    seed: int | None = None,
) -> DiffResult:
    """Permutation test of ``mean(a) - mean(b)`` for small raw samples (exact when few permutations)."""
    _check_alternative(alternative)
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if xa.size == 0 or xb.size == 0:
        raise StatisticsError(f"permutation test needs values in both groups, got {xa.size} and {xb.size}")
    if not (np.isfinite(xa).all() and np.isfinite(xb).all()):
        raise ValidationError("permutation test values must be finite numbers")

    def diff(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    res = stats.permutation_test(
        (xa, xb),
        diff,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_resamples,
        alternative=alternative,
        rng=np.random.default_rng(seed),
    )
    return DiffResult(float(xa.mean() - xb.mean()), None, float(res.pvalue), "permutation", alternative)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values: controls the family-wise error rate under any dependence."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-comparison adjustment: 'holm' (family-wise), 'bh' (false discovery rate) or 'none'."""
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or (p.size and not ((p >= 0) & (p <= 1)).all()):
        raise ValidationError("p-values must be a flat list of numbers in [0, 1]")
    if p.size == 0:
        return p
    if method == "holm":
        return holm(p)
    if method == "bh":
        return np.asarray(stats.false_discovery_control(p, method="bh"), dtype=float)
    if method == "none":
        return p.copy()
    raise ValidationError(f"unknown correction {method!r}; use 'holm', 'bh' or 'none'")
