"""LLM-as-judge: rubrics, strict answer parsing, and calibration against human ratings.

The runner (async judge calls, cache, CLI) builds on these; calibration is pure statistics.
"""

from workbench.judge.answers import ParsedAnswer, parse_answer, swap_preference
from workbench.judge.rubrics import (
    PAIRWISE_A,
    PAIRWISE_B,
    PAIRWISE_TIE,
    PLACEHOLDERS,
    BinaryScale,
    LikertScale,
    PairwiseScale,
    ParseSpec,
    Rubric,
    default_rubric_dirs,
    get_rubric,
    load_rubric,
    load_rubrics,
)

__all__ = [
    "PAIRWISE_A",
    "PAIRWISE_B",
    "PAIRWISE_TIE",
    "PLACEHOLDERS",
    "BinaryScale",
    "LikertScale",
    "PairwiseScale",
    "ParseSpec",
    "ParsedAnswer",
    "Rubric",
    "default_rubric_dirs",
    "get_rubric",
    "load_rubric",
    "load_rubrics",
    "parse_answer",
    "swap_preference",
]
