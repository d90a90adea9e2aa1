"""Calibration of judge scores against human ratings: pure functions, numpy in, frozen dataclasses out.

Every result has ``to_dict()`` (JSON-safe: NaN becomes null). Start with :func:`calibrate` (pointwise)
or :func:`calibrate_pairwise`; the pieces are exported for callers who need only one of them.
"""

from workbench.judge.calibration.agreement import (
    MAX_CATEGORIES,
    Agreement,
    BinaryMetrics,
    agreement,
    align_to_human,
    common_categories,
    correlations,
)
from workbench.judge.calibration.base import DEFAULT_BOOTSTRAP, MIN_PAIRS, Estimate, as_scores, check_pairs
from workbench.judge.calibration.fields import (
    Rows,
    extract_keys,
    extract_numbers,
    extract_preferences,
    get_path,
    parse_jsonl,
)
from workbench.judge.calibration.groups import MIN_GROUP_N, GroupResult, group_label
from workbench.judge.calibration.mapping import (
    MappingReport,
    ScoreMapping,
    Threshold,
    crossfit,
    fit_isotonic,
    fit_mapping,
    recommend_threshold,
)
from workbench.judge.calibration.pairwise import (
    PREF_A,
    PREF_B,
    PREF_TIE,
    LengthBias,
    PairwiseReport,
    PositionBias,
    as_preferences,
    calibrate_pairwise,
    ratings_to_preferences,
)
from workbench.judge.calibration.ppi import MeanEstimate, PPIResult, classical_mean, estimate_mean, ppi_mean
from workbench.judge.calibration.report import CalibrationReport, calibrate, detect_scale

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "MAX_CATEGORIES",
    "MIN_GROUP_N",
    "MIN_PAIRS",
    "PREF_A",
    "PREF_B",
    "PREF_TIE",
    "Agreement",
    "BinaryMetrics",
    "CalibrationReport",
    "Estimate",
    "GroupResult",
    "LengthBias",
    "MappingReport",
    "MeanEstimate",
    "PPIResult",
    "PairwiseReport",
    "PositionBias",
    "Rows",
    "ScoreMapping",
    "Threshold",
    "agreement",
    "align_to_human",
    "as_preferences",
    "as_scores",
    "calibrate",
    "calibrate_pairwise",
    "check_pairs",
    "classical_mean",
    "common_categories",
    "correlations",
    "crossfit",
    "detect_scale",
    "estimate_mean",
    "extract_keys",
    "extract_numbers",
    "extract_preferences",
    "fit_isotonic",
    "fit_mapping",
    "get_path",
    "group_label",
    "parse_jsonl",
    "ppi_mean",
    "ratings_to_preferences",
    "recommend_threshold",
]
