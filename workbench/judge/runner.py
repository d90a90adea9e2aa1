"""Async judge runner over any OpenAI-compatible endpoint: bounded, retried, cached, costed, strict.

* Concurrency: one ``asyncio.Semaphore`` slot per item for its whole life (attempts *and* backoff
  sleeps), so a rate-limited endpoint never sees more than ``concurrency`` requests in flight.
  Requests go through ``AsyncOpenAI.post`` (the SDK's auth, errors and timeouts) with plain dicts:
  the typed ``chat.completions.create`` spends ~1.5 ms per call transforming params and building
  response models, which caps a 64-slot run well below what the endpoint allows.
* Retries are ours (the SDK's ``max_retries=0``) so they are countable and bounded: 408/409/429/5xx,
  timeouts and connection errors, exponential backoff with jitter, ``Retry-After`` honoured. A call
  that still fails becomes a ``parse_status="error"`` record; 401/403/404 abort the run (every call
  would fail the same way).
* Cache: the key hashes rubric id, version and fingerprint, judge model, request parameters, order
  and the exact messages sent, so a rerun over the same data makes no HTTP call at all. A hit for
  another trace with identical content (or a duplicate within one run) is stored as a copy for that
  trace with cost 0 and no token counts (nothing was spent). Verdicts are saved in batches as they
  arrive, and whatever arrived is saved when a run fails or is interrupted.
* Judge model version: the response's resolved ``model`` + ``system_fingerprint`` (``a+fp``).
* Strict parsing (:func:`workbench.judge.answers.parse_answer`): an unreadable answer is stored as
  ``unparsed`` with the reason and the raw answer, score None.
* Pairwise rubrics are asked in both orders; the swapped verdict is mapped back to the original
  numbering and the run reports position bias.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import openai

from workbench.errors import JudgeError, ValidationError
from workbench.ids import new_id
from workbench.judge.answers import parse_answer, swap_preference
from workbench.judge.prices import Price, cost_of
from workbench.judge.results import (
    JudgeItem,
    JudgeResult,
    JudgeRun,
    Order,
    PositionBiasSummary,
    RunStats,
    position_bias,
)
from workbench.judge.rubrics import Rubric
from workbench.models import JudgeScore, utcnow

__all__ = [
    "JudgeConfig",
    "JudgeItem",
    "JudgeResult",
    "JudgeRun",
    "JudgeRunner",
    "MemoryCache",
    "PositionBiasSummary",
    "RetryPolicy",
    "RunStats",
    "ScoreCache",
    "cache_key",
]

Progress = Callable[[int, int], None]
_RETRY_STATUS = frozenset({408, 409, 429})
_FATAL = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
# httpcore scans its whole connection pool on every request, so one big pool costs O(concurrency) per
# call; a client per 8 slots keeps that scan short (2-3x more calls/s at concurrency 64, see bench/).
_SLOTS_PER_CLIENT = 8


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (0-based): the server's Retry-After (+<=10%), else jittered backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after) * (1.0 + 0.1 * random.random())
        ceiling = min(self.max_delay, self.base_delay * 2.0**attempt)
        return ceiling * (0.5 + 0.5 * random.random())


@dataclass(frozen=True)
class JudgeConfig:
    """Endpoint and request settings; ``prices`` per model name (None: the default table)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    timeout: float = 60.0
    temperature: float | None = 0.0
    max_tokens: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    prices: Mapping[str, Price] | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValidationError("judge model must be a non-empty name")
        if self.concurrency < 1:
            raise ValidationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.timeout <= 0:
            raise ValidationError(f"timeout must be positive, got {self.timeout}")
        if self.retry.max_retries < 0:
            raise ValidationError(f"max_retries must be >= 0, got {self.retry.max_retries}")

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.temperature is not None:
            out["temperature"] = self.temperature
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        return out


class ScoreCache(Protocol):
    """Where verdicts are looked up by cache key and saved (the store, or memory)."""

    def lookup(self, keys: Sequence[str]) -> dict[str, JudgeScore]: ...

    def save(self, scores: Sequence[JudgeScore]) -> None: ...


class MemoryCache:
    """An in-process cache (for scripts and benchmarks); failed calls are not cached."""

    def __init__(self) -> None:
        self.scores: list[JudgeScore] = []
        self._by_key: dict[str, JudgeScore] = {}

    def lookup(self, keys: Sequence[str]) -> dict[str, JudgeScore]:
        return {key: self._by_key[key] for key in keys if key in self._by_key}

    def save(self, scores: Sequence[JudgeScore]) -> None:
        self.scores.extend(scores)
        self._by_key.update((s.cache_key, s) for s in scores if s.parse_status != "error")


