"""Sample sizes and power for the tests in ``stats``, so compare can say how much more data it needs.

Normal approximations (the same ones the z and Welch tests rest on); sample sizes are rounded up.
All functions are two-sided at level ``alpha``.
"""

from __future__ import annotations

import math

from scipy import optimize, special, stats

from workbench.errors import StatisticsError, ValidationError

__all__ = [
    "minimum_detectable_rate_difference",
    "n_per_arm_means",
    "n_per_arm_normal",
    "n_per_arm_rates",
    "power_means",
    "power_rates",
]


def _check(alpha: float, power: float | None = None) -> None:
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must be in (0, 1), got {alpha!r}")
    if power is not None and not 0 < power < 1:
        raise ValidationError(f"power must be in (0, 1), got {power!r}")


def _rates(p1: float, p2: float) -> None:
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValidationError(f"rates must be in [0, 1], got {p1!r} and {p2!r}")
    if p1 == p2:
        raise StatisticsError("no sample size detects a zero difference; give a non-zero difference")


def n_per_arm_rates(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Observations per arm for the pooled two-proportion z test to detect p1 vs p2 (Fleiss, no CC)."""
    _check(alpha, power)
    _rates(p1, p2)
    za, zb = special.ndtri(1 - alpha / 2), special.ndtri(power)
    pbar = (p1 + p2) / 2
    num = za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return max(2, math.ceil(num * num / (p1 - p2) ** 2))


def power_rates(p1: float, p2: float, n1: int, n2: int, alpha: float = 0.05) -> float:
    """Power of the pooled two-proportion z test with n1 and n2 observations (normal approximation)."""
    _check(alpha)
    if n1 < 1 or n2 < 1:
        raise StatisticsError(f"power needs at least one observation per arm, got {n1} and {n2}")
    if not (0 <= p1 <= 1 and 0 <= p2 <= 1):
        raise ValidationError(f"rates must be in [0, 1], got {p1!r} and {p2!r}")
    za = special.ndtri(1 - alpha / 2)
    pbar = (n1 * p1 + n2 * p2) / (n1 + n2)
    se0 = math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
    se1 = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    if se1 == 0:
        return 1.0 if p1 != p2 else 0.0
    d = abs(p1 - p2)
    return float(special.ndtr((d - za * se0) / se1) + special.ndtr((-d - za * se0) / se1))


def minimum_detectable_rate_difference(
    p_base: float, n1: int, n2: int, alpha: float = 0.05, power: float = 0.8, direction: int = -1
) -> float | None:
    """Smallest change of ``p_base`` (down if direction < 0) the z test detects with this power.

    None when even the largest possible change (to 0 or 1) is not detectable with these n.
    """
    _check(alpha, power)
    limit = p_base if direction < 0 else 1 - p_base
    sign = -1 if direction < 0 else 1
    if limit <= 0 or power_rates(p_base + sign * limit, p_base, n1, n2, alpha) < power:
        return None
    f = lambda d: power_rates(p_base + sign * d, p_base, n1, n2, alpha) - power  # noqa: E731
    return float(optimize.brentq(f, 1e-9, limit, xtol=1e-7))


def n_per_arm_normal(diff: float, var1: float, var2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Per-arm n for a z test of means when one observation has variance var1 (var2) per arm."""
    _check(alpha, power)
    if diff == 0 or not math.isfinite(diff):
        raise StatisticsError("no sample size detects a zero difference; give a non-zero difference")
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    return max(2, math.ceil(z * z * (var1 + var2) / diff**2))


def n_per_arm_means(diff: float, sd1: float, sd2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Per-arm n for Welch's test: the normal answer refined with t quantiles (matters for small n)."""
    n = n_per_arm_normal(diff, sd1**2, sd2**2, alpha, power)
    for _ in range(3):
        df = max(1, 2 * n - 2)
        t = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
        n = max(2, math.ceil(t * t * (sd1**2 + sd2**2) / diff**2))
    return n


def power_means(diff: float, sd1: float, sd2: float, n1: int, n2: int, alpha: float = 0.05) -> float:
    """Approximate power of Welch's test (normal approximation of the t statistic)."""
    _check(alpha)
    if n1 < 2 or n2 < 2:
        raise StatisticsError(f"power of Welch's test needs n >= 2 per arm, got {n1} and {n2}")
    se = math.sqrt(sd1**2 / n1 + sd2**2 / n2)
    if se == 0:
        return 1.0 if diff else 0.0
    za = special.ndtri(1 - alpha / 2)
    return float(special.ndtr(abs(diff) / se - za) + special.ndtr(-abs(diff) / se - za))
