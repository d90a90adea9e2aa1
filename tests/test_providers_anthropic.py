"""``wb.wrap(Anthropic())``: every messages call is recorded through the SDK's own client and transport
(httpx MockTransport behind ``anthropic.DefaultHttpxClient``), spooled before it returns, and ingested
into the same trace row an OpenAI chat call makes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

import workbench
from workbench.capture.ingest import ingest_spool
from workbench.errors import InvalidContextError, ValidationError
from workbench.store import open_store

from .openai_fakes import chat_body
from .provider_support import MODEL, MODEL_VERSION, AnthropicEndpoint, message_body, message_sse, tool_sse
from .wrap_support import Endpoint, all_traces, stored

REPO = Path(__file__).resolve().parents[1]
QUESTION = [{"role": "user", "content": "Capital of France?"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def wb(store_url: str):  # SQLite, and PostgreSQL where WORKBENCH_TEST_PG names one
    handle = workbench.open(store_url, background_ingest=False)
    yield handle
    handle.close()


def test_create_records_model_version_usage_stop_reason_and_context(wb):
    usage = {"input_tokens": 10, "output_tokens": 3, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}
    server = AnthropicEndpoint(message_body("Paris.", usage=usage), message_body("Paris.", usage=usage))
    plain = server.client().messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=QUESTION, stop_sequences=["\n\n"]
    )
    client = wb.wrap(server.client())
    assert isinstance(client, anthropic.Anthropic)
    prompt = wb.prompts.register("capital", "Capital of {country}?")
    resp = client.messages.create(
        model=MODEL,
        max_tokens=64,
        system="Be brief.",
        messages=QUESTION,
        stop_sequences=["\n\n"],
        workbench={"prompt": prompt, "session_id": "s-1", "user_id": "u-1", "variables": {"country": "France"}},
    )
    assert resp == plain  # the app gets exactly what the unwrapped SDK returns
    assert server.bodies()[0] == server.bodies()[1]  # and the server sees the same request (no workbench= leak)
    wb.flush()
    trace = stored(wb, resp.id)  # found by the provider's message id too
    assert trace.id == workbench.trace_id(resp)
    assert (trace.operation, trace.status, trace.stream) == ("chat", "ok", False)
    assert (trace.model_requested, trace.model_resolved) == (MODEL, MODEL_VERSION)
    assert trace.input == [{"role": "system", "content": "Be brief."}, *QUESTION]
    assert trace.output_text == "Paris." and trace.tool_calls is None
    assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (115, 3, 118)  # cached input counted
    assert trace.params == {"max_tokens": 64, "stop_sequences": ["\n\n"]}  # unset SDK arguments are not params
    assert trace.metadata == {"workbench_stop_reason": "end_turn"}
    assert (trace.session_id, trace.user_id, trace.prompt_name, trace.prompt_version) == ("s-1", "u-1", "capital", 1)
    assert trace.variables == {"country": "France"} and trace.base_url == "http://anthropic.fake"
    assert trace.latency_ms > 0 and trace.http_status == 200


def test_tool_use_becomes_tool_calls_and_the_tool_result_turn_is_kept(wb):
    server = AnthropicEndpoint(message_body("Let me look.", tool={"name": "get_weather", "input": {"city": "Paris"}}))
    client = wb.wrap(server.client())
    first = client.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=QUESTION)
    follow_up = [
        *QUESTION,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "18 C, sunny"}]},
    ]
    second = client.messages.create(model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=follow_up)
    wb.flush()
    trace = stored(wb, workbench.trace_id(first))
    assert trace.output_text == "Let me look."
    assert trace.tool_calls == [
        {"id": "toolu_01", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    ]
    assert trace.metadata["workbench_stop_reason"] == "tool_use" and trace.params["tools"] == [WEATHER_TOOL]
    again = stored(wb, workbench.trace_id(second))
    assert again.input[-1]["content"][0]["type"] == "tool_result" and again.input[1]["content"][1]["type"] == "tool_use"


def test_stream_create_records_text_usage_and_time_to_first_token(wb):
    server = AnthropicEndpoint(message_sse(["Par", "is", "."]))
    client = wb.wrap(server.client())
    stream = client.messages.create(model=MODEL, max_tokens=64, messages=QUESTION, stream=True)
    text = "".join(e.delta.text for e in stream if e.type == "content_block_delta")
    assert text == "Paris."
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert (trace.status, trace.stream, trace.output_text) == ("ok", True, "Paris.")
    assert (trace.provider_response_id, trace.model_resolved) == ("msg_s1", MODEL_VERSION)
    assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (12, 3, 15)
    assert trace.ttft_ms is not None and trace.ttft_ms <= trace.latency_ms


def test_stream_helper_with_tool_use(wb):
    server = AnthropicEndpoint(tool_sse("get_weather", {"city": "Paris", "unit": "C"}))
    client = wb.wrap(server.client())
    with client.messages.stream(
        model=MODEL, max_tokens=64, tools=[WEATHER_TOOL], messages=QUESTION, workbench={"session_id": "s-9"}
    ) as stream:
        final = stream.get_final_message()
    assert final.content[1].input == {"city": "Paris", "unit": "C"}
    wb.flush()
    trace = stored(wb, workbench.trace_id(stream))
    assert trace.session_id == "s-9" and trace.output_text == "Checking."
    assert json.loads(trace.tool_calls[0]["function"]["arguments"]) == {"city": "Paris", "unit": "C"}
    assert trace.tool_calls[0]["id"] == "toolu_s1" and trace.metadata["workbench_stop_reason"] == "tool_use"
    assert "x-workbench-context" not in {k.lower() for k in server.requests[0].headers}


def test_stream_cut_before_message_stop_is_an_error_and_closed_early_is_cancelled(wb):
    server = AnthropicEndpoint(message_sse(["Par", "is"], end=False), message_sse(["Par", "is", " the", " capital"]))
    client = wb.wrap(server.client())
    cut = client.messages.create(model=MODEL, max_tokens=64, messages=QUESTION, stream=True)
    list(cut)  # the SDK raises nothing: the connection simply ended
    left = client.messages.create(model=MODEL, max_tokens=64, messages=QUESTION, stream=True)
    for event in left:
        if event.type == "content_block_delta":
            break
    left.close()
    wb.flush()
    broken = stored(wb, workbench.trace_id(cut))
    assert (broken.status, broken.error_type, broken.output_text) == ("error", "IncompleteStream", "Paris")
    assert stored(wb, workbench.trace_id(left)).status == "cancelled"


def test_api_error_is_recorded_then_raised_unchanged(wb):
    overloaded = (529, {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server = AnthropicEndpoint(overloaded, overloaded)
    with pytest.raises(anthropic.APIStatusError) as plain:
        server.client().messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
    client = wb.wrap(server.client())
    with pytest.raises(type(plain.value)) as wrapped:
        client.messages.create(model=MODEL, max_tokens=8, messages=QUESTION)
    assert str(wrapped.value) == str(plain.value)
    wb.flush()
    (trace,) = all_traces(wb)
    assert (trace.status, trace.http_status, trace.error_type) == ("error", 529, type(plain.value).__name__)
    assert "Overloaded" in trace.error_message and trace.model_requested == MODEL


def test_bad_context_raises_before_anything_is_sent(wb):
    server = AnthropicEndpoint()
    client = wb.wrap(server.client())
    with pytest.raises(InvalidContextError, match="unknown key 'sesion_id'"):
        client.messages.create(model=MODEL, max_tokens=8, messages=QUESTION, workbench={"sesion_id": "x"})
    assert server.requests == []


def test_other_clients_are_refused_with_a_clear_error(wb):
    with pytest.raises(ValidationError, match="wrap\\(\\) takes an openai"):
        wb.wrap(object())
    bedrock = anthropic.AnthropicBedrock(aws_region="us-east-1", aws_access_key="k", aws_secret_key="s")
    with pytest.raises(ValidationError, match=r"anthropic\.Anthropic or anthropic\.AsyncAnthropic"):
        wb.wrap(bedrock)


async def test_async_create_and_stream(wb):
    server = AnthropicEndpoint(message_body("Paris."), message_sse(["Par", "is"]))
    client = wb.wrap(server.async_client())
    assert isinstance(client, anthropic.AsyncAnthropic)
    resp = await client.messages.create(model=MODEL, max_tokens=8, messages=QUESTION, workbench={"user_id": "u-2"})
    async with client.messages.stream(model=MODEL, max_tokens=8, messages=QUESTION) as stream:
        text = await stream.get_final_text()
    assert (resp.content[0].text, text) == ("Paris.", "Paris")
    wb.flush()
    first, second = stored(wb, workbench.trace_id(resp)), stored(wb, workbench.trace_id(stream))
    assert (first.user_id, first.output_text, first.stream) == ("u-2", "Paris.", False)
    assert (second.output_text, second.status, second.stream) == ("Paris", "ok", True)


def test_same_trace_row_as_the_openai_wrapper(wb):
    """One question and answer through each SDK: the rows agree on everything but the provider's ids."""
    openai_server = Endpoint(chat_body("Paris.", model=MODEL_VERSION, rid="chatcmpl-1"))
    claude = AnthropicEndpoint(message_body("Paris.", usage={"input_tokens": 9, "output_tokens": 2}))
    system = "Be brief."
    a = wb.wrap(openai_server.client()).chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": system}, *QUESTION], max_tokens=8
    )
    b = wb.wrap(claude.client()).messages.create(model=MODEL, system=system, messages=QUESTION, max_tokens=8)
    wb.flush()
    rows = [stored(wb, workbench.trace_id(r)).model_dump() for r in (a, b)]
    same = ("operation", "input", "output_text", "tool_calls", "model_requested", "model_resolved", "params", "status")
    assert [rows[0][k] for k in same] == [rows[1][k] for k in same]
    assert rows[1]["total_tokens"] == 11


