"""Judge runner against a local fake OpenAI-compatible server (pytest-httpserver, threaded).

The server is real HTTP: the openai SDK, httpx and our retry loop all run for real. Each request's
answer comes from a script keyed by a marker in the judged text (so concurrent requests can be told
apart), falling back to a default policy.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from workbench.errors import JudgeError, ValidationError
from workbench.judge import get_rubric
from workbench.judge.prices import DEFAULT_PRICES, Price, load_prices, price_for
from workbench.judge.runner import JudgeConfig, JudgeItem, JudgeRunner, MemoryCache, RetryPolicy
from workbench.judge.service import StoreCache, pairs_to_judge, run_judge, traces_to_judge
from workbench.store import judge as judge_rows
from workbench.store import open_store
from workbench.store.traces import insert_traces

RESOLVED, FINGERPRINT = "gpt-4o-mini-2024-07-18", "fp_judge1"
PROMPT_TOKENS, COMPLETION_TOKENS = 120, 30


def completion(
    text: str | None, *, model: str = RESOLVED, fingerprint: str | None = FINGERPRINT, usage: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-judge",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if fingerprint:
        body["system_fingerprint"] = fingerprint
    if usage:
        body["usage"] = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }
    return body


@dataclass
class Step:
    """One scripted response: an answer text (HTTP 200), or an HTTP error status with headers."""

    text: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: dict[str, Any] | None = None


def user_text(payload: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in payload.get("messages", []) if m.get("role") == "user")


@dataclass
class FakeJudge:
    """The request handler: scripted steps per marker, else ``default(user_text)``."""

    default: Callable[[str], str] = lambda text: '{"reasoning": "fine", "score": 4}'
    scripts: dict[str, list[Step]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    model: str = RESOLVED
    in_flight: int = 0
    max_in_flight: int = 0
    barrier: threading.Barrier | None = None
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Request) -> Response:
        payload = json.loads(request.get_data())
        text = user_text(payload)
        with self.lock:
            self.requests.append(payload)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            marker = next((m for m in self.scripts if m in text and self.scripts[m]), None)
            step = self.scripts[marker].pop(0) if marker else Step(self.default(text))
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=10)
            if step.delay:
                time.sleep(step.delay)
            if step.status != 200:
                body = {"error": {"message": f"scripted {step.status}", "type": "server_error"}}
                return Response(
                    json.dumps(body), status=step.status, headers=step.headers, content_type="application/json"
                )
            body = step.body if step.body is not None else completion(step.text, model=self.model)
            return Response(json.dumps(body), content_type="application/json")
        finally:
            with self.lock:
                self.in_flight -= 1

    def texts(self) -> list[str]:
        return [user_text(p) for p in self.requests]


class FakeServer:
    """One threaded HTTP server per module (stopping one takes ~0.5 s); each test gets a fresh script."""

    def __init__(self) -> None:
        self.current = FakeJudge()
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
            lambda request: self.current(request)
        )
        self.server.start()

    def fresh(self) -> FakeJudge:
        self.current = FakeJudge(url=self.server.url_for("/v1"))
        return self.current

    def stop(self) -> None:
        self.server.clear()
        self.server.stop()


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeJudge:
    return fake_server.fresh()


class Sleeps:
    """Records backoff delays instead of sleeping (the delays are what we assert, not wall time)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def config(fake: FakeJudge, **overrides: Any) -> JudgeConfig:
    options: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "base_url": fake.url,
        "api_key": "test",
        "concurrency": 4,
        "timeout": 5.0,
        "retry": RetryPolicy(max_retries=3, base_delay=0.5, max_delay=4.0),
    }
    options.update(overrides)
    return JudgeConfig(**options)


def items(n: int, prefix: str = "item") -> list[JudgeItem]:
    return [JudgeItem(f"t-{prefix}-{i}", f"question <{prefix}-{i}>", f"answer {i}") for i in range(n)]


