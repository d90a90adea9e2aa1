"""Capture round-trips through the real wrapper, spool and ingester, on real stores."""

from __future__ import annotations

import httpx
import openai
import pytest

import workbench
from workbench.errors import InvalidContextError, ValidationError
from workbench.store import traces as trace_rows

from .openai_fakes import FakeOpenAI, chat_body, chat_sse, responses_body, responses_sse

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def fake() -> FakeOpenAI:
    return FakeOpenAI()


@pytest.fixture
def wb(store_url: str):
    handle = workbench.open(store_url, background_ingest=False)
    yield handle
    handle.close()


def stored(wb: workbench.Workbench, ref: str) -> workbench.Trace:
    with wb.store.read() as conn:
        return trace_rows.get_trace(conn, ref)


def test_sync_chat_round_trip_records_everything(wb, fake):
    client = wb.wrap(fake.client())
    plain = fake.client()
    prompt = wb.prompts.register("support-answer", "Answer politely: {question}")
    resp = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=50,
        workbench={
            "prompt": prompt,
            "variables": {"question": "Capital of France?"},
            "session_id": "s-1",
            "user_id": "u-7",
            "variant": "B",
            "tags": ["beta"],
            "metadata": {"page": "faq"},
        },
    )
    # The app gets exactly what the unwrapped client returns.
    assert resp == plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert isinstance(resp, openai.types.chat.ChatCompletion)
    tid = workbench.trace_id(resp)
    assert tid is not None and "_wb_trace_id" not in resp.model_dump()
    wb.flush()
    trace = stored(wb, tid)
    assert stored(wb, "chatcmpl-1").id == tid  # findable by the provider's response id
    assert trace.input == MESSAGES
    assert trace.output_text == "Paris is the capital of France."
    assert (trace.model_requested, trace.model_resolved) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert trace.system_fingerprint == "fp_abc"
    assert trace.params == {"temperature": 0.2, "max_tokens": 50}
    assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (12, 8, 20)
    assert (trace.prompt_id, trace.prompt_name, trace.prompt_version) == (prompt.id, "support-answer", 1)
    assert trace.prompt_hash == prompt.content_hash
    assert trace.variables == {"question": "Capital of France?"}
    assert (trace.session_id, trace.user_id, trace.variant) == ("s-1", "u-7", "B")
    assert trace.tags == ["beta"] and trace.metadata == {"page": "faq"}
    assert trace.status == "ok" and trace.http_status == 200 and trace.latency_ms > 0
    assert trace.base_url == "http://fake.local/v1/"


async def test_async_chat_round_trip(wb, fake):
    client = wb.wrap(fake.async_client())
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        workbench={"session_id": "s-a", "parent_id": "01parent000000000000000000"},
    )
    assert resp.choices[0].message.content == "Paris is the capital of France."
    wb.flush()
    trace = stored(wb, workbench.trace_id(resp))
    assert trace.session_id == "s-a" and trace.parent_id == "01parent000000000000000000"
    assert trace.output_text == resp.choices[0].message.content


def test_sync_stream_assembles_output_ttft_and_usage(wb, fake):
    fake.push(chat_sse(["Par", "is", "."]))
    client = wb.wrap(fake.client())
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Paris."
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert trace.stream and trace.output_text == "Paris."
    assert trace.ttft_ms is not None and trace.ttft_ms <= trace.latency_ms
    assert (trace.prompt_tokens, trace.completion_tokens) == (5, 3)
    assert trace.provider_response_id == "chatcmpl-s1" and trace.system_fingerprint == "fp_stream"
    assert trace.params == {"stream_options": {"include_usage": True}}


