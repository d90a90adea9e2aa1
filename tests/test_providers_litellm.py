"""``litellm.callbacks = [wb.litellm_callback()]``: LiteLLM's real provider code talks HTTP to a local server
(pytest-httpserver) answering in OpenAI's and Anthropic's shapes; the callback's rows match the wrapper's."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM fetches a price list on import otherwise
litellm = pytest.importorskip("litellm")

import workbench  # noqa: E402

from .openai_fakes import chat_body, chat_sse  # noqa: E402
from .provider_support import MODEL_VERSION, AnthropicEndpoint, message_body  # noqa: E402
from .wrap_support import all_traces, stored  # noqa: E402

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False)
    callback = handle.litellm_callback()
    litellm.callbacks = [callback]
    yield handle
    litellm.logging_callback_manager.remove_callback_from_all_lists(callback)  # LiteLLM copies it to its lists
    litellm.callbacks = []
    handle.close()


def traces_when_logged(wb, count: int, timeout: float = 20.0) -> list:
    """LiteLLM runs callbacks in its logging thread after the call returns: wait for them (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        wb.flush()
        found = all_traces(wb)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_openai_compatible_provider(wb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(chat_body("Paris.", rid="chatcmpl-9"))
    prompt = wb.prompts.register("capital", "Capital of {country}?")
    resp = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=httpserver.url_for("/v1"),
        api_key="sk-test",
        messages=QUESTION,
        temperature=0.1,
        metadata={"workbench": {"session_id": "s-1", "user_id": "u-1", "prompt": prompt, "tags": ["ll"]}},
    )
    assert resp.choices[0].message.content == "Paris."
    (trace,) = traces_when_logged(wb, 1)
    assert (trace.operation, trace.status, trace.stream) == ("chat", "ok", False)
    assert (trace.model_requested, trace.model_resolved) == ("openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert (trace.provider_response_id, trace.output_text, trace.input) == ("chatcmpl-9", "Paris.", QUESTION)
    assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (12, 8, 20)
    assert trace.params == {"temperature": 0.1} and trace.base_url.startswith(httpserver.url_for("/"))
    assert (trace.session_id, trace.user_id, trace.prompt_name, trace.tags) == ("s-1", "u-1", "capital", ["ll"])
    assert trace.latency_ms > 0 and trace.http_status == 200


def test_anthropic_through_litellm_matches_the_anthropic_wrapper(wb, httpserver):
    """The same Anthropic answer reached through LiteLLM and through wb.wrap(Anthropic()): one trace shape."""
    body = message_body("Let me look.", tool={"name": "get_weather", "input": {"city": "Paris"}})
    httpserver.expect_request("/v1/messages").respond_with_json(body)
    litellm.completion(
        model="anthropic/claude-sonnet-4-5",
        api_base=httpserver.url_for("/"),
        api_key="sk-ant-test",
        messages=QUESTION,
        tools=[WEATHER],
        max_tokens=64,
    )
    (via_litellm,) = traces_when_logged(wb, 1)
    direct = wb.wrap(AnthropicEndpoint(body).client())
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
    resp = direct.messages.create(
        model="claude-sonnet-4-5", system="Be brief.", messages=QUESTION[1:], tools=[tool], max_tokens=64
    )
    wb.flush()
    via_wrap = stored(wb, workbench.trace_id(resp))
    for trace in (via_litellm, via_wrap):
        assert trace.model_resolved == MODEL_VERSION and trace.input == QUESTION
        assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (12, 3, 15)
        assert trace.output_text == "Let me look." and trace.operation == "chat"
        (call,) = trace.tool_calls
        assert (call["id"], call["function"]["name"]) == ("toolu_01", "get_weather")
        assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert via_litellm.model_requested == "anthropic/claude-sonnet-4-5"


def test_streamed_completion(wb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_data(
        chat_sse(["Par", "is"]), content_type="text/event-stream"
    )
    stream = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=httpserver.url_for("/v1"),
        api_key="sk-test",
        messages=QUESTION,
        stream=True,
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "Paris"
    (trace,) = traces_when_logged(wb, 1)
    assert (trace.stream, trace.status, trace.output_text) == (True, "ok", "Paris")
    assert trace.ttft_ms is not None and 0 <= trace.ttft_ms <= trace.latency_ms


def test_provider_error_is_recorded_and_the_app_still_gets_it(wb, httpserver):
    error = {"error": {"message": "Incorrect API key", "type": "invalid_request_error"}}
    httpserver.expect_request("/v1/chat/completions").respond_with_json(error, status=401)
    with pytest.raises(litellm.AuthenticationError):
        litellm.completion(
            model="openai/gpt-4o-mini", api_base=httpserver.url_for("/v1"), api_key="bad", messages=QUESTION
        )
    (trace,) = traces_when_logged(wb, 1)
    assert (trace.status, trace.http_status, trace.error_type) == ("error", 401, "AuthenticationError")
    assert "Incorrect API key" in trace.error_message and trace.input == QUESTION


def test_bad_context_is_noted_and_the_call_is_kept(wb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(chat_body("Paris."))
    litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=httpserver.url_for("/v1"),
        api_key="sk-test",
        messages=QUESTION,
        metadata={"workbench": {"sesion_id": "typo"}},
    )
    (trace,) = traces_when_logged(wb, 1)
    assert trace.output_text == "Paris." and trace.session_id is None
    assert "unknown key 'sesion_id'" in trace.metadata["workbench_capture_error"]


async def test_async_completion_is_recorded_once(wb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(chat_body("Paris."))
    resp = await litellm.acompletion(
        model="openai/gpt-4o-mini",
        api_base=httpserver.url_for("/v1"),
        api_key="sk-test",
        messages=QUESTION,
        metadata={"workbench": {"session_id": "s-async"}},
    )
    assert resp.choices[0].message.content == "Paris."
    for _ in range(200):  # the async callback runs in LiteLLM's logging task on this loop
        await asyncio.sleep(0.05)
        wb.flush()
        if all_traces(wb):
            break
    await asyncio.sleep(0.3)  # had LiteLLM also run the sync hook, a second record would land by now
    wb.flush()
    (trace,) = all_traces(wb)
    assert (trace.session_id, trace.output_text) == ("s-async", "Paris.")


def test_two_stores_each_get_their_own_callback(wb, httpserver, tmp_path):
    """LiteLLM drops a callback it takes for a duplicate of one it has; a second store's must still record."""
    other = workbench.open(f"sqlite:///{tmp_path / 'other.db'}", background_ingest=False)
    second = other.litellm_callback()
    litellm.callbacks = [*litellm.callbacks, second]
    try:
        httpserver.expect_request("/v1/chat/completions").respond_with_json(chat_body("Paris."))
        litellm.completion(
            model="openai/gpt-4o-mini", api_base=httpserver.url_for("/v1"), api_key="sk-test", messages=QUESTION
        )
        assert len(traces_when_logged(wb, 1)) == 1
        assert len(traces_when_logged(other, 1)) == 1
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(second)
        other.close()


def test_workbench_context_block_tags_sync_calls(wb, httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(chat_body("Paris."))
    with workbench.context(session_id="s-ctx", tags=["block"]):
        litellm.completion(
            model="openai/gpt-4o-mini", api_base=httpserver.url_for("/v1"), api_key="sk-test", messages=QUESTION
        )
    (trace,) = traces_when_logged(wb, 1)
    assert (trace.session_id, trace.tags) == ("s-ctx", ["block"])
