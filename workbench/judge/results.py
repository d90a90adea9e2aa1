"""What a judge run returns: the items, each verdict, run statistics and position bias.

Kept apart from the runner so callers (CLI, TUI, reports) can use the result types without the
HTTP machinery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scipy.stats import binomtest

from workbench.judge.rubrics import PAIRWISE_A, PAIRWISE_B
from workbench.models import JudgeScore

__all__ = ["JudgeItem", "JudgeResult", "JudgeRun", "Order", "PositionBiasSummary", "RunStats", "position_bias"]

Order = Literal["ab", "ba"] | None


@dataclass(frozen=True)
class JudgeItem:
    """What to judge: one output, or (pairwise) ``output`` vs ``output_b`` for the same input."""

    trace_id: str
    input: str
    output: str
    other_trace_id: str | None = None
    output_b: str | None = None
    reference: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class JudgeResult:
    """One verdict of this run; ``cached``: served from the cache, no HTTP call."""

    item: JudgeItem
    order: Order
    score: JudgeScore
    cached: bool
    attempts: int


@dataclass
class RunStats:
    calls: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    ok: int = 0
    unparsed: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    unpriced_calls: int = 0
    elapsed_s: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rate = (self.calls - self.cache_hits) / self.elapsed_s if self.elapsed_s > 0 else None
        return {
            **{k: v for k, v in self.__dict__.items() if k != "failures"},
            "failures": dict(self.failures),
            "api_calls_per_s": rate,
        }


@dataclass(frozen=True)
class PositionBiasSummary:
    """Pairs with a parsed verdict in both orders; ``first_position_share`` is 0.5 for a neutral judge."""

    pairs: int
    consistent: int
    inconsistent_first: int
    inconsistent_second: int
    inconsistent_tie: int
    first_position_share: float | None
    p_value: float | None

    @property
    def consistency(self) -> float | None:
        return self.consistent / self.pairs if self.pairs else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "consistency": self.consistency}


def position_bias(results: Sequence[JudgeResult]) -> PositionBiasSummary:
    """From verdicts in the original numbering: shown first = A in order ab, B in order ba."""
    verdicts: dict[tuple[str, str | None], dict[Order, float]] = {}
    for result in results:
        if result.order is not None and result.score.score is not None:
            verdicts.setdefault((result.item.trace_id, result.item.other_trace_id), {})[result.order] = (
                result.score.score
            )
    both = [(v["ab"], v["ba"]) for v in verdicts.values() if "ab" in v and "ba" in v]
    consistent = sum(ab == ba for ab, ba in both)
    inc_first = sum(ab == PAIRWISE_A and ba == PAIRWISE_B for ab, ba in both)
    inc_second = sum(ab == PAIRWISE_B and ba == PAIRWISE_A for ab, ba in both)
    first = sum(ab == PAIRWISE_A for ab, _ in both) + sum(ba == PAIRWISE_B for _, ba in both)
    decided = sum(ab in (PAIRWISE_A, PAIRWISE_B) for ab, _ in both) + sum(
        ba in (PAIRWISE_A, PAIRWISE_B) for _, ba in both
    )
    p_value = float(binomtest(inc_first, inc_first + inc_second).pvalue) if inc_first + inc_second else None
    return PositionBiasSummary(
        len(both),
        consistent,
        inc_first,
        inc_second,
        len(both) - consistent - inc_first - inc_second,
        first / decided if decided else None,
        p_value,
    )


@dataclass
class JudgeRun:
    rubric_id: str
    rubric_version: int
    model: str
    results: list[JudgeResult]
    stats: RunStats
    position_bias: PositionBiasSummary | None

    def to_dict(self, *, results: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rubric_id": self.rubric_id,
            "rubric_version": self.rubric_version,
            "model": self.model,
            "stats": self.stats.to_dict(),
            "position_bias": self.position_bias.to_dict() if self.position_bias else None,
        }
        if results:
            out["results"] = [
                {
                    "trace_id": r.score.trace_id,
                    "other_trace_id": r.score.other_trace_id,
                    "order": r.order,
                    "score": r.score.score,
                    "parse_status": r.score.parse_status,
                    "parse_error": r.score.parse_error,
                    "judge_model_version": r.score.judge_model_version,
                    "cached": r.cached,
                    "attempts": r.attempts,
                    "score_id": r.score.id,
                }
                for r in self.results
            ]
        return out