def test_sigkill_right_after_the_call_loses_nothing(sqlite_url, tmp_path):
    code = (
        "import sys, time, workbench\n"
        "from tests.provider_support import AnthropicEndpoint\n"
        f"wb = workbench.open({sqlite_url!r}, ingest='off')\n"
        "client = wb.wrap(AnthropicEndpoint().client())\n"
        "for i in range(50):\n"
        "    client.messages.create(model='m', max_tokens=8, messages=[{'role': 'user', 'content': f'q{i}'}])\n"
        "print('done', flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "done"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = open_store(sqlite_url)
    stats = ingest_spool(store, workbench.workbench.spool_dir(store))
    assert stats.traces == 50
    with store.read() as conn:
        from workbench.store import traces as trace_rows

        texts = {t.input[0]["content"] for t in trace_rows.list_traces(conn, limit=100)}
    assert texts == {f"q{i}" for i in range(50)}


def test_raw_and_streaming_response_and_beta_messages_are_recorded(wb):
    server = AnthropicEndpoint(message_body("One."), message_sse(["Tw", "o."]), message_body("Three.", mid="msg_b"))
    client = wb.wrap(server.client())
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=8, messages=QUESTION)
    assert raw.parse().content[0].text == "One."
    with client.messages.with_streaming_response.create(
        model=MODEL, max_tokens=8, messages=QUESTION, stream=True
    ) as streamed:
        events = [line for line in streamed.iter_lines() if line.startswith("event:")]
    assert events[-1] == "event: message_stop"
    beta = client.beta.messages.create(model=MODEL, max_tokens=8, messages=QUESTION, workbench={"variant": "beta"})
    assert beta.content[0].text == "Three."
    wb.flush()
    first, second, third = (stored(wb, workbench.trace_id(r)) for r in (raw, streamed, beta))
    assert (first.output_text, second.output_text, third.output_text) == ("One.", "Two.", "Three.")
    assert second.stream and second.status == "ok" and third.variant == "beta"
    assert all("x-workbench-context" not in {k.lower() for k in r.headers} for r in server.requests)


