"""Pairwise judges: agreement with human preferences, position bias and length bias.

Preferences are coded 1.0 (first output / A), 2.0 (second / B) and 1.5 (tie), the same coding the
rubric parser produces, so ``pref - 1`` is the share won by the second output ("win score"): the
correlations, the isotonic mapping and the PPI estimate (share of human wins for B, ties half) all
use it. Agreement, kappa (unweighted) and alpha (nominal) treat the three codes as categories.

Position bias needs the judge run twice, the second time with the outputs swapped and its verdict
mapped back to the original numbering. A position-neutral judge's inconsistent items favour the
first and second position equally, so the exact binomial test on those two counts is the test of
"first-position share = 0.5". Length bias compares, on items where judge and human both chose and
the outputs differ in length, how often each picks the longer output (exact McNemar test on the
discordant items). All intervals are item-level percentile bootstraps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import krippendorff
import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from workbench.errors import StatisticsError
from workbench.judge.calibration import resampled
from workbench.judge.calibration.agreement import correlations
from workbench.judge.calibration.base import (
    DEFAULT_BOOTSTRAP,
    MIN_PAIRS,
    Estimate,
    as_scores,
    bootstrap,
    check_confidence,
    clean,
    estimate,
)
from workbench.judge.calibration.mapping import MappingReport, fit_mapping
from workbench.judge.calibration.ppi import MeanEstimate, PPIResult, estimate_mean

__all__ = [
    "PREF_A",
    "PREF_B",
    "PREF_TIE",
    "LengthBias",
    "PairwiseReport",
    "PositionBias",
    "as_preferences",
    "calibrate_pairwise",
    "ratings_to_preferences",
]

PREF_A, PREF_B, PREF_TIE = 1.0, 2.0, 1.5
_WORDS = {"a": PREF_A, "1": PREF_A, "b": PREF_B, "2": PREF_B, "tie": PREF_TIE, "0": PREF_TIE, "1.5": PREF_TIE}


def as_preferences(values: Any, name: str) -> np.ndarray:
    """Preferences as 1.0/2.0/1.5 from 1/2, "a"/"b" (any case), "tie", 0 or 1.5; else StatisticsError."""
    if isinstance(values, str | bytes):
        raise StatisticsError(f"{name}: expected a sequence of preferences, got a string")
    out = []
    for index, item in enumerate(list(values)):
        if isinstance(item, str) and item.strip().casefold() in _WORDS:
            out.append(_WORDS[item.strip().casefold()])
        elif (
            isinstance(item, int | float | np.integer | np.floating)
            and not isinstance(item, bool)
            and (float(item) in (PREF_A, PREF_B, PREF_TIE, 0.0))
        ):
            out.append(PREF_TIE if float(item) == 0.0 else float(item))
        else:
            raise StatisticsError(f"{name}: item {index} is {item!r}, not a preference (1/2, a/b or tie)")
    return np.asarray(out, dtype=float)


def ratings_to_preferences(rating_a: Any, rating_b: Any, *, margin: float = 0.0) -> np.ndarray:
    """Two pointwise ratings -> preference: A if a > b + margin, B if b > a + margin, else tie."""
    a, b = as_scores(rating_a, "ratings of A"), as_scores(rating_b, "ratings of B")
    if a.size != b.size:
        raise StatisticsError(f"ratings of A and B differ in length ({a.size} vs {b.size})")
    return np.where(a > b + margin, PREF_A, np.where(b > a + margin, PREF_B, PREF_TIE))


def _share(numerator: np.ndarray, denominator: np.ndarray, n_boot: int, seed: int, confidence: float) -> Estimate:
    """sum(num)/sum(den) with an item-level bootstrap interval."""
    total = denominator.sum()
    if total == 0:
        return Estimate(None, None, None)

    def stat(idx: np.ndarray) -> np.ndarray:
        den = denominator[idx].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, numerator[idx].sum(axis=1) / den, np.nan)

    return estimate(numerator.sum() / total, bootstrap(stat, numerator.size, n_boot, seed), confidence)


@dataclass(frozen=True)
class PositionBias:
    n: int
    consistency: Estimate
    first_position_share: Estimate
    inconsistent_first: int
    inconsistent_second: int
    inconsistent_tie: int
    p_value: float | None
    agreement_swapped: Estimate
    agreement_combined: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "consistency": self.consistency.to_dict(),
            "first_position_share": self.first_position_share.to_dict(),
            "inconsistent_first": self.inconsistent_first,
            "inconsistent_second": self.inconsistent_second,
            "inconsistent_tie": self.inconsistent_tie,
            "p_value": clean(self.p_value),
            "agreement_swapped": self.agreement_swapped.to_dict(),
            "agreement_combined": self.agreement_combined.to_dict(),
        }


def position_bias(
    original: np.ndarray, swapped: np.ndarray, human: np.ndarray, *, n_bootstrap: int, seed: int, confidence: float
) -> PositionBias:
    """Both verdicts are in the original numbering; 'first position' is 1 originally and 2 when swapped."""
    consistent = original == swapped
    first = (original == PREF_A).astype(float) + (swapped == PREF_B)
    decided = (original != PREF_TIE).astype(float) + (swapped != PREF_TIE)
    inc_first = int(np.sum((original == PREF_A) & (swapped == PREF_B)))
    inc_second = int(np.sum((original == PREF_B) & (swapped == PREF_A)))
    p_value = binomtest(inc_first, inc_first + inc_second).pvalue if inc_first + inc_second else None
    combined = np.where(consistent, original, PREF_TIE)
    ones = np.ones_like(original)
    return PositionBias(
        original.size,
        _share(consistent.astype(float), ones, n_bootstrap, seed, confidence),
        _share(first, decided, n_bootstrap, seed, confidence),
        inc_first,
        inc_second,
        int(np.sum(~consistent)) - inc_first - inc_second,
        p_value,
        _share((swapped == human).astype(float), ones, n_bootstrap, seed, confidence),
        _share((combined == human).astype(float), ones, n_bootstrap, seed, confidence),
    )


@dataclass(frozen=True)
class LengthBias:
    n: int
    judge_prefers_longer: Estimate
    human_prefers_longer: Estimate
    difference: Estimate
    p_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "judge_prefers_longer": self.judge_prefers_longer.to_dict(),
            "human_prefers_longer": self.human_prefers_longer.to_dict(),
            "difference": self.difference.to_dict(),
            "p_value": clean(self.p_value),
        }


def length_bias(
    judge: np.ndarray,
    human: np.ndarray,
    length_a: np.ndarray,
    length_b: np.ndarray,
    *,
    n_bootstrap: int,
    seed: int,
    confidence: float,
) -> LengthBias:
    longer = np.where(length_a > length_b, PREF_A, np.where(length_b > length_a, PREF_B, PREF_TIE))
    used = (longer != PREF_TIE) & (judge != PREF_TIE) & (human != PREF_TIE)
    j = (judge[used] == longer[used]).astype(float)
    h = (human[used] == longer[used]).astype(float)
    if j.size == 0:
        empty = Estimate(None, None, None)
        return LengthBias(0, empty, empty, empty, None)
    ones = np.ones_like(j)
    diff = estimate(
        j.mean() - h.mean(),
        bootstrap(lambda i: j[i].mean(axis=1) - h[i].mean(axis=1), j.size, n_bootstrap, seed),
        confidence,
    )
    only_judge, only_human = int(np.sum((j == 1) & (h == 0))), int(np.sum((j == 0) & (h == 1)))
    p_value = binomtest(only_judge, only_judge + only_human).pvalue if only_judge + only_human else None
    return LengthBias(
        j.size,
        _share(j, ones, n_bootstrap, seed, confidence),
        _share(h, ones, n_bootstrap, seed, confidence),
        diff,
        p_value,
    )


@dataclass(frozen=True)
class PairwiseReport:
    n: int
    agreement: Estimate
    kappa: Estimate
    krippendorff_alpha: Estimate
    pearson: Estimate
    spearman: Estimate
    kendall: Estimate
    judge_ties: int
    human_ties: int
    position_bias: PositionBias | None
    length_bias: LengthBias | None
    mapping: MappingReport | None
    classical: MeanEstimate
    ppi: PPIResult | None
    n_bootstrap: int
    seed: int
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        ppi = self.ppi.to_dict() if self.ppi else None
        return {
            "n": self.n,
            "scale": "pairwise",
            "agreement": self.agreement.to_dict(),
            "kappa": self.kappa.to_dict(),
            "kappa_weights": None,
            "krippendorff_alpha": self.krippendorff_alpha.to_dict(),
            "alpha_level": "nominal",
            "pearson": self.pearson.to_dict(),
            "spearman": self.spearman.to_dict(),
            "kendall": self.kendall.to_dict(),
            "judge_ties": self.judge_ties,
            "human_ties": self.human_ties,
            "position_bias": self.position_bias.to_dict() if self.position_bias else None,
            "length_bias": self.length_bias.to_dict() if self.length_bias else None,
            "mapping": self.mapping.to_dict() if self.mapping else None,
            "estimand": "share of human preferences for the second output (ties count half)",
            "classical": self.classical.to_dict(),
            "ppi": ppi["ppi"] if ppi else None,
            "ppi_plain": ppi["ppi_plain"] if ppi else None,
            "effective_sample_size": ppi["effective_sample_size"] if ppi else None,
            "n_unlabeled": self.ppi.n_unlabeled if self.ppi else 0,
            "n_bootstrap": self.n_bootstrap,
            "seed": self.seed,
            "confidence": self.confidence,
        }


def calibrate_pairwise(
    judge: Any,
    human: Any,
    *,
    judge_swapped: Any = None,
    length_a: Any = None,
    length_b: Any = None,
    unlabeled: Any = None,
    folds: int = 5,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairwiseReport:
    """Everything we can say about a pairwise judge from (judge, human) preferences on the same pairs."""
    check_confidence(confidence)
    j, h = as_preferences(judge, "judge preferences"), as_preferences(human, "human preferences")
    if j.size != h.size:
        raise StatisticsError(f"judge and human preferences differ in length ({j.size} vs {h.size})")
    if j.size < MIN_PAIRS:
        raise StatisticsError(f"need at least {MIN_PAIRS} labelled pairs, got {j.size}")
    if np.all(h == h[0]):
        raise StatisticsError(f"human preferences are constant (all {h[0]:g}); agreement is undefined")
    n = j.size
    values, codes = np.unique(np.concatenate([j, h]), return_inverse=True)
    jc, hc, k = codes[:n], codes[n:], values.size

    def tables(i: np.ndarray) -> np.ndarray:
        return resampled.confusion(jc, hc, k, i)

    agree = estimate(
        np.mean(j == h), bootstrap(lambda i: (jc[i] == hc[i]).mean(axis=1), n, n_bootstrap, seed), confidence
    )
    kappa = estimate(
        cohen_kappa_score(jc, hc),
        bootstrap(lambda i: resampled.kappa_from_confusion(tables(i), None), n, n_bootstrap, seed),
        confidence,
    )
    alpha = estimate(
        krippendorff.alpha(reliability_data=np.vstack([j, h]), level_of_measurement="nominal"),
        bootstrap(lambda i: resampled.alpha_from_confusion(tables(i), values, "nominal"), n, n_bootstrap, seed),
        confidence,
    )
    pearson, spearman, kendall = correlations(
        j - 1.0, h - 1.0, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence
    )
    swap = None
    if judge_swapped is not None:
        s = as_preferences(judge_swapped, "judge preferences (swapped order)")
        if s.size != n:
            raise StatisticsError(f"swapped-order preferences differ in length ({s.size} vs {n})")
        swap = position_bias(j, s, h, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    lengths = None
    if (length_a is None) != (length_b is None):
        raise StatisticsError("length bias needs both length_a and length_b")
    if length_a is not None:
        la, lb = as_scores(length_a, "lengths of A"), as_scores(length_b, "lengths of B")
        if la.size != n or lb.size != n:
            raise StatisticsError(f"lengths differ in count from the preferences ({la.size}, {lb.size} vs {n})")
        lengths = length_bias(j, h, la, lb, n_bootstrap=n_bootstrap, seed=seed, confidence=confidence)
    informative = not np.all(j == j[0])
    mapping = fit_mapping(j - 1.0, h - 1.0, folds=folds, seed=seed, metric="brier") if informative else None
    u = as_preferences(unlabeled, "unlabeled judge preferences") - 1.0 if unlabeled is not None else None
    classical, ppi = estimate_mean(
        j - 1.0, h - 1.0, u, map_scores=informative, folds=folds, seed=seed, confidence=confidence
    )
    return PairwiseReport(
        n,
        agree,
        kappa,
        alpha,
        pearson,
        spearman,
        kendall,
        int(np.sum(j == PREF_TIE)),
        int(np.sum(h == PREF_TIE)),
        swap,
        lengths,
        mapping,
        classical,
        ppi,
        n_bootstrap,
        seed,
        confidence,
    )
