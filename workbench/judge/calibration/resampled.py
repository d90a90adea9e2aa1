"""Agreement statistics computed for many bootstrap resamples at once.

Point estimates come from scipy / sklearn / krippendorff; these functions exist only so the
2,000-resample bootstrap takes milliseconds instead of looping 2,000 library calls. Each one takes an
index matrix ``idx`` (B resamples x n items) and returns B values; with ``idx = arange(n)`` it
reproduces the library value exactly (the tests check this), which is how we know they agree.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.stats import kendalltau, rankdata

__all__ = [
    "alpha_interval",
    "alpha_from_confusion",
    "binary_metrics",
    "confusion",
    "kappa_from_confusion",
    "kendall",
    "pearson",
    "spearman",
]

_KENDALL_MATRIX_MAX_N = 1500  # above this the n x n sign matrices get large; loop over scipy instead


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (xc * yc).sum(axis=1) / denominator, np.nan)


def pearson(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return _rowwise_pearson(x[idx], y[idx])


def spearman(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Spearman = Pearson on average ranks, re-ranked within each resample."""
    return _rowwise_pearson(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1))


def kendall(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Kendall tau-b per resample.

    With item multiplicities c (one row per resample) and pairwise sign matrices Sx, Sy,
    tau-b = c'(Sx*Sy)c / sqrt(c'|Sx|c * c'|Sy|c): copies of one item are tied in both and drop out,
    exactly as tau-b treats pairs tied in both variables.
    """
    n = x.size
    if n > _KENDALL_MATRIX_MAX_N:
        return np.array([kendalltau(x[row], y[row]).statistic for row in idx])
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    counts = _counts(idx, n)
    concordance = ((counts @ (sx * sy)) * counts).sum(axis=1)
    untied_x = ((counts @ np.abs(sx)) * counts).sum(axis=1)
    untied_y = ((counts @ np.abs(sy)) * counts).sum(axis=1)
    denominator = np.sqrt(untied_x * untied_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, concordance / denominator, np.nan)


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    rows = idx.shape[0]
    flat = (np.arange(rows)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=rows * n).reshape(rows, n).astype(float)


def confusion(a: np.ndarray, b: np.ndarray, k: int, idx: np.ndarray) -> np.ndarray:
    """B x k x k counts of (a code, b code) per resample; codes are 0..k-1."""
    rows = idx.shape[0]
    cell = a[idx] * k + b[idx] + (np.arange(rows)[:, None] * k * k)
    return np.bincount(cell.ravel(), minlength=rows * k * k).reshape(rows, k, k).astype(float)


def kappa_from_confusion(table: np.ndarray, weights: Literal["quadratic", "linear"] | None) -> np.ndarray:
    """Cohen's kappa from B confusion tables, with sklearn's weights (by category index)."""
    k = table.shape[-1]
    i, j = np.indices((k, k))
    if weights is None:
        w = (i != j).astype(float)
    elif weights == "linear":
        w = np.abs(i - j).astype(float)
    else:
        w = ((i - j) ** 2).astype(float)
    total = table.sum(axis=(1, 2))
    expected = table.sum(axis=2)[:, :, None] * table.sum(axis=1)[:, None, :] / total[:, None, None]
    observed_d = (w * table).sum(axis=(1, 2))
    expected_d = (w * expected).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected_d > 0, 1.0 - observed_d / expected_d, np.nan)


def alpha_from_confusion(
    table: np.ndarray, values: np.ndarray, level: Literal["nominal", "ordinal", "interval"]
) -> np.ndarray:
    """Krippendorff's alpha for two coders with no missing values, from B confusion tables.

    The coincidence matrix is table + table'; alpha = 1 - (N-1) sum(o*d) / sum(n_c n_k d), with the
    ordinal distance built from each resample's own marginals (as Krippendorff defines it).
    """
    o = table + np.swapaxes(table, 1, 2)
    n_c = o.sum(axis=2)
    total = n_c.sum(axis=1)
    k = values.size
    i, j = np.indices((k, k))
    if level == "nominal":
        delta = np.broadcast_to((i != j).astype(float), o.shape)
    elif level == "interval":
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    else:
        cum = np.cumsum(n_c, axis=1)
        low, high = np.minimum(i, j), np.maximum(i, j)
        between = cum[:, high] - cum[:, low] + n_c[:, low]
        delta = (between - (n_c[:, i] + n_c[:, j]) / 2.0) ** 2
    observed = (o * delta).sum(axis=(1, 2))
    expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, 1.0 - (total - 1.0) * observed / expected, np.nan)


def alpha_interval(a: np.ndarray, b: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Interval alpha for two coders, closed form: 1 - (N-1) sum (a-b)^2 / (N sum (v - mean v)^2), N=2n."""
    ra, rb = a[idx], b[idx]
    pooled = np.concatenate([ra, rb], axis=1)
    big_n = pooled.shape[1]
    spread = ((pooled - pooled.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    disagreement = ((ra - rb) ** 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, 1.0 - (big_n - 1.0) * disagreement / (big_n * spread), np.nan)


def binary_metrics(predicted: np.ndarray, truth: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall, F1 per resample (0 where undefined, as sklearn's zero_division=0)."""
    p, t = predicted[idx].astype(bool), truth[idx].astype(bool)
    tp = (p & t).sum(axis=1).astype(float)
    fp = (p & ~t).sum(axis=1).astype(float)
    fn = (~p & t).sum(axis=1).astype(float)
    n = float(idx.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return {"accuracy": (p == t).sum(axis=1) / n, "precision": precision, "recall": recall, "f1": f1}