async def test_async_stream_with_tool_call(wb, fake):
    fake.push(chat_sse([], tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'}, usage=False))
    client = wb.wrap(fake.async_client())
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert trace.tool_calls == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert trace.prompt_tokens is None  # the stream did not report usage


def test_stream_closed_early_is_still_recorded(wb, fake):
    fake.push(chat_sse(["a", "b", "c", "d"]))
    client = wb.wrap(fake.client())
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    wb.flush()
    assert stored(wb, workbench.trace_id(stream)).stream


def test_tool_calls_non_streaming(wb, fake):
    call = {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    fake.push(chat_body(tool_calls=[call]))
    client = wb.wrap(fake.client())
    resp = client.chat.completions.create(
        model="m",
        messages=MESSAGES,
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
    )
    wb.flush()
    trace = stored(wb, workbench.trace_id(resp))
    assert trace.tool_calls == [call] and trace.output_text is None
    assert trace.params["tools"][0]["function"]["name"] == "lookup"


def test_responses_sync_and_stream(wb, fake):
    fake.push(
        responses_body("Bonjour.", function_call={"name": "f", "arguments": "{}"}), responses_sse(["Bon", "jour"])
    )
    client = wb.wrap(fake.client())
    resp = client.responses.create(model="gpt-4.1", input="Say hello in French", instructions="Be terse.")
    assert resp.output_text == "Bonjour."
    stream = client.responses.create(model="gpt-4.1", input=[{"role": "user", "content": "again"}], stream=True)
    list(stream)
    wb.flush()
    first = stored(wb, workbench.trace_id(resp))
    assert first.operation == "responses"
    assert first.input == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Say hello in French"},
    ]
    assert first.output_text == "Bonjour." and first.model_resolved == "gpt-4.1-2025-04-14"
    assert first.tool_calls[0]["function"]["name"] == "f"
    assert (first.prompt_tokens, first.completion_tokens) == (9, 3)
    second = stored(wb, workbench.trace_id(stream))
    assert second.stream and second.output_text == "Bonjour" and second.provider_response_id == "resp_s1"


async def test_async_responses(wb, fake):
    fake.push(responses_body("Salut."))
    client = wb.wrap(fake.async_client())
    resp = await client.responses.create(model="gpt-4.1", input="hi")
    wb.flush()
    assert stored(wb, "resp_1").id == workbench.trace_id(resp)


def test_http_error_recorded_and_reraised_unchanged(wb, fake):
    fake.push(httpx.Response(429, json={"error": {"message": "Rate limit reached", "type": "rate_limit"}}))
    client = wb.wrap(fake.client())
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "s-err"})
    assert caught.value.status_code == 429
    wb.flush()
    with wb.store.read() as conn:
        (trace,) = trace_rows.list_traces(conn, session_id="s-err")
    assert trace.status == "error" and trace.error_type == "RateLimitError" and trace.http_status == 429
    assert "Rate limit reached" in trace.error_message
    assert trace.input == MESSAGES


async def test_timeout_recorded_and_reraised(wb, fake):
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.push(boom)
    client = wb.wrap(fake.async_client())
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "s-to"})
    wb.flush()
    with wb.store.read() as conn:
        (trace,) = trace_rows.list_traces(conn, session_id="s-to")
    assert trace.status == "error" and trace.error_type == "APITimeoutError"


def test_prompt_versioning(wb):
    first = wb.prompts.register("greet", "Hello {name}")
    assert wb.prompts.register("greet", "Hello {name}") == first
    second = wb.prompts.register("greet", "Hello {name}, welcome to {place}")
    assert (first.version, second.version) == (1, 2)
    assert second.variables == ["name", "place"] and second.content_hash != first.content_hash
    assert wb.prompts.get("greet") == second and wb.prompts.get("greet", 1) == first
    assert wb.prompts.get("greet@1") == first
    assert [p.version for p in wb.prompts.versions("greet")] == [1, 2]
    other = wb.prompts.register("other", "Hello {name}")
    assert other.version == 1
    with pytest.raises(workbench.errors.NotFoundError, match="greet@9"):
        wb.prompts.get("greet", 9)
    with pytest.raises(ValidationError, match="must not contain '@'"):
        wb.prompts.register("bad@name", "x")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"sesion_id": "s"}, "unknown key 'sesion_id'"),
        ({"session_id": 5}, "'session_id'.*must be a str"),
        ({"tags": "beta"}, "'tags'.*must be a list"),
        ({"prompt": "support@1"}, "must be a Prompt"),
        ("s-1", "must be a dict"),
    ],
)
def test_wrong_workbench_keys_fail_clearly(wb, fake, context, message):
    client = wb.wrap(fake.client())
    with pytest.raises(InvalidContextError, match=message):
        client.chat.completions.create(model="m", messages=MESSAGES, workbench=context)
    assert fake.requests == []  # nothing was sent


