"""Mapping judge scores onto the human scale (isotonic regression) and choosing a decision threshold.

Isotonic regression assumes only that a higher judge score means a higher (or, if the judge is
inverted, lower) human rating, which is all we can assume of an LLM judge. The fitted mapping is a
list of breakpoints, linear between them and flat beyond them (exactly sklearn's
``IsotonicRegression(out_of_bounds="clip").predict``), so it is stored as JSON and applied to new
scores without sklearn. Its error is measured out-of-fold (k-fold), against two references on the
same folds: the judge score before mapping and the constant "predict the training-fold mean".
The recommended binary threshold maximises Youden's J (TPR - FPR): it weighs both error kinds
equally whatever the class balance, unlike accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_curve
from sklearn.model_selection import KFold

from workbench.errors import StatisticsError, ValidationError
from workbench.judge.calibration.base import as_scores, check_pairs, clean

__all__ = [
    "MappingReport",
    "ScoreMapping",
    "Threshold",
    "crossfit",
    "fit_isotonic",
    "fit_mapping",
    "recommend_threshold",
]


@dataclass(frozen=True)
class ScoreMapping:
    """Monotone piecewise-linear map from judge score to human scale, given by its breakpoints."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    increasing: bool
    method: Literal["isotonic"] = "isotonic"

    def apply(self, scores: Any) -> np.ndarray:
        return np.interp(as_scores(scores, "scores to map"), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "increasing": self.increasing, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Any) -> ScoreMapping:
        """Rebuild a stored mapping; a malformed one is a ValidationError naming the field."""
        if not isinstance(data, dict) or data.get("method") != "isotonic":
            raise ValidationError("mapping: expected an object with method 'isotonic'")
        try:
            x = as_scores(data.get("x"), "mapping.x")
            y = as_scores(data.get("y"), "mapping.y")
        except StatisticsError as exc:
            raise ValidationError(str(exc)) from None
        increasing = data.get("increasing")
        if not isinstance(increasing, bool):
            raise ValidationError("mapping.increasing: expected true or false")
        if x.size == 0 or x.size != y.size:
            raise ValidationError(f"mapping: x and y need the same, non-zero length ({x.size} vs {y.size})")
        if np.any(np.diff(x) <= 0):
            raise ValidationError("mapping.x: breakpoints must be strictly increasing")
        steps = np.diff(y) if increasing else -np.diff(y)
        if np.any(steps < 0):
            raise ValidationError(f"mapping.y: values must be {'non-decreasing' if increasing else 'non-increasing'}")
        return cls(tuple(x.tolist()), tuple(y.tolist()), increasing)


def _fit(x: np.ndarray, y: np.ndarray, increasing: bool) -> ScoreMapping:
    model = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x, y)
    return ScoreMapping(tuple(map(float, model.X_thresholds_)), tuple(map(float, model.y_thresholds_)), increasing)


def _direction(x: np.ndarray, y: np.ndarray) -> bool:
    rho = stats.spearmanr(x, y).statistic
    return not (np.isfinite(rho) and rho < 0)


def fit_isotonic(judge: Any, human: Any) -> ScoreMapping:
    """Isotonic map judge -> human on all pairs; the direction follows the sign of Spearman's rho."""
    x, y = check_pairs(judge, human)
    return _fit(x, y, _direction(x, y))


def crossfit(
    judge: Any, human: Any, *, folds: int = 5, seed: int = 0, unlabeled: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold mapped scores for the labelled items, and fold-averaged ones for unlabelled items.

    Each labelled item is mapped by a model that never saw its rating, so residuals (and PPI's
    rectifier) are honest; this is cross-prediction (Zrnic & Candes 2024).
    """
    x, y = check_pairs(judge, human)
    increasing = _direction(x, y)
    splits = KFold(n_splits=min(folds, x.size), shuffle=True, random_state=seed).split(x)
    u = as_scores(unlabeled, "unlabeled judge scores") if unlabeled is not None else None
    out = np.empty_like(x)
    mapped_u = np.zeros_like(u) if u is not None else None
    k = 0
    for train, test in splits:
        fold = _fit(x[train], y[train], increasing)
        out[test] = fold.apply(x[test])
        if u is not None and mapped_u is not None:
            mapped_u += fold.apply(u)
        k += 1
    return out, (mapped_u / k if mapped_u is not None else None)


@dataclass(frozen=True)
class Threshold:
    """Judge score at or above which to call an item positive, chosen by maximal Youden's J."""

    value: float
    youden_j: float
    tpr: float
    fpr: float
    criterion: Literal["youden_j"] = "youden_j"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": clean(self.value),
            "criterion": self.criterion,
            "youden_j": clean(self.youden_j),
            "tpr": clean(self.tpr),
            "fpr": clean(self.fpr),
            "rule": "positive when judge score >= value",
        }


