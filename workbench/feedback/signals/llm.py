"""The llm detector family: an LLM reads each reply as a reaction to the previous answer.

For teams with an OpenAI-compatible endpoint. It reuses the judge runner (bounded concurrency,
retries, cost, strict parsing) with the shipped ``reaction`` rubric; verdicts are cached by the exact
messages sent (in the store with ``workbench mine --detector llm``), so re-mining costs nothing. The
rubric's label maps to probabilities (a verdict is 1.0, else 0.0) that the same reaction detectors
read; abandonment is the learned abandonment model fed with these verdicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

from .base import SessionView
from .learned import REACTIONS, Model, pair_of

__all__ = ["ReactionJudge", "reaction_judge", "score_views_llm"]

# rubric label (score) -> the reactions it means
_MEANS = {1.0: ("pushback", "repeat_ask"), 2.0: ("pushback",), 3.0: ("repeat_ask",), 4.0: (), 5.0: ("positive",)}


@dataclass
class ReactionJudge:
    """A judge runner with the reaction rubric; ``cost`` and ``calls`` add up over the runs."""

    runner: Any
    cost: float = 0.0
    calls: int = 0
    cache_hits: int = 0
    unparsed: int = 0
    stats: list[Any] = field(default_factory=list)

    def judge(self, items: Sequence[Any]) -> dict[str, float | None]:
        """Score per item's trace id (None: the judge's answer could not be read)."""
        if not items:
            return {}
        run = self.runner.run_sync(items)
        self.calls += run.stats.calls - run.stats.cache_hits
        self.cache_hits += run.stats.cache_hits
        self.unparsed += run.stats.unparsed + run.stats.errors
        self.cost += run.stats.cost or 0.0
        return {r.item.trace_id: r.score.score for r in run.results}


def reaction_judge(
    *,
    model: str | None,
    base_url: str | None = None,
    api_key: str | None = None,
    store: Any = None,
    client: Any = None,
    concurrency: int = 8,
) -> ReactionJudge:
    """The reaction judge over an endpoint; cached in ``store`` when given (else in memory)."""
    import os

    from workbench.judge.rubrics import get_rubric
    from workbench.judge.runner import JudgeConfig, JudgeRunner, MemoryCache

    if not model:
        raise ConfigError("--detector llm needs --model (the judge model to ask)")
    cache: Any = MemoryCache()
    if store is not None:
        from workbench.judge.service import StoreCache

        cache = StoreCache(store)
    config = JudgeConfig(
        model=model,
        base_url=base_url or os.environ.get("OPENAI_BASE_URL"),
        api_key=api_key or os.environ.get("OPENAI_API_KEY") or "sk-none",
        concurrency=concurrency,
    )
    return ReactionJudge(JudgeRunner(get_rubric("reaction"), config, cache=cache, client=client))


def score_views_llm(views: Sequence[SessionView], judge: ReactionJudge | None, abandon_model: Model) -> None:
    """Reaction 'probabilities' from the judge's verdicts, then the learned abandonment model."""
    from workbench.judge.results import JudgeItem

    if judge is None:
        raise ConfigError("the llm detector needs a reaction judge (workbench mine --detector llm --model M)")
    items, where = [], {}
    for view in views:
        view.memo["reactions"] = [None] * len(view.turns)
        view.memo["thresholds"] = {
            **{s: 0.5 for s in REACTIONS},
            "abandon": abandon_model.threshold["abandon"],
            **view.config.thresholds(),
        }  # type: ignore[assignment]
        for i in range(1, len(view.turns)):
            pair = pair_of(view, i)
            if pair is None:
                continue
            key = view.turns[i].ask_id
            items.append(JudgeItem(trace_id=key, input=pair.prev, output=pair.answer, context=pair.reply))
            where[key] = (view, i)
    for key, score in judge.judge(items).items():
        view, i = where[key]
        means = _MEANS.get(score, ()) if score is not None else ()
        view.memo["reactions"][i] = {s: float(s in means) for s in REACTIONS}
        view.memo.setdefault("why", {})[i] = {s: {"judge verdict": score} for s in means}  # type: ignore[index]
    from .learned import abandon_probabilities

    abandon_probabilities(views, abandon_model)