HELPFULNESS = get_rubric("helpfulness")
PAIRWISE = get_rubric("pairwise_preference")
FACTUAL = get_rubric("factual_consistency")
START = datetime(2026, 11, 1, tzinfo=UTC)


def trace_row(
    tid: str, question: str, answer: str, *, minutes: int = 0, version: int = 1, system: str = "Be brief."
) -> dict[str, Any]:
    return {
        "id": tid,
        "created_at": START + timedelta(minutes=minutes),
        "operation": "chat",
        "stream": False,
        "status": "ok",
        "prompt_name": "support",
        "prompt_version": version,
        "model_resolved": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_app",
        "params": {},
        "tags": [],
        "metadata": {},
        "input": [{"role": "system", "content": system}, {"role": "user", "content": question}],
        "output_text": answer,
    }


# ----------------------------------------------------------------------------- scores, tokens, cost, cache


async def test_scores_are_stored_linked_to_trace_rubric_and_judge_version(fake, store_url):
    store = open_store(store_url)
    with store.write() as conn:
        insert_traces(conn, [trace_row(f"tr{i:02d}", f"question {i}", f"answer {i}", minutes=i) for i in range(6)])
    fake.default = lambda text: '{"reasoning": "ok", "score": 5}' if "answer 3" in text else '{"score": 2}'
    run = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store)).run(
        traces_to_judge(store, HELPFULNESS, "gpt-4o-mini")
    )
    with store.read() as conn:
        rows = {s.trace_id: s for s in judge_rows.list_scores(conn, rubric_id="helpfulness")}
    assert sorted(rows) == [f"tr{i:02d}" for i in range(6)] and len(fake.requests) == 6
    for tid, row in rows.items():
        assert (row.rubric_id, row.rubric_version, row.judge_model) == ("helpfulness", 1, "gpt-4o-mini")
        assert row.judge_model_version == f"{RESOLVED}+{FINGERPRINT}"
        assert row.score == (5.0 if tid == "tr03" else 2.0) and row.parse_status == "ok" and row.order is None
        assert (row.prompt_tokens, row.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        assert row.cost == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)  # gpt-4o-mini list price per 1M tokens
        assert len(row.cache_key) == 64
    assert "answer 3" in user_text(next(p for p in fake.requests if "question 3" in user_text(p)))
    stats = run.stats
    assert (stats.calls, stats.requests, stats.retries, stats.ok, stats.cache_hits) == (6, 6, 0, 6, 0)
    assert (stats.prompt_tokens, stats.completion_tokens) == (6 * 120, 6 * 30)
    assert stats.cost == pytest.approx(sum(r.cost for r in rows.values())) and stats.unpriced_calls == 0
    # already scored: nothing left to judge for this rubric version and judge model
    assert traces_to_judge(store, HELPFULNESS, "gpt-4o-mini") == []
    assert len(traces_to_judge(store, HELPFULNESS, "other-judge")) == 6
    store.close()


async def test_a_rerun_is_served_from_the_cache_with_no_http_call(fake, store_url):
    store = open_store(store_url)
    work = items(5)
    first = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store)).run(work)
    assert len(fake.requests) == 5 and first.stats.cache_hits == 0
    again = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store)).run(work)
    assert len(fake.requests) == 5, "a rerun must not reach the server"
    assert again.stats.cache_hits == 5 and again.stats.requests == 0 and all(r.cached for r in again.results)
    assert [r.score.id for r in again.results] == [r.score.id for r in first.results]  # the same rows, not copies
    # identical content under another trace id: a cached copy for that trace, still no HTTP call
    copy = [JudgeItem("t-copy", work[0].input, work[0].output)]
    third = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store)).run(copy)
    assert len(fake.requests) == 5 and third.results[0].cached and third.results[0].score.trace_id == "t-copy"
    assert third.results[0].score.cost == 0.0 and third.stats.cost is None
    # a different judge model, or an edited rubric, is a different cache key
    await JudgeRunner(HELPFULNESS, config(fake, model="gpt-4.1-mini"), cache=StoreCache(store)).run(work[:1])
    edited = HELPFULNESS.model_copy(update={"criteria": [*HELPFULNESS.criteria, "Is polite"]})
    await JudgeRunner(edited, config(fake), cache=StoreCache(store)).run(work[:1])
    assert len(fake.requests) == 7
    with store.read() as conn:
        assert len(judge_rows.list_scores(conn)) == 5 + 1 + 2
    store.close()