def test_disabled_mode_is_a_passthrough(sqlite_url, fake, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DISABLED", "1")
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        client = wb.wrap(fake.client())
        resp = client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "s"})
        assert resp.choices[0].message.content and workbench.trace_id(resp) is None
        assert wb.flush().traces == 0
        with wb.store.read() as conn:
            assert trace_rows.count_traces(conn) == 0


def test_sampling_keeps_whole_sessions(sqlite_url, fake):
    with workbench.open(sqlite_url, background_ingest=False, sample_rate=0.5) as wb:
        client = wb.wrap(fake.client())
        kept = {}
        for session in range(40):
            for _ in range(3):
                resp = client.chat.completions.create(
                    model="m", messages=MESSAGES, workbench={"session_id": f"s{session}"}
                )
                kept.setdefault(session, set()).add(workbench.trace_id(resp) is not None)
        assert all(len(v) == 1 for v in kept.values())  # all or nothing per session
        share = sum(v == {True} for v in kept.values()) / len(kept)
        assert 0.2 < share < 0.8
        assert wb.flush().traces == 3 * sum(v == {True} for v in kept.values())


def test_redact_hook_runs_before_anything_is_spooled(sqlite_url, fake):
    fake.push(chat_body("Write to bob@example.com"))

    def redact(data):
        if isinstance(data, str):
            return data.replace("bob@example.com", "[EMAIL]")
        if isinstance(data, dict):
            return {k: redact(v) for k, v in data.items()}
        if isinstance(data, list):
            return [redact(v) for v in data]
        return data

    with workbench.open(sqlite_url, background_ingest=False, redact=redact) as wb:
        client = wb.wrap(fake.client())
        resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "mail bob@example.com"}])
        assert resp.choices[0].message.content == "Write to bob@example.com"  # the app sees the real answer
        wb._writer.flush()
        spooled = b"".join(p.read_bytes() for p in wb.spool_dir.glob("*.wbspool"))
        assert b"bob@example.com" not in spooled and b"[EMAIL]" in spooled
        wb.flush()
        trace = stored(wb, workbench.trace_id(resp))
        assert trace.input == [{"role": "user", "content": "mail [EMAIL]"}]
        assert trace.output_text == "Write to [EMAIL]"


def test_wrap_rejects_non_clients(sqlite_url):
    with workbench.open(sqlite_url, background_ingest=False) as wb:
        with pytest.raises(ValidationError, match=r"openai\.OpenAI"):
            wb.wrap(object())


def test_unwrapped_methods_still_work(wb, fake):
    client = wb.wrap(fake.client())
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.parse().choices[0].message.content
    assert client.api_key == "sk-test" and isinstance(client, openai.OpenAI)


def test_clock_override_for_replaying_recorded_traffic(sqlite_url, fake):
    with workbench.open(sqlite_url, background_ingest=False, clock=lambda: 1_700_000_000.25) as wb:
        resp = wb.wrap(fake.client()).chat.completions.create(model="m", messages=MESSAGES)
        wb.flush()
        assert stored(wb, workbench.trace_id(resp)).created_at.timestamp() == 1_700_000_000.25