def test_redact_hook_runs_on_anthropic_request_and_answer_before_the_spool(sqlite_url):
    def redact(value):
        return json.loads(json.dumps(value).replace("Paris", "[CITY]"))

    with workbench.open(sqlite_url, background_ingest=False, redact=redact) as wb:
        server = AnthropicEndpoint(message_body("Paris, of course."))
        client = wb.wrap(server.client())
        resp = client.messages.create(
            model=MODEL, max_tokens=8, system="Paris trip helper", messages=[{"role": "user", "content": "Paris?"}]
        )
        assert resp.content[0].text == "Paris, of course."  # the app sees the real answer
        spooled = b"".join(p.read_bytes() for p in workbench.workbench.spool_dir(wb.store).rglob("*") if p.is_file())
        assert b"Paris" not in spooled
        wb.flush()
        trace = stored(wb, workbench.trace_id(resp))
        assert trace.output_text == "[CITY], of course."
        assert trace.input == [
            {"role": "system", "content": "[CITY] trip helper"},
            {"role": "user", "content": "[CITY]?"},
        ]
        assert trace.metadata["workbench_stop_reason"] == "end_turn"


def test_export_traces_round_trip_keeps_an_anthropic_trace(wb):
    """export-traces' line format carries an Anthropic trace like any chat trace: read back, the same row."""
    import orjson

    from workbench.importers.trace_format import line_to_row, row_to_line

    server = AnthropicEndpoint(message_body("Let me look.", tool={"name": "get_weather", "input": {"city": "Paris"}}))
    resp = wb.wrap(server.client()).messages.create(
        model=MODEL, max_tokens=64, system="Be brief.", messages=QUESTION, workbench={"session_id": "s-rt"}
    )
    wb.flush()
    row = stored(wb, workbench.trace_id(resp)).model_dump()
    line = orjson.dumps(row_to_line(row))
    again = line_to_row(orjson.loads(line), line)
    keys = ("id", "created_at", "operation", "provider_response_id", "session_id", "model_requested", "model_resolved")
    keys += ("params", "input", "output_text", "tool_calls", "prompt_tokens", "completion_tokens", "total_tokens")
    assert {k: again[k] for k in (*keys, "metadata")} == {k: row[k] for k in (*keys, "metadata")}


async def test_parse_with_output_format_and_an_async_stream_left_early(wb):
    import pydantic

    class City(pydantic.BaseModel):
        name: str

    server = AnthropicEndpoint(message_body('{"name": "Paris"}'), message_sse(["Par", "is", " is", " nice"]))
    client = wb.wrap(server.async_client())
    parsed = await client.messages.parse(
        model=MODEL, max_tokens=8, messages=QUESTION, output_format=City, workbench={"session_id": "s-p"}
    )
    assert parsed.parsed_output == City(name="Paris")
    async with client.messages.stream(model=MODEL, max_tokens=8, messages=QUESTION) as stream:
        async for event in stream:
            if event.type == "text":
                break
    wb.flush()
    first, second = stored(wb, workbench.trace_id(parsed)), stored(wb, workbench.trace_id(stream))
    assert first.session_id == "s-p" and first.output_text == '{"name": "Paris"}'
    assert first.params["output_config"]["format"]["schema"]["title"] == "City"  # the schema the SDK sent
    assert second.status == "cancelled"