async def test_unknown_model_costs_none_and_missing_usage_too(fake):
    fake.model = "local-llama-3-8b"
    run = await JudgeRunner(HELPFULNESS, config(fake, model="local-llama")).run(items(2))
    assert all(r.score.cost is None for r in run.results) and run.stats.cost is None
    assert run.stats.unpriced_calls == 2 and run.stats.prompt_tokens == 240
    fake.scripts["<nousage-0>"] = [Step(body={**completion('{"score": 3}'), "usage": None})]
    run = await JudgeRunner(HELPFULNESS, config(fake)).run(items(1, "nousage"))
    assert run.results[0].score.prompt_tokens is None and run.results[0].score.cost is None


def test_price_table_matches_snapshots_and_loads_overrides(tmp_path):
    assert price_for("gpt-4o-mini-2024-07-18") == DEFAULT_PRICES["gpt-4o-mini"]
    assert price_for("gpt-4o-2024-08-06") == DEFAULT_PRICES["gpt-4o"]
    assert price_for("gpt-4omni") is None and price_for("my-model") is None
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"my-model": {"input": 1.0, "output": 3}}))
    table = load_prices(path)
    assert table["my-model"] == Price(1.0, 3.0) and table["gpt-4o"] == DEFAULT_PRICES["gpt-4o"]
    assert price_for("my-model-v2", table) == Price(1.0, 3.0)
    path.write_text(json.dumps({"my-model": {"input": "cheap", "output": 3}}))
    with pytest.raises(ValidationError, match=r"field 'my-model.input' is 'cheap'"):
        load_prices(path)


# ----------------------------------------------------------------------------- retries


async def test_429_with_retry_after_and_500_are_retried_then_succeed(fake):
    fake.scripts["<item-0>"] = [Step(status=429, headers={"Retry-After": "7"}), Step(status=500), Step('{"score": 3}')]
    sleeps = Sleeps()
    run = await JudgeRunner(HELPFULNESS, config(fake), sleep=sleeps).run(items(3))
    flaky = next(r for r in run.results if r.item.trace_id == "t-item-0")
    assert flaky.score.score == 3.0 and flaky.score.parse_status == "ok" and flaky.attempts == 3
    assert sum("<item-0>" in t for t in fake.texts()) == 3, "the SDK must not retry on its own"
    assert run.stats.requests == len(fake.requests) == 5 and run.stats.retries == 2
    assert run.stats.failures == {"HTTP 429": 1, "HTTP 500": 1}
    assert 7.0 <= sleeps.delays[0] <= 7.0 * 1.1  # Retry-After honoured
    assert 0.5 <= sleeps.delays[1] <= 1.0  # second attempt: base 0.5 * 2**1 with jitter in [50%, 100%]


async def test_retries_are_bounded_and_a_failed_call_is_recorded_not_cached(fake, sqlite_url):
    store = open_store(sqlite_url)
    fake.scripts["<item-1>"] = [Step(status=503) for _ in range(10)]
    sleeps = Sleeps()
    run = await JudgeRunner(
        HELPFULNESS,
        config(fake, retry=RetryPolicy(max_retries=2, base_delay=1, max_delay=1.5)),
        cache=StoreCache(store),
        sleep=sleeps,
    ).run(items(2))
    failed = next(r for r in run.results if r.item.trace_id == "t-item-1")
    assert sum("<item-1>" in t for t in fake.texts()) == 3 and failed.attempts == 3
    assert failed.score.parse_status == "error" and failed.score.score is None
    assert "HTTP 503" in failed.score.parse_error and "gave up after 3 attempts" in failed.score.parse_error
    assert len(sleeps.delays) == 2 and all(0.5 <= d <= 1.5 for d in sleeps.delays)
    assert (run.stats.errors, run.stats.ok, run.stats.retries) == (1, 1, 2)
    with store.read() as conn:
        assert [s.parse_status for s in judge_rows.list_scores(conn, trace_ids=["t-item-1"])] == ["error"]
    # the failure is retried on the next run; the success is not
    again = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store), sleep=sleeps).run(items(2))
    assert again.stats.cache_hits == 1 and again.stats.requests == 4  # 7 scripted 503s left: 1 + 3 retries
    store.close()


