"""One call for everything: agreement, mapping, classical vs PPI estimates, per-group breakdown.

``calibrate(judge, human, ...).to_dict()`` is what ``workbench judge calibrate --json`` prints. Its
top-level keys include ``n, pearson, spearman, kendall, kappa, krippendorff_alpha, mapping, ppi,
classical``; statistics are ``{estimate, ci_low, ci_high}``; ``ppi`` is the power-tuned PPI++
estimate (``ppi_plain`` the untuned one) and is null when no unlabelled judge scores were given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from workbench.errors import StatisticsError
from workbench.judge.calibration.agreement import MAX_CATEGORIES, Agreement, agreement
from workbench.judge.calibration.base import DEFAULT_BOOTSTRAP, as_scores, check_pairs, distinct
from workbench.judge.calibration.groups import MIN_GROUP_N, GroupResult, by_group
from workbench.judge.calibration.mapping import MappingReport, fit_mapping
from workbench.judge.calibration.ppi import MeanEstimate, PPIResult, estimate_mean

__all__ = ["CalibrationReport", "calibrate", "detect_scale"]

ScaleArg = Literal["auto", "ordinal", "continuous", "binary"]


def detect_scale(human: Any, max_categories: int = MAX_CATEGORIES) -> Literal["ordinal", "continuous", "binary"]:
    """binary if every rating is 0 or 1; ordinal with at most ``max_categories`` distinct values; else continuous."""
    y = as_scores(human, "human scores")
    if np.isin(y, (0.0, 1.0)).all():
        return "binary"
    return "ordinal" if distinct(y).size <= max_categories else "continuous"


@dataclass(frozen=True)
class CalibrationReport:
    agreement: Agreement
    mapping: MappingReport
    classical: MeanEstimate
    ppi: PPIResult | None
    groups: tuple[GroupResult, ...]
    notes: tuple[str, ...]
    settings: dict[str, Any]

    @property
    def n(self) -> int:
        return self.agreement.n

    def to_dict(self) -> dict[str, Any]:
        agree = self.agreement.to_dict()
        ppi = self.ppi.to_dict() if self.ppi else None
        return {
            "n": self.n,
            "n_unlabeled": self.ppi.n_unlabeled if self.ppi else 0,
            "scale": agree["scale"],
            **{
                key: agree[key]
                for key in (
                    "pearson",
                    "spearman",
                    "kendall",
                    "kappa",
                    "krippendorff_alpha",
                    "kappa_weights",
                    "alpha_level",
                    "alignment",
                    "binary",
                )
            },
            "mapping": self.mapping.to_dict(),
            "estimand": "mean human rating",
            "classical": self.classical.to_dict(),
            "ppi": ppi["ppi"] if ppi else None,
            "ppi_plain": ppi["ppi_plain"] if ppi else None,
            "effective_sample_size": ppi["effective_sample_size"] if ppi else None,
            "groups": [group.to_dict() for group in self.groups],
            "notes": list(self.notes),
            "settings": dict(self.settings),
        }


def _notes(agree: Agreement, ppi: PPIResult | None, unlabeled: bool, n: int, min_group_n: int) -> list[str]:
    notes = []
    if agree.alignment == "quantile":
        notes.append(
            "judge and human use different scales: kappa and alpha were computed after matching the "
            "judge's score distribution to the human one (they measure ordering, not bias)"
        )
    if agree.binary is not None and agree.binary.threshold_source == "youden_j_in_sample":
        notes.append("binary metrics use a threshold chosen on the same data (Youden's J): optimistic")
    if not unlabeled:
        notes.append("no unlabelled judge scores given: PPI not computed (classical estimate only)")
    elif ppi is not None and ppi.lam == 0.0:
        notes.append("PPI++ put zero weight on the judge (lambda = 0): it carries no usable signal here")
    if n < min_group_n:
        notes.append(f"n={n} < {min_group_n} labelled pairs: intervals are wide; treat as indicative only")
    return notes


def calibrate(
    judge: Any,
    human: Any,
    *,
    unlabeled: Any = None,
    groups: Sequence[Any] | None = None,
    unlabeled_groups: Sequence[Any] | None = None,
    scale: ScaleArg = "auto",
    threshold: float | None = None,
    positive_at: float | None = None,
    map_scores: bool = True,
    folds: int = 5,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    confidence: float = 0.95,
    min_group_n: int = MIN_GROUP_N,
    max_categories: int = MAX_CATEGORIES,
) -> CalibrationReport:
    """Calibrate judge scores against human ratings of the same items.

    ``unlabeled``: judge scores of items nobody rated (for PPI). ``groups`` / ``unlabeled_groups``: one
    key per item (a string or a mapping such as ``{"prompt_version": 3}``) for the per-group breakdown.
    ``scale``: how to treat the human ratings (``auto``: see :func:`detect_scale`). ``threshold``: cut
    for a continuous judge on a binary task (default: Youden's J). ``positive_at``: on a non-binary
    scale, the human rating that counts as "good" for the recommended judge threshold.
    """
    x, y = check_pairs(judge, human)
    if unlabeled_groups is not None and groups is None:
        raise StatisticsError("unlabeled groups given without groups for the labelled pairs")
    kind = detect_scale(y, max_categories) if scale == "auto" else scale
    if kind not in ("ordinal", "continuous", "binary"):
        raise StatisticsError(f"scale must be auto, ordinal, continuous or binary, got {scale!r}")
    u = as_scores(unlabeled, "unlabeled judge scores") if unlabeled is not None else None
    agree = agreement(
        x,
        y,
        ordinal=kind == "ordinal",
        binary=kind == "binary",
        threshold=threshold,
        n_bootstrap=n_bootstrap,
        seed=seed,
        confidence=confidence,
        max_categories=max_categories,
    )
    mapping = fit_mapping(x, y, binary=kind == "binary", folds=folds, seed=seed, positive_at=positive_at)
    classical, ppi = estimate_mean(x, y, u, map_scores=map_scores, folds=folds, seed=seed, confidence=confidence)
    settings = {
        "n_bootstrap": n_bootstrap,
        "seed": seed,
        "confidence": confidence,
        "folds": folds,
        "map_scores": map_scores,
        "min_group_n": min_group_n,
        "max_categories": max_categories,
    }
    group_results: tuple[GroupResult, ...] = ()
    if groups is not None:

        def one(idx: np.ndarray, u_idx: np.ndarray | None) -> CalibrationReport:
            return calibrate(
                x[idx],
                y[idx],
                unlabeled=u[u_idx] if u is not None and u_idx is not None else None,
                scale=kind,
                threshold=threshold,
                positive_at=positive_at,
                map_scores=map_scores,
                folds=folds,
                n_bootstrap=n_bootstrap,
                seed=seed,
                confidence=confidence,
                min_group_n=min_group_n,
                max_categories=max_categories,
            )

        # unlabelled scores without group keys cannot be split, so groups then get no PPI (using all of
        # them would estimate the mean of a different population)
        group_results = by_group(
            groups,
            x.size,
            one,
            unlabeled_groups=unlabeled_groups,
            n_unlabeled=0 if u is None else u.size,
            min_n=min_group_n,
        )
    notes = _notes(agree, ppi, u is not None, x.size, min_group_n)
    return CalibrationReport(agree, mapping, classical, ppi, group_results, tuple(notes), settings)
