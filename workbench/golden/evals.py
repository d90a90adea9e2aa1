"""Eval refresh: run a prompt version over a golden set through the wrapped client, judge, compare.

Each item is replayed with the new prompt in place of the one its source trace used: the old
prompt, rendered with the variables that trace recorded, is looked up in the item's (redacted)
input and replaced by the new rendering. A prompt without variables is a system prompt and replaces
the first system message (or is put first). An item where neither works is skipped with the
reason, never guessed at. Calls go through the caller's wrapped client, so every answer is a trace
(tagged ``eval``, one session per item, metadata naming set, version, item and run), and the judge
scores those traces (stored, cached) with the item's expected answer as ``{reference}``.

A run is saved as ``golden_sets/NAME/evals/RUN_ID.json`` and compared with the newest earlier run
of the same set under the same rubric version and judge model: mean score with a Student-t
interval per run, and per item (same golden item id) wins, losses and ties, the paired mean
difference with its t interval, and a sign test on wins vs losses.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import orjson
from scipy.stats import binomtest

from workbench.attribution.stats import MeanAggregate, t_interval
from workbench.capture.wrap import trace_id as trace_id_of
from workbench.errors import ConfigError, GoldenSetError, StatisticsError, ValidationError
from workbench.golden.atomic import atomic_write_bytes
from workbench.golden.items import GoldenItem
from workbench.golden.sets import GoldenVersion, load_version, parse_ref, set_dir
from workbench.ids import new_id
from workbench.judge.rubrics import Rubric
from workbench.judge.runner import JudgeConfig, JudgeItem, JudgeRunner
from workbench.judge.service import StoreCache, conversation_text
from workbench.models import Prompt, utcnow
from workbench.prompts import PromptRegistry, parse_prompt_ref
from workbench.store import Store
from workbench.store import exports as export_rows
from workbench.store import prompts as prompt_rows
from workbench.store.exports import TraceContext

__all__ = [
    "EVALS_DIR",
    "Comparison",
    "EvalItem",
    "EvalRun",
    "compare_runs",
    "load_runs",
    "place_prompt",
    "run_eval",
    "summarize",
]

EVALS_DIR = "evals"
_SYSTEM_ROLES = ("system", "developer")
_FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
ClientFactory = Callable[[], Any]


@dataclass
class EvalItem:
    item_id: str
    status: str  # ok (answered and judged), skipped (could not be replayed), error (the call failed)
    trace_id: str | None = None
    score: float | None = None
    parse_status: str | None = None  # the judge's: ok, unparsed, error
    reason: str | None = None


@dataclass(frozen=True)
class Comparison:
    previous_run: str
    previous_prompt: str
    previous_model: str
    n: int  # items scored in both runs
    wins: int
    losses: int
    ties: int
    mean_difference: float | None
    ci_low: float | None
    ci_high: float | None
    sign_test_p: float | None
    items: list[dict[str, Any]]  # item_id, before, after


@dataclass
class EvalRun:
    id: str
    created_at: str
    golden_set: str
    version: int
    file_sha256: str
    prompt: str
    model: str
    rubric_id: str
    rubric_version: int
    judge_model: str
    items: list[EvalItem]
    summary: dict[str, Any] = field(default_factory=dict)
    comparison: Comparison | None = None
    path: str | None = None

    def scores(self) -> dict[str, float]:
        return {i.item_id: i.score for i in self.items if i.score is not None}

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("items", "comparison")}
        out["items"] = [i.__dict__ for i in self.items]
        out["comparison"] = None if self.comparison is None else self.comparison.__dict__
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRun:
        values = dict(data)
        values["items"] = [EvalItem(**i) for i in values.get("items", [])]
        comparison = values.get("comparison")
        values["comparison"] = Comparison(**comparison) if comparison else None
        return cls(**values)


def summarize(scores: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    """n, mean and a Student-t interval (None below two scores)."""
    if not scores:
        return {"n": 0, "mean": None, "ci_low": None, "ci_high": None, "confidence": confidence}
    agg = MeanAggregate.from_values(scores)
    low = high = None
    if agg.n >= 2:
        interval = t_interval(agg, confidence)
        low, high = interval.low, interval.high
    return {"n": agg.n, "mean": agg.value, "ci_low": low, "ci_high": high, "confidence": confidence}


def compare_runs(current: EvalRun, previous: EvalRun, confidence: float = 0.95) -> Comparison:
    """Paired comparison on the items both runs scored (current minus previous)."""
    before, after = previous.scores(), current.scores()
    common = sorted(before.keys() & after.keys())
    diffs = [after[i] - before[i] for i in common]
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    mean = low = high = None
    if diffs:
        agg = MeanAggregate.from_values(diffs)
        mean = agg.value
        if agg.n >= 2:
            interval = t_interval(agg, confidence)
            low, high = interval.low, interval.high
    p_value = float(binomtest(wins, wins + losses).pvalue) if wins + losses else None
    return Comparison(
        previous.id,
        previous.prompt,
        previous.model,
        len(common),
        wins,
        losses,
        len(common) - wins - losses,
        mean,
        low,
        high,
        p_value,
        [{"item_id": i, "before": before[i], "after": after[i]} for i in common],
    )


def load_runs(root: str | Path, name: str) -> list[EvalRun]:
    """Saved runs of a set, oldest first (run ids sort by time)."""
    directory = set_dir(root, name) / EVALS_DIR
    runs = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            runs.append(EvalRun.from_dict(orjson.loads(path.read_bytes())))
        except (orjson.JSONDecodeError, TypeError, KeyError) as exc:
            raise GoldenSetError(f"{path}: not a saved eval run ({exc})") from None
    return runs


# ---------------------------------------------------------------- replaying items


def _render(template: str, variables: Mapping[str, Any] | None) -> str:
    return template.format(**dict(variables or {}))


def place_prompt(
    item: GoldenItem, prompt: Prompt, context: TraceContext | None, old_template: str | None
) -> list[dict[str, Any]] | str:
    """The item's input with ``prompt`` in place of the old one, or the reason it cannot be placed."""
    source = context.trace_id if context else item.provenance.source_trace_id or "(none)"
    variables = context.variables if context else None
    try:
        new_text = _render(prompt.template, variables)
    except (KeyError, IndexError) as exc:
        return f"prompt {prompt.ref} needs variable {exc} that trace {source} did not record"
    except ValueError as exc:
        return f"prompt {prompt.ref} cannot be rendered: {exc}"
    old_text = None
    if old_template is not None:
        try:
            old_text = _render(old_template, variables)
        except (KeyError, IndexError, ValueError):
            old_text = None
    messages = [dict(m) for m in item.input]
    if old_text:
        for message in messages:
            content = message.get("content")
            if isinstance(content, str) and old_text in content:
                message["content"] = content.replace(old_text, new_text, 1)
                return messages
    if not prompt.variables:
        for message in messages:
            if message.get("role") in _SYSTEM_ROLES:
                message["content"] = new_text
                return messages
        return [{"role": "system", "content": new_text}, *messages]
    return (
        f"cannot tell where trace {source} put its prompt in the input (no stored prompt and variables, "
        "or the text was redacted)"
    )