async def test_timeouts_are_retried(fake):
    fake.scripts["<item-0>"] = [Step('{"score": 1}', delay=1.0), Step('{"score": 2}')]
    run = await JudgeRunner(HELPFULNESS, config(fake, timeout=0.25), sleep=Sleeps()).run(items(1))
    assert run.results[0].score.score == 2.0 and run.results[0].attempts == 2
    assert run.stats.failures == {"timeout after 0.25s": 1}


async def test_client_errors_are_not_retried_and_auth_errors_abort(fake, sqlite_url):
    fake.scripts["<item-0>"] = [Step(status=400)]
    run = await JudgeRunner(HELPFULNESS, config(fake), sleep=Sleeps()).run(items(2))
    bad = next(r for r in run.results if r.item.trace_id == "t-item-0")
    assert bad.score.parse_status == "error" and bad.attempts == 1 and "HTTP 400" in bad.score.parse_error
    store = open_store(sqlite_url)
    fake.requests.clear()
    fake.default = lambda text: '{"score": 4}'
    fake.scripts["<auth-0>"] = [Step(status=401)]
    with pytest.raises(JudgeError, match=r"refused the request \(HTTP 401\): scripted 401"):
        await JudgeRunner(HELPFULNESS, config(fake, concurrency=1), cache=StoreCache(store)).run(items(3, "auth"))
    assert len(fake.requests) == 1  # aborted at once: no retries, no further calls
    store.close()


async def test_a_200_that_is_not_a_chat_completion_is_a_failed_call(fake):
    fake.scripts["<item-0>"] = [Step(body={"object": "list", "data": []})]
    fake.scripts["<item-1>"] = [Step(body={**completion(None), "choices": []})]
    run = await JudgeRunner(HELPFULNESS, config(fake), sleep=Sleeps()).run(items(2))
    bad, empty = sorted(run.results, key=lambda r: r.item.trace_id)
    assert bad.score.parse_status == "error" and "not a chat completion" in bad.score.parse_error
    assert bad.attempts == 1 and run.stats.failures == {"bad response": 1}
    assert empty.score.parse_status == "unparsed" and empty.score.parse_error == "empty answer"


