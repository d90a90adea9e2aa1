"""Golden-set candidates: PII redaction, near-duplicate clustering, priority scoring and building.

Pure functions only (no store, no I/O): the store integration reads traces and feedback, calls
``build_candidates`` / ``explain_candidates`` and upserts the result by ``cluster_key``.
"""

from workbench.candidates.build import (
    CandidateBuild,
    build_candidates,
    effective_feedback,
    explain_candidates,
    identity,
)
from workbench.candidates.cluster import (
    DEFAULT_THRESHOLD,
    Cluster,
    cluster_key,
    cluster_texts,
    comparison_text,
    normalize_text,
)
from workbench.candidates.redact import PII_KINDS, PLACEHOLDERS, redact_messages, redact_text, redact_with_counts
from workbench.candidates.score import (
    DEFAULT_WEIGHTS,
    LABELS,
    NEGATIVE_LABELS,
    POSITIVE_LABELS,
    CandidateConfig,
    Evidence,
    ScoreBreakdown,
    interpret_feedback,
    is_negative_comment,
    score_evidence,
)

from .service import CandidateExplanation, RefreshStats, explain_candidate, refresh_candidates

__all__ = [
    "CandidateExplanation",
    "RefreshStats",
    "explain_candidate",
    "refresh_candidates",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS",
    "LABELS",
    "NEGATIVE_LABELS",
    "PII_KINDS",
    "PLACEHOLDERS",
    "POSITIVE_LABELS",
    "CandidateBuild",
    "CandidateConfig",
    "Cluster",
    "Evidence",
    "ScoreBreakdown",
    "build_candidates",
    "cluster_key",
    "cluster_texts",
    "comparison_text",
    "effective_feedback",
    "explain_candidates",
    "identity",
    "interpret_feedback",
    "is_negative_comment",
    "normalize_text",
    "redact_messages",
    "redact_text",
    "redact_with_counts",
    "score_evidence",
]