def cache_key(
    rubric: Rubric, model: str, params: Mapping[str, Any], order: Order, messages: Sequence[Mapping[str, str]]
) -> str:
    blob = json.dumps(
        {
            "rubric": rubric.id,
            "version": rubric.version,
            "fingerprint": rubric.fingerprint,
            "model": model,
            "params": dict(params),
            "order": order,
            "messages": list(messages),
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class _Call:
    item: JudgeItem
    order: Order
    messages: list[dict[str, str]]
    key: str


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) * scale)
        except ValueError:
            when = email.utils.parsedate_to_datetime(raw) if name == "retry-after" else None
            if when is not None:
                when = when if when.tzinfo else when.replace(tzinfo=UTC)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


class _Fatal(Exception):
    pass


class JudgeRunner:
    """Judge items under one rubric with one model; see the module docstring for the guarantees."""

    def __init__(
        self,
        rubric: Rubric,
        config: JudgeConfig,
        *,
        cache: ScoreCache | None = None,
        client: openai.AsyncOpenAI | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        flush_every: int = 50,
    ) -> None:
        self.rubric, self.config = rubric, config
        self.cache = cache if cache is not None else MemoryCache()
        self._client, self._progress, self._sleep = client, progress, sleep
        self._flush_every = max(1, flush_every)

    def run_sync(self, items: Sequence[JudgeItem]) -> JudgeRun:
        return asyncio.run(self.run(items))

    def _calls(self, items: Sequence[JudgeItem]) -> list[_Call]:
        rubric, params = self.rubric, self.config.params()
        calls = []
        for item in items:
            extra = {"reference": item.reference, "context": item.context}
            if rubric.mode == "pairwise":
                if item.output_b is None or item.other_trace_id is None:
                    raise ValidationError(
                        f"rubric {rubric.id} is pairwise: item for trace {item.trace_id} "
                        "needs output_b and other_trace_id"
                    )
                pairs: list[tuple[Order, dict[str, str | None]]] = [
                    ("ab", {"output_a": item.output, "output_b": item.output_b}),
                    ("ba", {"output_a": item.output_b, "output_b": item.output}),
                ]
            else:
                if item.output_b is not None:
                    raise ValidationError(
                        f"rubric {rubric.id} is pointwise: item for trace {item.trace_id} has a second output"
                    )
                pairs = [(None, {"output": item.output})]
            for order, outputs in pairs:
                values = {k: v for k, v in {"input": item.input, **outputs, **extra}.items() if v is not None}
                messages = rubric.messages(**values)
                calls.append(
                    _Call(item, order, messages, cache_key(rubric, self.config.model, params, order, messages))
                )
        return calls

    def _score(self, call: _Call, **fields: Any) -> JudgeScore:
        return JudgeScore(
            id=new_id(),
            trace_id=call.item.trace_id,
            rubric_id=self.rubric.id,
            rubric_version=self.rubric.version,
            judge_model=self.config.model,
            order=call.order,
            other_trace_id=call.item.other_trace_id,
            cache_key=call.key,
            created_at=utcnow(),
            **fields,
        )

    def _from_cache(self, call: _Call, hit: JudgeScore) -> tuple[JudgeScore, bool]:
        """The cached row itself when it is this very item, else a copy for this trace (returns is_new)."""
        if (hit.trace_id, hit.other_trace_id, hit.order) == (call.item.trace_id, call.item.other_trace_id, call.order):
            return hit, False
        return self._score(
            call,
            judge_model_version=hit.judge_model_version,
            score=hit.score,
            raw_answer=hit.raw_answer,
            parse_status=hit.parse_status,
            parse_error=hit.parse_error,
            prompt_tokens=None,
            completion_tokens=None,
            cost=0.0,
        ), True

    async def run(self, items: Sequence[JudgeItem]) -> JudgeRun:
        started = time.perf_counter()
        calls = self._calls(items)
        stats = RunStats(calls=len(calls))
        hits = self.cache.lookup([c.key for c in calls]) if calls else {}
        results: list[JudgeResult | None] = [None] * len(calls)
        pending: list[JudgeScore] = []
        done = 0

        def finish(index: int, result: JudgeResult, new: bool) -> None:
            nonlocal done
            results[index] = result
            if new:
                pending.append(result.score)
                if len(pending) >= self._flush_every:
                    self._flush(pending)
            status = result.score.parse_status
            stats.ok += status == "ok"
            stats.unparsed += status == "unparsed"
            stats.errors += status == "error"
            done += 1
            if self._progress is not None:
                self._progress(done, len(calls))

        todo: dict[str, list[tuple[int, _Call]]] = {}  # identical requests in one run: one HTTP call
        for index, call in enumerate(calls):
            if call.key in hits:
                score, new = self._from_cache(call, hits[call.key])
                stats.cache_hits += 1
                finish(index, JudgeResult(call.item, call.order, score, True, 0), new)
            else:
                todo.setdefault(call.key, []).append((index, call))
        clients = (
            [self._client]
            if self._client is not None
            else [
                openai.AsyncOpenAI(
                    base_url=self.config.base_url,
                    api_key=self.config.api_key,
                    max_retries=0,
                    timeout=self.config.timeout,
                )
                for _ in range(-(-min(self.config.concurrency, max(len(todo), 1)) // _SLOTS_PER_CLIENT))
            ]
        )
        semaphore = asyncio.Semaphore(self.config.concurrency)

        async def one(number: int, group: list[tuple[int, _Call]]) -> None:
            (index, call), rest = group[0], group[1:]
            async with semaphore:
                score, attempts = await self._judge(clients[number % len(clients)], call, stats)
            finish(index, JudgeResult(call.item, call.order, score, False, attempts), True)
            for index, twin in rest:
                copy, new = self._from_cache(twin, score)
                stats.cache_hits += 1
                finish(index, JudgeResult(twin.item, twin.order, copy, True, 0), new)

        tasks = [asyncio.create_task(one(number, group)) for number, group in enumerate(todo.values())]
        try:
            if tasks:
                await asyncio.gather(*tasks)
        except _Fatal as exc:
            raise JudgeError(str(exc)) from None
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._flush(pending)
            if self._client is None:
                for client in clients:
                    await client.close()
        final = [r for r in results if r is not None]
        costs = [r.score.cost for r in final if not r.cached and r.score.parse_status != "error"]
        stats.unpriced_calls = sum(c is None for c in costs)
        stats.cost = sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None
        stats.elapsed_s = time.perf_counter() - started
        bias = position_bias(final) if self.rubric.mode == "pairwise" else None
        return JudgeRun(self.rubric.id, self.rubric.version, self.config.model, final, stats, bias)

    def _flush(self, pending: list[JudgeScore]) -> None:
        """Save, then forget: a failed save keeps the batch for the final flush (verdicts cost money)."""
        if pending:
            self.cache.save(list(pending))
            pending.clear()

    async def _judge(self, client: openai.AsyncOpenAI, call: _Call, stats: RunStats) -> tuple[JudgeScore, int]:
        policy = self.config.retry
        for attempt in range(policy.max_retries + 1):
            stats.requests += 1
            retry_after: float | None = None
            try:
                body = {"model": self.config.model, "messages": call.messages, **self.config.params()}
                response = await client.post("/chat/completions", body=body, cast_to=object)
            except _FATAL as exc:
                raise _Fatal(
                    f"judge endpoint {self.config.base_url or 'api.openai.com'} refused the request "
                    f"(HTTP {exc.status_code}): {_message(exc)}"
                ) from None
            except openai.APIStatusError as exc:
                reason = f"HTTP {exc.status_code}"
                if exc.status_code not in _RETRY_STATUS and exc.status_code < 500:
                    return self._failed(call, stats, reason, f"{reason}: {_message(exc)}"), attempt + 1
                retry_after = _retry_after(exc)
                detail = f"{reason}: {_message(exc)}"
            except openai.APITimeoutError:
                reason = detail = f"timeout after {self.config.timeout:g}s"
            except openai.APIConnectionError as exc:
                reason, detail = "connection error", f"connection error: {exc.__cause__ or exc}"
            except openai.APIError as exc:
                return self._failed(call, stats, "bad response", f"bad response: {exc}"), attempt + 1
            else:
                if not isinstance(response, dict) or not isinstance(response.get("choices"), list):
                    return self._failed(
                        call, stats, "bad response", f"bad response: not a chat completion ({str(response)[:100]!r})"
                    ), attempt + 1
                return self._answered(call, response, stats), attempt + 1
            stats.failures[reason] = stats.failures.get(reason, 0) + 1
            if attempt == policy.max_retries:
                return self._failed(call, stats, None, f"{detail} (gave up after {attempt + 1} attempts)"), attempt + 1
            stats.retries += 1
            await self._sleep(policy.delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def _failed(self, call: _Call, stats: RunStats, reason: str | None, detail: str) -> JudgeScore:
        if reason is not None:
            stats.failures[reason] = stats.failures.get(reason, 0) + 1
        return self._score(call, parse_status="error", parse_error=detail)

    def _answered(self, call: _Call, response: dict[str, Any], stats: RunStats) -> JudgeScore:
        choices = response.get("choices") or [{}]
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else ""
        parsed = parse_answer(self.rubric, text)
        score = parsed.score
        if score is not None and call.order == "ba":
            score = swap_preference(score)
        usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
        prompt_tokens, completion_tokens = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        stats.prompt_tokens += prompt_tokens or 0
        stats.completion_tokens += completion_tokens or 0
        resolved = str(response["model"]) if response.get("model") else None
        fingerprint = response.get("system_fingerprint")
        version = f"{resolved}+{fingerprint}" if resolved and fingerprint else resolved
        cost = cost_of(self.config.prices, (resolved, self.config.model), prompt_tokens, completion_tokens)
        return self._score(
            call,
            judge_model_version=version,
            score=score,
            raw_answer=text,
            parse_status=parsed.status,
            parse_error=parsed.error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
        )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
