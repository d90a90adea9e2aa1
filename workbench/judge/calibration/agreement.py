"""Judge-vs-human agreement: correlations, Cohen's kappa, Krippendorff's alpha, binary metrics.

Correlations (Pearson, Spearman, Kendall tau-b) are computed on the raw scores: they do not care
about scale. Kappa and alpha measure agreement *on one scale*, so the judge's scores are first put
on the human scale (``alignment``):

* ``identity`` - every judge score already is one of the human values;
* ``round``    - the judge's scores lie within the human range (e.g. a 0-1 judge vs 0-1 ratings):
  each is rounded to the nearest human category;
* ``quantile`` - the judge uses another scale (e.g. 0-1 vs 1-5): equipercentile matching, i.e. the
  judge's k-th smallest score gets the human's k-th smallest rating (ties share one). Kappa and alpha
  then measure how well the judge *orders* items, not its bias; use the mapping's MAE for that.

Ordinal data (at most ``max_categories`` distinct human values): quadratic-weighted kappa and
ordinal alpha on the categories. Continuous data: interval alpha on the aligned scores, and kappa
(quadratic) on both sides binned at the human quintiles. Binary data: a continuous judge is
thresholded (``threshold``, else the in-sample Youden-J threshold - optimistic, and reported as such),
(alignment ``threshold``), then unweighted kappa, nominal alpha, accuracy, precision, recall, F1 and
the confusion matrix.
Every statistic gets a seeded percentile bootstrap interval (the alignment is held fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import krippendorff
import numpy as np
from scipy import stats
from sklearn import metrics

from workbench.errors import StatisticsError
from workbench.judge.calibration import resampled
from workbench.judge.calibration.base import (
    DEFAULT_BOOTSTRAP,
    Estimate,
    bootstrap,
    bootstrap_many,
    check_confidence,
    check_pairs,
    clean,
    distinct,
    estimate,
)
from workbench.judge.calibration.mapping import recommend_threshold

__all__ = [
    "MAX_CATEGORIES",
    "Agreement",
    "BinaryMetrics",
    "agreement",
    "align_to_human",
    "binarize",
    "common_categories",
    "correlations",
]

MAX_CATEGORIES = 20
Scale = Literal["ordinal", "continuous", "binary"]


@dataclass(frozen=True)
class BinaryMetrics:
    """Binary decision quality; confusion matrix is sklearn's layout [[tn, fp], [fn, tp]] (rows = human)."""

    accuracy: Estimate
    precision: Estimate
    recall: Estimate
    f1: Estimate
    confusion_matrix: tuple[tuple[int, int], tuple[int, int]]
    threshold: float | None
    threshold_source: Literal["binary_judge", "given", "youden_j_in_sample"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy.to_dict(),
            "precision": self.precision.to_dict(),
            "recall": self.recall.to_dict(),
            "f1": self.f1.to_dict(),
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
            "threshold": clean(self.threshold),
            "threshold_source": self.threshold_source,
        }


@dataclass(frozen=True)
class Agreement:
    n: int
    scale: Scale
    pearson: Estimate
    spearman: Estimate
    kendall: Estimate
    kappa: Estimate
    krippendorff_alpha: Estimate
    kappa_weights: Literal["quadratic"] | None
    alpha_level: Literal["nominal", "ordinal", "interval"]
    alignment: Literal["identity", "round", "quantile", "threshold"]
    binary: BinaryMetrics | None
    n_bootstrap: int
    seed: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "scale": self.scale,
            "pearson": self.pearson.to_dict(),
            "spearman": self.spearman.to_dict(),
            "kendall": self.kendall.to_dict(),
            "kappa": self.kappa.to_dict(),
            "krippendorff_alpha": self.krippendorff_alpha.to_dict(),
            "kappa_weights": self.kappa_weights,
            "alpha_level": self.alpha_level,
            "alignment": self.alignment,
            "binary": self.binary.to_dict() if self.binary else None,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "confidence": self.confidence,
        }