def test_backoff_policy_grows_exponentially_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, max_retry_after=60.0)
    for attempt, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        delays = [policy.delay(attempt, None) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
    assert 60.0 <= policy.delay(0, 3600.0) <= 66.0  # an absurd Retry-After is capped


# ----------------------------------------------------------------------------- strict parsing


@pytest.mark.parametrize(
    ("rubric", "answer", "reason"),
    [
        (HELPFULNESS, "I would rate this answer quite good.", "no JSON object with field 'score'"),
        (HELPFULNESS, '{"reasoning": "great", "score": 7}', "not on the likert scale"),
        (HELPFULNESS, '{"score": 3} actually {"score": 4}', "ambiguous answer"),
        (HELPFULNESS, "", "empty answer"),
        (HELPFULNESS, None, "empty answer"),
        (FACTUAL, "Mostly fine.\nVerdict: MAYBE", "no match for pattern"),
    ],
)
async def test_unparsable_answers_are_stored_as_unparsed_with_the_reason(fake, sqlite_url, rubric, answer, reason):
    store = open_store(sqlite_url)
    fake.default = lambda text: answer
    run = await JudgeRunner(rubric, config(fake), cache=StoreCache(store)).run(items(1))
    with store.read() as conn:
        (row,) = judge_rows.list_scores(conn)
    assert row.parse_status == "unparsed" and row.score is None and reason in row.parse_error
    assert row.raw_answer == (answer or "")
    assert run.stats.unparsed == 1 and run.stats.ok == 0 and run.stats.prompt_tokens == PROMPT_TOKENS
    store.close()


async def test_a_regex_rubric_parses_its_verdict(fake):
    fake.default = lambda text: "All claims match.\nVerdict: **CONSISTENT**"
    run = await JudgeRunner(FACTUAL, config(fake)).run(items(2))
    assert [r.score.score for r in run.results] == [1.0, 1.0]


# ----------------------------------------------------------------------------- pairwise


def pair_items(n: int) -> list[JudgeItem]:
    return [
        JudgeItem(
            f"a{i}",
            f"instruction <pair-{i}>",
            f"first output {i}" + (" GOOD" if i % 2 else ""),
            other_trace_id=f"b{i}",
            output_b=f"second output {i}" + ("" if i % 2 else " GOOD"),
        )
        for i in range(n)
    ]


def shown_first(text: str) -> str:
    return text.split("[Output A]", 1)[1].split("[Output B]", 1)[0]


async def test_pairwise_judges_both_orders_and_maps_the_swapped_verdict_back(fake, sqlite_url):
    store = open_store(sqlite_url)
    # a fair judge: picks whichever output says GOOD, wherever it is shown
    fake.default = lambda t: '{"winner": "%s"}' % ("A" if "GOOD" in shown_first(t) else "B")  # noqa: UP031
    run = await JudgeRunner(PAIRWISE, config(fake), cache=StoreCache(store)).run(pair_items(6))
    assert len(fake.requests) == 12
    for i in range(6):
        asked = [t for t in fake.texts() if f"<pair-{i}>" in t]
        both = [f"first output {i}" + (" GOOD" if i % 2 else ""), f"second output {i}" + ("" if i % 2 else " GOOD")]
        assert sorted(shown_first(t).strip() for t in asked) == sorted(both)
    with store.read() as conn:
        rows = judge_rows.list_scores(conn)
    assert sorted((r.trace_id, r.other_trace_id, r.order) for r in rows) == sorted(
        (f"a{i}", f"b{i}", order) for i in range(6) for order in ("ab", "ba")
    )
    for row in rows:  # original numbering: 1 = the trace_id's output, 2 = other_trace_id's
        assert row.score == (1.0 if int(row.trace_id[1:]) % 2 else 2.0)
    bias = run.position_bias
    assert (bias.pairs, bias.consistent, bias.inconsistent_first, bias.inconsistent_second) == (6, 6, 0, 0)
    assert bias.first_position_share == 0.5 and bias.p_value is None
    store.close()


async def test_pairwise_reports_position_bias_of_a_judge_that_always_picks_the_first(fake):
    fake.default = lambda t: 'Both fine. {"reasoning": "first is better", "winner": "A"}'
    run = await JudgeRunner(PAIRWISE, config(fake)).run(pair_items(8))
    by_order = {(r.item.trace_id, r.order): r.score.score for r in run.results}
    assert all(by_order[(f"a{i}", "ab")] == 1.0 and by_order[(f"a{i}", "ba")] == 2.0 for i in range(8))
    bias = run.position_bias
    assert (bias.pairs, bias.consistent, bias.inconsistent_first, bias.inconsistent_second) == (8, 0, 8, 0)
    assert bias.first_position_share == 1.0 and bias.consistency == 0.0
    assert bias.p_value == pytest.approx(2 * 0.5**8)  # exact two-sided binomial test, 8 of 8
    with pytest.raises(ValidationError, match="needs output_b"):
        await JudgeRunner(PAIRWISE, config(fake)).run(items(1))
    with pytest.raises(ValidationError, match="is pointwise"):
        await JudgeRunner(HELPFULNESS, config(fake)).run(pair_items(1))


def test_pairs_are_consecutive_traces_with_the_same_input(sqlite_url):
    store = open_store(sqlite_url)
    rows = [
        trace_row("t1", "reset password?", "Go to settings.", minutes=1),
        trace_row("t2", "reset password?", "Click 'Forgot password'.", minutes=2, version=2, system="v2"),
        trace_row("t3", "reset password?", "Click 'Forgot password'.", minutes=3),  # same text as t2: skipped
        trace_row("t4", "refund?", "Yes within 30 days.", minutes=4),
        trace_row("t5", "refund?", "No.", minutes=5),
        trace_row("t6", "alone?", "Only once.", minutes=6),
    ]
    with store.write() as conn:
        insert_traces(conn, rows)
    found = pairs_to_judge(store, PAIRWISE, "m")
    assert [(p.trace_id, p.other_trace_id) for p in found] == [("t1", "t2"), ("t4", "t5")]
    assert found[0].input == "reset password?" and (found[0].output, found[0].output_b) == (
        "Go to settings.",
        "Click 'Forgot password'.",
    )
    assert [(p.trace_id, p.other_trace_id) for p in pairs_to_judge(store, PAIRWISE, "m", prompt="support@2")] == []
    assert len(pairs_to_judge(store, PAIRWISE, "m", limit=1)) == 1
    store.close()


# ----------------------------------------------------------------------------- concurrency, progress


async def test_concurrency_is_bounded_and_reached(fake):
    fake.barrier = threading.Barrier(3)  # each request waits for two others: only possible with 3 in flight
    seen: list[tuple[int, int]] = []
    run = await JudgeRunner(
        HELPFULNESS, config(fake, concurrency=3), progress=lambda done, total: seen.append((done, total))
    ).run(items(9))
    assert fake.max_in_flight == 3 and run.stats.ok == 9
    assert seen == [(i, 9) for i in range(1, 10)]


def test_run_judge_over_the_store_end_to_end(fake, sqlite_url):
    store = open_store(sqlite_url)
    with store.write() as conn:
        insert_traces(conn, [trace_row(f"s{i}", f"q{i}", f"a{i}", minutes=i, version=1 + i % 2) for i in range(4)])
    run = run_judge(store, HELPFULNESS, config(fake), prompt="support@2")
    assert sorted(r.score.trace_id for r in run.results) == ["s1", "s3"]
    assert run_judge(store, HELPFULNESS, config(fake), prompt="support@2").stats.calls == 0
    assert run_judge(store, HELPFULNESS, config(fake), limit=1).stats.calls == 1
    with pytest.raises(ValidationError, match="version must be a whole number"):
        run_judge(store, HELPFULNESS, config(fake), prompt="support@two")
    store.close()


async def test_identical_requests_in_one_run_make_one_call(fake, sqlite_url):
    store = open_store(sqlite_url)
    twins = [JudgeItem(f"twin-{i}", "same question <twin>", "same answer") for i in range(3)]
    run = await JudgeRunner(HELPFULNESS, config(fake), cache=StoreCache(store)).run([*twins, *items(2)])
    assert len(fake.requests) == 3 and run.stats.requests == 3 and run.stats.cache_hits == 2
    with store.read() as conn:
        rows = judge_rows.list_scores(conn, trace_ids=[t.trace_id for t in twins])
    assert len(rows) == 3 and len({r.cache_key for r in rows}) == 1 and {r.score for r in rows} == {4.0}
    assert sorted(r.cost for r in rows)[:2] == [0.0, 0.0] and max(r.cost for r in rows) > 0
    store.close()


async def test_memory_cache_keeps_successes_only(fake):
    cache = MemoryCache()
    fake.scripts["<item-0>"] = [Step(status=400)]
    await JudgeRunner(HELPFULNESS, config(fake), cache=cache).run(items(2))
    again = await JudgeRunner(HELPFULNESS, config(fake), cache=cache).run(items(2))
    assert again.stats.cache_hits == 1 and len(cache.scores) == 3
