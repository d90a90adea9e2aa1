"""Priority of a golden-set candidate: what users said, how many of them, how recently, and the judge.

Every feedback row becomes one piece of :class:`Evidence` with a *label* (the signal plus its polarity:
``thumbs_down``, ``rating_high``, ``comment_negative``...) and a strength in [0, 1]. A cluster's score
is explainable, every term is returned in a :class:`ScoreBreakdown`::

    contribution(label) = weight[label] * max strength of that label in the cluster
    negative  = sum of negative contributions         positive = sum of positive contributions
    conflict  = conflict_weight * min(negative, positive)   (both polarities: disagreement is useful)
    signal    = max(0, negative - positive_discount * positive + conflict)
    users     = 1 + users_weight * log2(distinct users with a negative signal)
    size      = 1 + size_weight * log2(traces in the cluster)
    judge     = judge_weight * |judge score - user score|   (user score = positive / (negative + positive))
    recency   = 0.5 ** (age of the newest signal / half_life_days)
    priority  = (signal * users * size + judge) * recency

Max (not sum) per label keeps one noisy detector firing five times from outranking five people; breadth
is rewarded through ``users`` and ``size`` instead, with diminishing (log) returns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from workbench.errors import ValidationError
from workbench.models import Feedback

__all__ = [
    "DEFAULT_WEIGHTS",
    "LABELS",
    "NEGATIVE_LABELS",
    "POSITIVE_LABELS",
    "CandidateConfig",
    "Evidence",
    "ScoreBreakdown",
    "interpret_feedback",
    "is_negative_comment",
    "score_evidence",
]

# Strongest first: the order also breaks ties when picking a cluster's primary signal.
NEGATIVE_LABELS: tuple[str, ...] = (
    "correction",
    "pushback",
    "thumbs_down",
    "rating_low",
    "comment_negative",
    "repeat_ask",
    "regenerate",
    "abandon",
)
POSITIVE_LABELS: tuple[str, ...] = ("thumbs_up", "rating_high", "positive")
NEUTRAL_LABELS: tuple[str, ...] = ("comment",)
LABELS: tuple[str, ...] = NEGATIVE_LABELS + POSITIVE_LABELS + NEUTRAL_LABELS

DEFAULT_WEIGHTS: dict[str, float] = {
    # negative: an explicit fix or rejection says most, re-asking/regenerating is medium, leaving is weak
    "correction": 1.0,
    "pushback": 0.9,
    "thumbs_down": 0.9,
    "rating_low": 0.8,
    "comment_negative": 0.5,
    "repeat_ask": 0.5,
    "regenerate": 0.45,
    "abandon": 0.15,
    # positive: reduce the signal (times positive_discount)
    "thumbs_up": 0.8,
    "rating_high": 0.6,
    "positive": 0.4,
}

_NOT_NEGATIVE = re.compile(
    r"(?i)\b(?:not|nothing|never|no|without|zero)\s+(?:bad|wrong|terrible|awful|useless|errors?|mistakes?|issues?)\b"
)
_NEGATIVE_WORDS = re.compile(
    r"(?i)\b(?:wrong|incorrect|inaccurate|untrue|false|unhelpful|useless|bad|terrible|awful|broken|nonsense"
    r"|outdated|irrelevant|misleading|confusing|mistakes?|errors?|hallucinat\w*|made\s+up|wtf"
    r"|(?:does|did|do)\s*(?:n['’]?t|not)\s+work|not\s+(?:correct|right|helpful|useful|true|accurate|what\s+i)"
    r")\b"
)


def is_negative_comment(text: str | None) -> bool:
    """Crude lexicon test for comments like "that's wrong" (but not "not bad at all")."""
    if not text:
        return False
    return _NEGATIVE_WORDS.search(_NOT_NEGATIVE.sub(" ", text)) is not None


class CandidateConfig(BaseModel):
    """Every knob of candidate building in one place; partial ``weights`` overrides merge onto defaults.

    Construct with keyword arguments; bad values raise ``workbench.errors.ValidationError`` naming the
    field (e.g. ``half_life_days``, ``weights.thumbs_sideways``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    positive_discount: float = Field(0.6, ge=0, description="how much positive signal cancels negative")
    conflict_weight: float = Field(0.5, ge=0, description="bonus for clusters with both polarities")
    users_weight: float = Field(0.5, ge=0, description="per doubling of distinct negative users")
    size_weight: float = Field(0.25, ge=0, description="per doubling of traces in the cluster")
    judge_weight: float = Field(0.5, ge=0, description="per unit of judge/user disagreement")
    half_life_days: float = Field(7.0, gt=0, description="signals lose half their weight per half-life")
    cluster_threshold: float = Field(88.0, gt=0, le=100, description="rapidfuzz ratio for near-duplicates")
    negative_comment_strength: float = Field(0.6, ge=0, le=1, description="strength of a negative comment")
    rating_scale: tuple[float, float] = Field((1.0, 5.0), description="used when feedback has no scale")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise ValidationError(_one_line(exc)) from None

    @field_validator("weights", mode="before")
    @classmethod
    def _merge_weights(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        for label, weight in value.items():
            if label not in DEFAULT_WEIGHTS:
                known = ", ".join(DEFAULT_WEIGHTS)
                raise ValueError(f"unknown signal {label!r} (known: {known})")
            if not isinstance(weight, int | float) or not math.isfinite(weight) or weight < 0:
                raise ValueError(f"weight of {label!r} must be a finite number >= 0, got {weight!r}")
        return {**DEFAULT_WEIGHTS, **value}

    @field_validator("rating_scale")
    @classmethod
    def _check_scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] >= value[1]:
            raise ValueError(f"low end must be below high end, got {value!r}")
        return value


def _one_line(exc: PydanticValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "config"
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{field}: {message}")
    return f"{exc.title}: " + "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Evidence:
    """One feedback row as the scorer sees it."""

    label: str
    strength: float
    user: str
    at: datetime
    feedback_id: str
    trace_id: str

    @property
    def polarity(self) -> int:
        """-1 negative, +1 positive, 0 neutral."""
        if self.label in NEGATIVE_LABELS:
            return -1
        return 1 if self.label in POSITIVE_LABELS else 0


def _utc(moment: datetime) -> datetime:
    """Naive datetimes (SQLite hands them back) are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _rating_scale(feedback: Feedback, default: tuple[float, float]) -> tuple[float, float]:
    meta = feedback.metadata
    scale = meta.get("scale")
    if scale is None and "scale_min" in meta and "scale_max" in meta:
        scale = (meta["scale_min"], meta["scale_max"])
    if scale is None:
        return default
    try:
        low, high = float(scale[0]), float(scale[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise ValidationError(f"feedback {feedback.id}: metadata.scale must be [low, high], got {scale!r}") from None
    if not low < high:
        raise ValidationError(f"feedback {feedback.id}: metadata.scale low must be below high, got {scale!r}")
    return low, high


def _label_and_strength(feedback: Feedback, config: CandidateConfig) -> tuple[str, float]:
    signal, value = feedback.signal, feedback.value
    if signal == "thumbs":
        if value not in (0, 1):
            raise ValidationError(
                f"feedback {feedback.id}: value of a thumbs vote must be 1 (up) or 0 (down), got {value!r}"
            )
        return ("thumbs_up" if value == 1 else "thumbs_down"), 1.0
    if signal == "rating":
        low, high = _rating_scale(feedback, config.rating_scale)
        if value is None or not low <= value <= high:
            raise ValidationError(
                f"feedback {feedback.id}: value of a rating must be within [{low:g}, {high:g}], got {value!r}"
            )
        mid = (low + high) / 2
        if value <= mid:  # the midpoint counts as negative: "meh" is worth a look
            return "rating_low", 0.5 + 0.5 * (mid - value) / (mid - low)
        return "rating_high", 0.5 + 0.5 * (value - mid) / (high - mid)
    if signal == "correction":
        if not (feedback.text or "").strip():
            raise ValidationError(f"feedback {feedback.id}: text of a correction is empty")
        return "correction", 1.0
    if signal == "comment":
        if is_negative_comment(feedback.text):
            return "comment_negative", config.negative_comment_strength
        return "comment", 0.0
    if signal in ("repeat_ask", "regenerate", "abandon", "pushback", "positive"):
        return signal, 1.0
    raise ValidationError(f"feedback {feedback.id}: unknown signal {signal!r}")


def interpret_feedback(feedback: Feedback, *, user: str, config: CandidateConfig | None = None) -> Evidence:
    """Label one (already latest-vote-filtered) feedback row; ``user`` is who it speaks for.

    Thumbs: value 1 up, 0 down. Rating: ``metadata["scale"]`` (or ``scale_min``/``scale_max``, else the
    config default); <= midpoint is negative, strength 0.5 at the midpoint rising to 1 at the end of the
    scale. Correction: negative. Comment: neutral unless it uses negative words. Implicit signals: their
    own label. The row's ``strength`` multiplies the result.
    """
    config = config or CandidateConfig()
    if not (isinstance(feedback.strength, int | float) and 0 <= feedback.strength <= 1):
        raise ValidationError(f"feedback {feedback.id}: strength must be within [0, 1], got {feedback.strength!r}")
    label, strength = _label_and_strength(feedback, config)
    return Evidence(
        label=label,
        strength=strength * feedback.strength,
        user=user,
        at=_utc(feedback.created_at),
        feedback_id=feedback.id,
        trace_id=feedback.trace_id,
    )


@dataclass(frozen=True)
class ScoreBreakdown:
    """All terms of one priority, so a ranking can be explained (and tested) term by term."""

    contributions: dict[str, float]
    negative: float
    positive: float
    conflict: float
    signal: float
    users: int
    users_factor: float
    count: int
    size_factor: float
    judge_disagreement: float | None
    judge_term: float
    age_days: float
    recency: float
    priority: float
    primary_signal: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self) -> str:
        """One line a person can check by hand."""
        parts = ", ".join(f"{label} {value:.2f}" for label, value in self.contributions.items())
        return (
            f"priority {self.priority:.3f} = (signal {self.signal:.3f} x users {self.users_factor:.3f} "
            f"[{self.users}] x size {self.size_factor:.3f} [{self.count}] + judge {self.judge_term:.3f}) "
            f"x recency {self.recency:.3f} [{self.age_days:.1f} d]; signal = negative {self.negative:.3f} "
            f"- discounted positive {self.positive:.3f} + conflict {self.conflict:.3f} ({parts})"
        )


def score_evidence(
    evidence: Sequence[Evidence],
    *,
    count: int,
    now: datetime,
    config: CandidateConfig | None = None,
    judge_score: float | None = None,
) -> ScoreBreakdown:
    """Score one cluster: its evidence, its size ``count`` and optionally the judge's mean score in [0, 1]."""
    config = config or CandidateConfig()
    if not evidence:
        raise ValidationError("evidence: a cluster needs at least one feedback row to be scored")
    if count < 1:
        raise ValidationError(f"count: must be >= 1, got {count!r}")
    if judge_score is not None and not (isinstance(judge_score, int | float) and 0 <= judge_score <= 1):
        raise ValidationError(f"judge_score: must be within [0, 1], got {judge_score!r}")
    best: dict[str, float] = {}
    for item in evidence:
        if item.label not in LABELS:
            raise ValidationError(f"evidence {item.feedback_id}: unknown signal {item.label!r}")
        if item.label in DEFAULT_WEIGHTS:
            best[item.label] = max(best.get(item.label, 0.0), item.strength)
    contributions = {
        label: config.weights[label] * best[label] for label in NEGATIVE_LABELS + POSITIVE_LABELS if label in best
    }
    negative = sum(v for label, v in contributions.items() if label in NEGATIVE_LABELS)
    positive = sum(v for label, v in contributions.items() if label in POSITIVE_LABELS)
    conflict = config.conflict_weight * min(negative, positive)
    signal = max(0.0, negative - config.positive_discount * positive + conflict)

    users = len({item.user for item in evidence if item.polarity < 0})
    users_factor = 1.0 + config.users_weight * math.log2(max(users, 1))
    size_factor = 1.0 + config.size_weight * math.log2(count)

    disagreement: float | None = None
    judge_term = 0.0
    if judge_score is not None:
        user_score = positive / (negative + positive) if negative + positive > 0 else 0.5
        disagreement = abs(float(judge_score) - user_score)
        judge_term = config.judge_weight * disagreement

    newest = max(_utc(item.at) for item in evidence)
    age_days = max(0.0, (_utc(now) - newest).total_seconds() / 86400.0)
    recency = 0.5 ** (age_days / config.half_life_days)
    priority = (signal * users_factor * size_factor + judge_term) * recency

    present = [label for label in NEGATIVE_LABELS if label in best]  # strongest kind first
    primary = max(present, key=lambda label: contributions[label], default=None)  # first max wins ties
    return ScoreBreakdown(
        contributions=contributions,
        negative=negative,
        positive=positive,
        conflict=conflict,
        signal=signal,
        users=users,
        users_factor=users_factor,
        count=count,
        size_factor=size_factor,
        judge_disagreement=disagreement,
        judge_term=judge_term,
        age_days=age_days,
        recency=recency,
        priority=priority,
        primary_signal=primary,
    )