def _output_text(response: Any) -> str:
    choices = getattr(response, "choices", None) or []
    message = choices[0].message if choices else None
    if message is None:
        return ""
    if message.content:
        return str(message.content)
    calls = getattr(message, "tool_calls", None) or []
    return orjson.dumps([c.model_dump(mode="json") for c in calls]).decode() if calls else ""


def _default_model(items: Sequence[GoldenItem]) -> str:
    models = Counter(item.provenance.model for item in items if item.provenance.model)
    if not models:
        raise ValidationError("the golden set names no model; give --model")
    return models.most_common(1)[0][0]


async def _generate(
    make_client: ClientFactory,
    planned: list[tuple[GoldenItem, list[dict[str, Any]]]],
    *,
    model: str,
    prompt: Prompt,
    params: Mapping[str, Any],
    run_id: str,
    version: GoldenVersion,
    concurrency: int,
) -> dict[str, tuple[str | None, str | None, str | None]]:
    """item id -> (trace id, output, error) for every planned item."""
    client = make_client()
    semaphore = asyncio.Semaphore(concurrency)
    results: dict[str, tuple[str | None, str | None, str | None]] = {}

    async def one(item: GoldenItem, messages: list[dict[str, Any]]) -> None:
        extra = {"tools": item.tools} if item.tools else {}
        context = {
            "prompt": prompt,
            "session_id": f"eval-{run_id}-{item.id}",
            "tags": ["eval", f"golden:{version.ref}"],
            "metadata": {
                "golden_set": version.name,
                "golden_version": version.version,
                "golden_item_id": item.id,
                "eval_run": run_id,
            },
        }
        async with semaphore:
            try:
                response = await client.chat.completions.create(
                    model=model, messages=messages, **params, **extra, workbench=context
                )
            except _FATAL as exc:
                raise ConfigError(
                    f"model endpoint refused the request (HTTP {exc.status_code}): {str(exc).splitlines()[0][:300]}"
                ) from None
            except openai.APIError as exc:
                results[item.id] = (None, None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
                return
        results[item.id] = (trace_id_of(response), _output_text(response), None)

    tasks = [asyncio.create_task(one(item, messages)) for item, messages in planned]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.close()
    return results


def run_eval(
    store: Store,
    root: str | Path,
    ref: str,
    *,
    prompt_ref: str,
    rubric: Rubric,
    make_client: ClientFactory,
    judge: JudgeConfig,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    flush: Callable[[], Any] | None = None,
    concurrency: int = 8,
) -> EvalRun:
    """Replay, judge, save and compare one eval run (see the module docstring)."""
    if rubric.mode != "pointwise":
        raise ValidationError(
            f"rubric {rubric.id} is pairwise; eval scores each answer on its own, use a pointwise rubric"
        )
    if concurrency < 1:
        raise ValidationError(f"concurrency must be at least 1, got {concurrency}")
    name, number = parse_ref(ref)
    version = load_version(root, name, number)
    prompt_name, prompt_version = parse_prompt_ref(prompt_ref)
    prompt = PromptRegistry(store).get(prompt_name, prompt_version)
    model = model or _default_model(version.items)
    needs_reference = "{reference}" in rubric.prompt_template
    sources = {item.id: item.provenance.source_trace_id for item in version.items}
    with store.read() as conn:
        contexts = export_rows.trace_contexts(conn, [t for t in sources.values() if t])
        templates: dict[tuple[str, int], str] = {}
        for ctx in contexts.values():
            key = (ctx.prompt_name, ctx.prompt_version)
            if ctx.prompt_name and ctx.prompt_version is not None and key not in templates:
                templates[key] = prompt_rows.get_prompt(conn, ctx.prompt_name, ctx.prompt_version).template
    run_id = new_id()
    items: dict[str, EvalItem] = {}
    planned: list[tuple[GoldenItem, list[dict[str, Any]]]] = []
    for item in version.items:
        if needs_reference and not item.expected_output:
            items[item.id] = EvalItem(item.id, "skipped", reason=f"rubric {rubric.id} needs a reference answer")
            continue
        ctx = contexts.get(sources[item.id] or "")
        old = templates.get((ctx.prompt_name, ctx.prompt_version)) if ctx else None  # type: ignore[arg-type]
        placed = place_prompt(item, prompt, ctx, old)
        if isinstance(placed, str):
            items[item.id] = EvalItem(item.id, "skipped", reason=placed)
        else:
            planned.append((item, placed))
    if not planned:
        reasons = sorted({i.reason or "" for i in items.values()})
        raise GoldenSetError(f"{version.ref}: no item can be replayed with {prompt.ref} ({'; '.join(reasons[:2])})")
    generated = asyncio.run(
        _generate(
            make_client,
            planned,
            model=model,
            prompt=prompt,
            params=dict(params or {}),
            run_id=run_id,
            version=version,
            concurrency=concurrency,
        )
    )
    if flush is not None:
        flush()  # the answers become traces in the store before their scores point at them
    to_judge: list[JudgeItem] = []
    by_trace: dict[str, str] = {}
    for item, messages in planned:
        tid, output, error = generated[item.id]
        if error is not None:
            items[item.id] = EvalItem(item.id, "error", reason=error)
            continue
        tid = tid or new_id()  # capture disabled or sampled out: the score still needs an id
        by_trace[tid] = item.id
        items[item.id] = EvalItem(item.id, "ok", trace_id=tid)
        to_judge.append(JudgeItem(tid, conversation_text(messages), output or "", reference=item.expected_output))
    if to_judge:
        judged = JudgeRunner(rubric, judge, cache=StoreCache(store)).run_sync(to_judge)
        for result in judged.results:
            entry = items[by_trace[result.score.trace_id]]
            entry.score, entry.parse_status = result.score.score, result.score.parse_status
            if result.score.parse_status != "ok":
                entry.reason = result.score.parse_error
    ordered = [items[item.id] for item in version.items]
    run = EvalRun(
        run_id,
        utcnow().isoformat(),
        name,
        version.version,
        version.info.file_sha256,
        prompt.ref,
        model,
        rubric.id,
        rubric.version,
        judge.model,
        ordered,
    )
    run.summary = summarize(list(run.scores().values()))
    earlier = [
        r
        for r in load_runs(root, name)
        if (r.rubric_id, r.rubric_version, r.judge_model) == (rubric.id, rubric.version, judge.model)
    ]
    if earlier:
        try:
            run.comparison = compare_runs(run, earlier[-1])
        except StatisticsError:
            run.comparison = None
    directory = set_dir(root, name) / EVALS_DIR
    try:
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise GoldenSetError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    path = directory / f"{run_id}.json"
    run.path = str(path)
    atomic_write_bytes(
        path,
        orjson.dumps(run.to_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n",
        error=GoldenSetError,
    )
    return run