def align_to_human(judge: np.ndarray, human: np.ndarray, *, categorical: bool) -> tuple[np.ndarray, str]:
    """The judge's scores on the human scale, and how (see module docstring)."""
    levels = distinct(human)
    rounded = np.round(judge, 9)
    if categorical and np.isin(rounded, levels).all():
        return levels[np.searchsorted(levels, rounded)], "identity"
    tolerance = 1e-9
    if judge.min() >= levels[0] - tolerance and judge.max() <= levels[-1] + tolerance:
        if not categorical:
            return judge.copy(), "identity"
        return levels[np.abs(judge[:, None] - levels[None, :]).argmin(axis=1)], "round"
    ranks = stats.rankdata(judge, method="average")
    position = np.clip(np.floor(ranks - 0.5).astype(int), 0, judge.size - 1)
    return np.sort(human)[position], "quantile"


def common_categories(
    judge: np.ndarray,
    human: np.ndarray,
    *,
    scale: Scale,
    max_categories: int = MAX_CATEGORIES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Integer codes (judge, human) over the categories both share, the category values, the alignment.

    These are exactly the arrays kappa and alpha are computed on; exposed so results can be reproduced.
    """
    if scale == "continuous":
        aligned, how = align_to_human(judge, human, categorical=False)
        edges = np.unique(np.quantile(human, [0.2, 0.4, 0.6, 0.8]))
        judge_bins, human_bins = np.digitize(aligned, edges), np.digitize(human, edges)
        values, codes = np.unique(np.concatenate([judge_bins, human_bins]), return_inverse=True)
        return codes[: judge.size], codes[judge.size :], values.astype(float), how
    if scale == "ordinal" and distinct(human).size > max_categories:
        raise StatisticsError(
            f"human scores have {distinct(human).size} distinct values (> {max_categories}); "
            "treat them as continuous, not ordinal"
        )
    aligned, how = align_to_human(judge, human, categorical=True)
    values, codes = np.unique(np.round(np.concatenate([aligned, human]), 9), return_inverse=True)
    return codes[: judge.size], codes[judge.size :], values, how


def binarize(judge: np.ndarray, human: np.ndarray, threshold: float | None) -> tuple[np.ndarray, float | None, str]:
    """0/1 judge decisions: as given, at ``threshold`` (judge >= t is positive), or at the Youden-J cut."""
    if not np.isin(human, (0.0, 1.0)).all():
        bad = np.flatnonzero(~np.isin(human, (0.0, 1.0)))[0]
        raise StatisticsError(f"binary human labels must be 0 or 1; item {bad} is {human[bad]:g}")
    if threshold is not None:
        return (judge >= threshold).astype(float), float(threshold), "given"
    if np.isin(judge, (0.0, 1.0)).all():
        return judge.copy(), None, "binary_judge"
    cut = recommend_threshold(judge, human).value
    return (judge >= cut).astype(float), cut, "youden_j_in_sample"


def _binary(
    judge: np.ndarray, human: np.ndarray, threshold: float | None, n_boot: int, seed: int, confidence: float
) -> tuple[BinaryMetrics, np.ndarray]:
    predicted, cut, source = binarize(judge, human, threshold)
    h, p = human.astype(int), predicted.astype(int)
    point = {
        "accuracy": metrics.accuracy_score(h, p),
        "precision": metrics.precision_score(h, p, zero_division=0),
        "recall": metrics.recall_score(h, p, zero_division=0),
        "f1": metrics.f1_score(h, p, zero_division=0),
    }
    reps = bootstrap_many(lambda idx: resampled.binary_metrics(predicted, human, idx), judge.size, n_boot, seed)
    est = {key: estimate(point[key], reps.get(key, np.empty(0)), confidence) for key in point}
    (tn, fp), (fn, tp) = metrics.confusion_matrix(h, p, labels=[0, 1]).tolist()
    result = BinaryMetrics(
        est["accuracy"], est["precision"], est["recall"], est["f1"], ((tn, fp), (fn, tp)), cut, source
    )  # type: ignore[arg-type]
    return result, predicted


def correlations(
    x: np.ndarray, y: np.ndarray, *, n_bootstrap: int, seed: int, confidence: float
) -> tuple[Estimate, Estimate, Estimate]:
    """Pearson, Spearman and Kendall tau-b with bootstrap intervals (undefined -> None, no warning)."""
    if np.all(x == x[0]) or np.all(y == y[0]):
        return Estimate(None, None, None), Estimate(None, None, None), Estimate(None, None, None)

    def boot(fn: Any) -> np.ndarray:
        return bootstrap(fn, x.size, n_bootstrap, seed)

    return (
        estimate(stats.pearsonr(x, y).statistic, boot(lambda i: resampled.pearson(x, y, i)), confidence),
        estimate(stats.spearmanr(x, y).statistic, boot(lambda i: resampled.spearman(x, y, i)), confidence),
        estimate(stats.kendalltau(x, y, variant="b").statistic, boot(lambda i: resampled.kendall(x, y, i)), confidence),
    )


def agreement(
    judge: Any,
    human: Any,
    *,
    ordinal: bool = True,
    binary: bool = False,
    threshold: float | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    max_categories: int = MAX_CATEGORIES,
) -> Agreement:
    """Agreement of judge scores with human ratings of the same items (see module docstring)."""
    check_confidence(confidence)
    x, y = check_pairs(judge, human)
    n = x.size
    scale: Scale = "binary" if binary else ("ordinal" if ordinal else "continuous")

    def boot(fn: Any) -> np.ndarray:
        return bootstrap(fn, n, n_bootstrap, seed)

    pearson, spearman, kendall = correlations(x, y, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    binary_result: BinaryMetrics | None = None
    if scale == "binary":
        binary_result, predicted = _binary(x, y, threshold, n_bootstrap, seed, confidence)
        values, codes = np.unique(np.concatenate([predicted, y]), return_inverse=True)
        how = "identity" if binary_result.threshold_source == "binary_judge" else "threshold"
        jc, hc, weights, level = codes[:n], codes[n:], None, "nominal"
    else:
        jc, hc, values, how = common_categories(x, y, scale=scale, max_categories=max_categories)
        weights, level = "quadratic", "ordinal" if scale == "ordinal" else "interval"
    k = values.size
    kappa_point = metrics.cohen_kappa_score(jc, hc, weights=weights) if k > 1 else float("nan")
    kappa = estimate(
        kappa_point,
        boot(lambda i: resampled.kappa_from_confusion(resampled.confusion(jc, hc, k, i), weights)),
        confidence,
    )
    if scale == "continuous":
        aligned, _ = align_to_human(x, y, categorical=False)
        # closed form for two coders (equal to krippendorff.alpha, see tests): the library builds a
        # values x values matrix, which takes seconds once scores are continuous
        alpha_point = resampled.alpha_interval(aligned, y, np.arange(n)[None, :])[0]
        alpha_reps = boot(lambda i: resampled.alpha_interval(aligned, y, i))
    else:
        data = np.vstack([values[jc], values[hc]])
        alpha_point = krippendorff.alpha(reliability_data=data, level_of_measurement=level) if k > 1 else np.nan
        alpha_reps = boot(lambda i: resampled.alpha_from_confusion(resampled.confusion(jc, hc, k, i), values, level))
    alpha = estimate(alpha_point, alpha_reps, confidence)
    return Agreement(
        n,
        scale,
        pearson,
        spearman,
        kendall,
        kappa,
        alpha,
        weights,
        level,  # type: ignore[arg-type]
        how,
        binary_result,
        n_bootstrap,
        seed,
        confidence,
    )  # type: ignore[arg-type]
