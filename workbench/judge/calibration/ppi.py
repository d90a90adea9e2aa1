"""Mean human rating of all traffic from judge scores: prediction-powered inference.

We have human ratings Y on n labelled items and judge scores f on those plus N unlabelled items.

* classical:  mean(Y) +- z * sd(Y)/sqrt(n)  (labelled data only);
* PPI (Angelopoulos, Bates, Fannjiang, Jordan, Zrnic, Science 2023):
  mean(f_u) + mean(Y - f_l), variance var(f_u)/N + var(Y - f_l)/n - unbiased however bad the judge;
* PPI++ (Angelopoulos, Duchi, Zrnic 2023): mean(Y) + lambda * (mean(f_u) - mean(f_l)) with
  lambda = cov(Y, f_l) / ((1 + n/N) var(f)) clipped to [0, 1], the variance-minimising weight, so it is
  never (asymptotically) worse than classical: lambda = 0 *is* the classical estimate.

All three use normal-approximation intervals (as the papers do), so they are directly comparable.
Effective sample size = n * var(classical) / var(PPI++): how many human labels the classical
estimate would need to be as precise. Pass judge scores mapped onto the human scale
(:func:`~workbench.judge.calibration.mapping.crossfit`) so that ``Y - f`` is small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from workbench.errors import StatisticsError
from workbench.judge.calibration.base import MIN_PAIRS, as_scores, check_confidence, clean
from workbench.judge.calibration.mapping import crossfit

__all__ = ["MeanEstimate", "PPIResult", "classical_mean", "estimate_mean", "ppi_mean"]


@dataclass(frozen=True)
class MeanEstimate:
    estimate: float
    ci_low: float
    ci_high: float
    se: float

    def to_dict(self) -> dict[str, float | None]:
        return {
            "estimate": clean(self.estimate),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "se": clean(self.se),
        }


def _interval(value: float, se: float, confidence: float) -> MeanEstimate:
    z = float(norm.ppf(0.5 + confidence / 2.0))
    return MeanEstimate(float(value), float(value - z * se), float(value + z * se), float(se))


def classical_mean(human: Any, *, confidence: float = 0.95) -> MeanEstimate:
    """Mean of the human ratings with a normal-approximation interval."""
    check_confidence(confidence)
    y = as_scores(human, "human scores")
    if y.size < MIN_PAIRS:
        raise StatisticsError(f"need at least {MIN_PAIRS} human ratings, got {y.size}")
    return _interval(y.mean(), y.std(ddof=1) / np.sqrt(y.size), confidence)


@dataclass(frozen=True)
class PPIResult:
    n_labeled: int
    n_unlabeled: int
    confidence: float
    classical: MeanEstimate
    ppi: MeanEstimate
    ppi_plus: MeanEstimate
    lam: float

    @property
    def effective_n(self) -> float:
        """Labelled items the classical estimate would need to match PPI++'s precision."""
        if self.ppi_plus.se == 0:
            return float("inf")
        return self.n_labeled * (self.classical.se / self.ppi_plus.se) ** 2

    @property
    def effective_n_ppi(self) -> float:
        return float("inf") if self.ppi.se == 0 else self.n_labeled * (self.classical.se / self.ppi.se) ** 2

    @property
    def gain(self) -> float:
        return self.effective_n / self.n_labeled

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_labeled": self.n_labeled,
            "n_unlabeled": self.n_unlabeled,
            "confidence": self.confidence,
            "classical": self.classical.to_dict(),
            "ppi": {**self.ppi_plus.to_dict(), "method": "ppi++", "lambda": clean(self.lam)},
            "ppi_plain": {**self.ppi.to_dict(), "method": "ppi", "lambda": 1.0},
            "effective_sample_size": {
                "labeled": self.n_labeled,
                "ppi++": clean(self.effective_n),
                "ppi": clean(self.effective_n_ppi),
                "gain": clean(self.gain),
            },
        }


def _rectified(y: np.ndarray, f: np.ndarray, u: np.ndarray, lam: float, confidence: float) -> MeanEstimate:
    value = lam * u.mean() + (y - lam * f).mean()
    variance = lam**2 * u.var(ddof=1) / u.size + (y - lam * f).var(ddof=1) / y.size
    return _interval(value, float(np.sqrt(variance)), confidence)


def ppi_mean(
    human: Any, judge_labeled: Any, judge_unlabeled: Any, *, lam: float | None = None, confidence: float = 0.95
) -> PPIResult:
    """Classical, PPI and PPI++ estimates of the mean human rating, side by side.

    ``lam``: fix PPI++'s weight instead of tuning it (0 gives classical, 1 gives PPI).
    """
    check_confidence(confidence)
    y = as_scores(human, "human scores")
    f = as_scores(judge_labeled, "judge scores (labelled)")
    u = as_scores(judge_unlabeled, "judge scores (unlabelled)")
    if y.size != f.size:
        raise StatisticsError(f"human scores and labelled judge scores differ in length ({y.size} vs {f.size})")
    if y.size < MIN_PAIRS:
        raise StatisticsError(f"need at least {MIN_PAIRS} labelled pairs, got {y.size}")
    if u.size < 2:
        raise StatisticsError(f"need at least 2 unlabelled judge scores, got {u.size}")
    if lam is None:
        pooled_var = np.concatenate([f, u]).var(ddof=1)
        lam = 0.0 if pooled_var == 0 else float(np.cov(y, f)[0, 1] / ((1.0 + y.size / u.size) * pooled_var))
        lam = float(np.clip(lam, 0.0, 1.0))
    return PPIResult(
        y.size,
        u.size,
        confidence,
        classical_mean(y, confidence=confidence),
        _rectified(y, f, u, 1.0, confidence),
        _rectified(y, f, u, lam, confidence),
        lam,
    )


def estimate_mean(
    judge: Any,
    human: Any,
    unlabeled: Any = None,
    *,
    map_scores: bool = True,
    folds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[MeanEstimate, PPIResult | None]:
    """The classical estimate, and PPI/PPI++ when unlabelled judge scores are given.

    With ``map_scores`` the judge scores are first put on the human scale by cross-fitted isotonic
    regression (labelled items out-of-fold), so the rectifier is not fitted on the items it corrects.
    """
    classical = classical_mean(human, confidence=confidence)
    if unlabeled is None:
        return classical, None
    if map_scores:
        f, u = crossfit(judge, human, folds=folds, seed=seed, unlabeled=unlabeled)
    else:
        f, u = as_scores(judge, "judge scores"), as_scores(unlabeled, "unlabeled judge scores")
    return classical, ppi_mean(human, f, u, confidence=confidence)