def recommend_threshold(judge: Any, positive: Any) -> Threshold:
    """The ROC point with the largest TPR - FPR (ties: the highest threshold, i.e. the stricter one)."""
    x, y = check_pairs(judge, positive, names=("judge scores", "human labels"))
    if not np.isin(y, (0.0, 1.0)).all():
        raise StatisticsError("threshold needs human labels of 0 or 1")
    fpr, tpr, thresholds = roc_curve(y.astype(int), x, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = int(np.argmax(j))
    return Threshold(float(thresholds[best]), float(j[best]), float(tpr[best]), float(fpr[best]))


@dataclass(frozen=True)
class MappingReport:
    mapping: ScoreMapping
    metric: Literal["mae", "brier"]
    folds: int
    before: float
    before_method: Literal["as_is", "minmax_rescaled"]
    after: float
    baseline: float
    threshold: Threshold | None
    threshold_positive: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.mapping.to_dict(),
            "metric": self.metric,
            "cv_folds": self.folds,
            "cv_error": {"before": clean(self.before), "after": clean(self.after), "baseline": clean(self.baseline)},
            "before_method": self.before_method,
            "threshold": self.threshold.to_dict() if self.threshold else None,
            "threshold_positive": self.threshold_positive,
        }


def _as_is(x: np.ndarray, low: float, high: float) -> tuple[np.ndarray, Literal["as_is", "minmax_rescaled"]]:
    """The judge score as a prediction of the human one; min-max rescaled when it is on another scale."""
    if x.min() >= low - 1e-9 and x.max() <= high + 1e-9:
        return x, "as_is"
    return low + (x - x.min()) / (x.max() - x.min()) * (high - low), "minmax_rescaled"


def fit_mapping(
    judge: Any,
    human: Any,
    *,
    binary: bool = False,
    folds: int = 5,
    seed: int = 0,
    positive_at: float | None = None,
    metric: Literal["mae", "brier"] | None = None,
) -> MappingReport:
    """Fit the isotonic map and report its k-fold error (MAE, or Brier when ``binary``).

    ``positive_at``: on a non-binary human scale, ratings >= this count as positive for the
    recommended threshold (none is recommended otherwise). ``metric``: override the error measure
    (pairwise win scores 0/0.5/1 use Brier: the mapping predicts a win probability).
    """
    x, y = check_pairs(judge, human)
    if folds < 2:
        raise StatisticsError(f"folds must be at least 2, got {folds}")
    increasing = _direction(x, y)
    mapped_oof, _ = crossfit(x, y, folds=folds, seed=seed)
    baseline = np.empty_like(y)
    for train, test in KFold(n_splits=min(folds, x.size), shuffle=True, random_state=seed).split(x):
        baseline[test] = y[train].mean()
    if binary and not np.isin(y, (0.0, 1.0)).all():
        raise StatisticsError("binary mapping needs human labels of 0 or 1")
    metric = metric or ("brier" if binary else "mae")
    raw, how = _as_is(x, 0.0, 1.0) if binary else _as_is(x, float(y.min()), float(y.max()))

    def error(pred: np.ndarray) -> float:
        return float(np.mean((pred - y) ** 2)) if metric == "brier" else float(np.mean(np.abs(pred - y)))

    threshold, positive = None, None
    if binary:
        threshold, positive = recommend_threshold(x, y), "human == 1"
    elif positive_at is not None:
        labels = (y >= positive_at).astype(float)
        if labels.min() == labels.max():
            raise StatisticsError(f"no human rating is {'below' if labels[0] else 'at or above'} {positive_at:g}")
        threshold, positive = recommend_threshold(x, labels), f"human >= {positive_at:g}"
    return MappingReport(
        _fit(x, y, increasing),
        metric,
        min(folds, x.size),
        error(raw),
        how,
        error(mapped_oof),
        error(baseline),
        threshold,
        positive,
    )
