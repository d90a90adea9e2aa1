"""Shared pieces: input checks, the interval record, and seeded bootstrap resampling.

Every statistic is reported as an :class:`Estimate` (point value + 95% interval) so JSON output has
one shape everywhere. Input problems raise :class:`StatisticsError` with one line naming the problem.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from workbench.errors import StatisticsError

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "MIN_PAIRS",
    "Estimate",
    "as_scores",
    "bootstrap",
    "bootstrap_many",
    "check_confidence",
    "check_pairs",
    "clean",
    "distinct",
    "estimate",
    "percentile_ci",
    "resample_chunks",
]

MIN_PAIRS = 3
DEFAULT_BOOTSTRAP = 2000
_CHUNK_CELLS = 2_000_000  # resampled values held in memory at once (B rows x n items)


def clean(value: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None (JSON has no NaN)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (None where undefined, e.g. a constant resample)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"estimate": clean(self.estimate), "ci_low": clean(self.ci_low), "ci_high": clean(self.ci_high)}


def as_scores(values: Any, name: str) -> np.ndarray:
    """A 1-D float array of finite numbers; anything else is a StatisticsError naming item and value."""
    if isinstance(values, str | bytes):
        raise StatisticsError(f"{name}: expected a sequence of numbers, got a string")
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nesting
        raise StatisticsError(f"{name}: expected a flat sequence of numbers") from None
    if array.ndim != 1:
        raise StatisticsError(f"{name}: expected a flat sequence of numbers, got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        for index, item in enumerate(values):
            if not isinstance(item, Real | np.number | np.bool_):
                raise StatisticsError(f"{name}: item {index} is {item!r}, not a number")
    array = array.astype(float)
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise StatisticsError(f"{name}: item {bad[0]} is {array[bad[0]]}, not a finite number")
    return array


def check_pairs(
    judge: Any,
    human: Any,
    *,
    names: tuple[str, str] = ("judge scores", "human scores"),
    min_n: int = MIN_PAIRS,
    allow_constant: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired scores: same length, at least ``min_n`` pairs, neither side constant."""
    x, y = as_scores(judge, names[0]), as_scores(human, names[1])
    if x.size != y.size:
        raise StatisticsError(f"{names[0]} and {names[1]} differ in length ({x.size} vs {y.size})")
    if x.size < min_n:
        raise StatisticsError(f"need at least {min_n} labelled pairs, got {x.size}")
    if not allow_constant:
        for name, array in zip(names, (x, y), strict=True):
            if np.all(array == array[0]):
                raise StatisticsError(f"{name} are constant (all {array[0]:g}); agreement is undefined")
    return x, y


def resample_chunks(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index matrices (rows = resamples), in chunks that bound memory; same seed, same rows."""
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < n_boot:
        size = min(rows, n_boot - done)
        yield rng.integers(0, n, size=(size, n))
        done += size


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n: int, n_boot: int, seed: int) -> np.ndarray:
    """``statistic`` maps an index matrix (B x n) to B values; returns all ``n_boot`` replicates."""
    if n_boot <= 0:
        return np.empty(0)
    return np.concatenate([statistic(idx) for idx in resample_chunks(n, n_boot, seed)])


def bootstrap_many(
    statistics: Callable[[np.ndarray], dict[str, np.ndarray]], n: int, n_boot: int, seed: int
) -> dict[str, np.ndarray]:
    """Like :func:`bootstrap` for a function returning several statistics per resample (same rows)."""
    parts: dict[str, list[np.ndarray]] = {}
    for idx in resample_chunks(n, n_boot, seed) if n_boot > 0 else ():
        for key, values in statistics(idx).items():
            parts.setdefault(key, []).append(values)
    return {key: np.concatenate(values) for key, values in parts.items()}


def percentile_ci(replicates: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Percentile interval over the finite replicates; None when most resamples were degenerate."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < 0.5 * replicates.size:
        return None, None
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def estimate(value: float, replicates: np.ndarray, confidence: float) -> Estimate:
    low, high = percentile_ci(replicates, confidence)
    return Estimate(float(value) if value is not None else None, low, high)


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise StatisticsError(f"confidence must be between 0 and 1, got {confidence}")


def distinct(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Sorted distinct values, merging float noise (e.g. 1/3 averaged ratings) at 9 decimals."""
    return np.unique(np.round(np.asarray(values, dtype=float), 9))
