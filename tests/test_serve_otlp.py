"""`workbench serve` receiving OTLP/HTTP from real producers: the OpenTelemetry Python SDK's exporters
(protobuf and JSON), OpenInference's and OpenLLMetry's OpenAI instrumentations; each trace equals, field by
field, what the wrapper records for the same call (the OpenAI API replaced at the transport)."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import workbench
from workbench.store import keys as key_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .openai_fakes import FakeOpenAI, chat_body
from .serve_support import ServeThread, wait_for

pytest.importorskip("opentelemetry.sdk.trace", reason="needs the test extra opentelemetry-sdk")

COMPARED = [
    "operation",
    "provider_response_id",
    "session_id",
    "user_id",
    "model_requested",
    "model_resolved",
    "system_fingerprint",
    "params",
    "input",
    "output_text",
    "tool_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "stream",
    "status",
    "error_type",
    "http_status",
    "tags",
    "variables",
    "variant",
]


@pytest.fixture
def store(store_url: str) -> Iterator[Any]:
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def key(store: Any) -> str:
    with store.write() as conn:
        return key_rows.create_key(conn, "tests", ["ingest", "feedback"])[1]


@pytest.fixture
def serve(store_url: str, store: Any, tmp_path: Any) -> Iterator[ServeThread]:
    with ServeThread(store_url, spool=str(tmp_path / "serve-spool"), ingest_interval=0.2) as running:
        yield running


def _tracer_provider(exporter: Any) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _proto_exporter(serve: ServeThread, key: str, **kwargs: Any) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=f"{serve.url}/v1/traces", headers={"Authorization": f"Bearer {key}"}, **kwargs)


def _json_exporter(serve: ServeThread, key: str) -> Any:
    mod = pytest.importorskip(
        "opentelemetry.exporter.otlp.json.http.trace_exporter",
        reason="needs the test extra opentelemetry-exporter-otlp-json-http",
    )
    return mod.OTLPSpanExporter(endpoint=f"{serve.url}/v1/traces", headers={"Authorization": f"Bearer {key}"})


def _wrapper_row(store_url: str, fake: FakeOpenAI, call: Any) -> Any:
    wb = workbench.open(store_url, ingest="off")
    try:
        response = call(wb.wrap(fake.client()))
        wb.flush()
        with wb.store.read() as conn:
            return trace_rows.get_trace(conn, workbench.trace_id(response))
    finally:
        wb.close()


def _served_rows(serve: ServeThread, store: Any, n: int = 1) -> list[Any]:
    def stored() -> list[Any]:
        serve.ingest()
        with store.read() as conn:
            found = [t for t in trace_rows.list_traces(conn, limit=100) if "otel" in (t.metadata or {})]
        return found if len(found) >= n else []

    return wait_for(stored)


def _assert_same(ours: Any, theirs: Any, skip: tuple[str, ...] = ()) -> None:
    a, b = ours.model_dump(), theirs.model_dump()
    diffs = {f: (a[f], b[f]) for f in COMPARED if f not in skip and a[f] != b[f]}
    assert not diffs, diffs
    app_metadata = {k: v for k, v in b["metadata"].items() if k != "otel"}
    assert app_metadata == a["metadata"]


def _chat(client: Any, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}],
        temperature=0.2,
        **extra,
    )


def test_openinference_over_protobuf_equals_the_wrapper(store_url, store, key, serve):
    from openinference.instrumentation import using_attributes
    from openinference.instrumentation.openai import OpenAIInstrumentor

    fake = FakeOpenAI()
    context = {"session_id": "s-1", "user_id": "u-7", "tags": ["beta"], "metadata": {"plan": "pro"}}
    wrapped = _wrapper_row(store_url, fake, lambda c: _chat(c, workbench=context))

    provider = _tracer_provider(_proto_exporter(serve, key))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with using_attributes(session_id="s-1", user_id="u-7", tags=["beta"], metadata={"plan": "pro"}):
            _chat(fake.client())
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    [served] = _served_rows(serve, store)
    _assert_same(wrapped, served)
    assert served.id != wrapped.id and len(served.id) == 26
    assert served.latency_ms is not None and served.latency_ms >= 0
    otel = served.metadata["otel"]
    assert otel["resource"]["service.name"] == "checkout-api"
    assert otel["attributes"]["llm.system"] == "openai"  # unknown attributes are kept, not dropped


def test_openinference_tool_calls_and_errors_equal_the_wrapper(store_url, store, key, serve):
    from openinference.instrumentation.openai import OpenAIInstrumentor

    calls = [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}]
    fake = FakeOpenAI().push(chat_body(tool_calls=calls, rid="chatcmpl-tools"))
    wrapped = _wrapper_row(store_url, fake, _chat)
    fake.push(chat_body(tool_calls=calls, rid="chatcmpl-tools"))
    from opentelemetry.exporter.otlp.proto.http import Compression

    provider = _tracer_provider(_proto_exporter(serve, key, compression=Compression.Gzip))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        _chat(fake.client())
        fake.push(httpx.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}}))
        with pytest.raises(Exception, match="slow down"):
            _chat(fake.client())
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    rows = sorted(_served_rows(serve, store, 2), key=lambda t: t.id)
    _assert_same(wrapped, rows[0])
    assert rows[0].tool_calls == calls
    assert rows[1].status == "error" and rows[1].error_type == "RateLimitError"
    assert "slow down" in rows[1].error_message


def test_openllmetry_current_genai_semconv_over_json_equals_the_wrapper(store_url, store, key, serve, monkeypatch):
    """OpenLLMetry emits the current GenAI attributes (gen_ai.input.messages / gen_ai.output.messages)."""
    instrumentation = pytest.importorskip(
        "opentelemetry.instrumentation.openai", reason="needs the test extra opentelemetry-instrumentation-openai"
    )
    monkeypatch.setenv("TRACELOOP_TRACE_CONTENT", "true")
    fake = FakeOpenAI()
    wrapped = _wrapper_row(store_url, fake, _chat)
    # OpenLLMetry's uninstrument() leaves the SDK patched (a traceparent header on every later request of this
    # process), so the instrumented app runs in a forked child, as a real app would in its own process.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            provider = _tracer_provider(_json_exporter(serve, key))
            instrumentation.OpenAIInstrumentor().instrument(tracer_provider=provider)
            _chat(fake.client())
            provider.shutdown()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [served] = _served_rows(serve, store)
    _assert_same(wrapped, served)
    assert served.base_url == wrapped.base_url


def _otlp_json(spans: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]
    }


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def _span(
    span_id: str, name: str, attrs: dict[str, Any], parent: str | None = None, trace: str = "ab" * 16, **extra: Any
) -> dict[str, Any]:
    span = {
        "traceId": trace,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": "1764800000000000000",
        "endTimeUnixNano": "1764800000250000000",
        "attributes": [_attr(k, v) for k, v in attrs.items()],
        "status": {"code": 1},
        **extra,
    }
    if parent:
        span["parentSpanId"] = parent
    return span


def _post(serve: ServeThread, key: str, body: bytes, content_type: str = "application/json", **headers: str) -> Any:
    return httpx.post(
        f"{serve.url}/v1/traces",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type, **headers},
        timeout=30,
    )


def test_older_genai_forms_events_workbench_attributes_and_the_span_tree(store, key, serve):
    older = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024",
        "gen_ai.response.id": "chatcmpl-old",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Where is my order?",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "It ships today.",
        "gen_ai.usage.prompt_tokens": 7,
        "gen_ai.usage.completion_tokens": 4,
        "workbench.prompt.name": "support-answer",
        "workbench.prompt.version": 3,
        "workbench.variant": "B",
        "workbench.prompt.variables": json.dumps({"question": "Where is my order?"}),
        "gen_ai.conversation.id": "conv-9",
        "enduser.id": "u-1",
        "app.custom": "kept",
    }
    events = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.id": "chatcmpl-ev",
    }
    event_list = [
        {
            "name": "gen_ai.system.message",
            "timeUnixNano": "1764800000000000001",
            "attributes": [_attr("content", "Be kind.")],
        },
        {"name": "gen_ai.user.message", "timeUnixNano": "1764800000000000002", "attributes": [_attr("content", "Hi")]},
        {
            "name": "gen_ai.choice",
            "timeUnixNano": "1764800000000000003",
            "attributes": [_attr("index", 0), _attr("message", json.dumps({"content": "Hello!"}))],
        },
    ]
    body = _otlp_json(
        [
            _span("1111111111111111", "agent run", {"agent.name": "support"}),
            _span("2222222222222222", "chat gpt-4o-mini", older, parent="1111111111111111"),
            _span("3333333333333333", "tool lookup", {"tool.name": "orders"}, parent="2222222222222222"),
            _span("4444444444444444", "chat", events, parent="3333333333333333", events=event_list),
        ]
    )
    response = _post(serve, key, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json() == {}
    rows = {t.provider_response_id: t for t in _served_rows(serve, store, 2)}
    assert set(rows) == {"chatcmpl-old", "chatcmpl-ev"}  # agent and tool spans are not traces
    old, ev = rows["chatcmpl-old"], rows["chatcmpl-ev"]
    assert old.input == [{"role": "user", "content": "Where is my order?"}]
    assert (old.output_text, old.prompt_tokens, old.completion_tokens, old.total_tokens) == (
        "It ships today.",
        7,
        4,
        11,
    )
    assert (old.prompt_name, old.prompt_version, old.variant) == ("support-answer", 3, "B")
    assert old.variables == {"question": "Where is my order?"}
    assert (old.session_id, old.user_id, old.model_resolved) == ("conv-9", "u-1", "gpt-4o-mini-2024")
    assert old.params == {"max_tokens": 50}
    assert old.metadata["otel"]["attributes"]["app.custom"] == "kept"
    assert old.metadata["otel"]["ancestors"] == ["agent run"] and old.parent_id is None
    assert ev.input == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    assert ev.output_text == "Hello!"
    assert ev.parent_id == old.id  # nearest LLM ancestor, through the tool span
    assert ev.metadata["otel"]["ancestors"] == ["tool lookup", "chat gpt-4o-mini", "agent run"]
    assert abs(old.latency_ms - 250.0) < 1e-6


def test_base64_ids_gzip_and_resending_is_idempotent(store, key, serve):
    import base64

    trace = base64.b64encode(bytes.fromhex("cd" * 16)).decode()
    span = base64.b64encode(bytes.fromhex("5555555555555555")).decode()
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.response.id": "r-b64",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "hey"}]}]),
    }
    body = gzip.compress(json.dumps(_otlp_json([_span(span, "chat", attrs, trace=trace)])).encode())
    for _ in range(2):
        assert _post(serve, key, body, **{"Content-Encoding": "gzip"}).status_code == 200
    [row] = _served_rows(serve, store)
    assert row.metadata["otel"]["trace_id"] == "cd" * 16 and row.metadata["otel"]["span_id"] == "55" * 8
    assert row.input == [{"role": "user", "content": "hey"}]
    serve.ingest()
    with store.read() as conn:
        assert trace_rows.count_traces(conn) == 1


def test_a_span_the_store_would_refuse_is_quarantined_with_its_reason(store, key, serve, tmp_path):
    """Mapping runs at ingest (off the request path), so such a span is set aside there, like a wrapper record
    the store would refuse: nothing accepted disappears silently, and its neighbours are stored."""
    good = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.response.id": "r-good"}
    bad = {**good, "gen_ai.response.id": "r-bad", "user.id": "u" * 500}
    body = json.dumps(_otlp_json([_span("6666666666666666", "chat", good), _span("7777777777777777", "chat", bad)]))
    response = _post(serve, key, body.encode())
    assert response.status_code == 200 and response.json() == {}
    [row] = _served_rows(serve, store)
    assert row.provider_response_id == "r-good"
    reasons = [p.read_text() for p in (tmp_path / "serve-spool" / "quarantine").glob("*.why")]
    assert len(reasons) == 1 and "user_id" in reasons[0]


def test_protobuf_partial_success_is_reported_the_otlp_way(store, key, serve):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for n, (span_id, rid) in enumerate(((bytes.fromhex("88" * 8), "r-ok"), (b"\x01\x02\x03", "r-bad-id"))):
        span = spans.add()
        span.trace_id, span.span_id, span.name = bytes.fromhex("ef" * 16), span_id, "chat"
        span.start_time_unix_nano = span.end_time_unix_nano = 1764800000000000000 + n
        for k, v in (("gen_ai.operation.name", "chat"), ("gen_ai.request.model", "m"), ("gen_ai.response.id", rid)):
            kv = span.attributes.add()
            kv.key, kv.value.string_value = k, v
    response = _post(serve, key, request.SerializeToString(), "application/x-protobuf")
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-protobuf"
    decoded = ExportTraceServiceResponse.FromString(response.content)
    assert decoded.partial_success.rejected_spans == 1
    assert "spanId" in decoded.partial_success.error_message and "010203" in decoded.partial_success.error_message
    [row] = _served_rows(serve, store)
    assert row.provider_response_id == "r-ok"


def test_bad_input_is_a_clear_4xx_and_nothing_accepted_is_lost(store, key, serve):
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.response.id": "r-kept"}
    assert (
        _post(serve, key, json.dumps(_otlp_json([_span("9999999999999999", "chat", attrs)])).encode()).status_code
        == 200
    )

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("chat", attributes=attrs):
        pass
    full = encode_spans(memory.get_finished_spans()).SerializeToString()

    cases = [
        (full[: len(full) // 2], "application/x-protobuf", {}, 400, "protobuf"),
        (b'{"resourceSpans": []}', "text/plain", {}, 415, "Content-Type"),
        (b"\x00" * (50 << 20), "application/x-protobuf", {}, 413, "limit"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\xff\xfe"}]}]}]}',
            "application/json",
            {},
            400,
            "UTF-8",
        ),
        (b"not gzip", "application/json", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (gzip.compress(b" " * (20 << 20)), "application/json", {"Content-Encoding": "gzip"}, 413, "decompressed"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "1"}]}]}]}',
            "application/json",
            {},
            400,
            "traceId",
        ),
        (b"[1, 2]", "application/json", {}, 400, "resourceSpans"),
    ]
    for body, content_type, headers, status, words in cases:
        response = _post(serve, key, body, content_type, **headers)
        assert response.status_code == status, (words, response.text)
        assert words in response.json()["error"], response.text
        assert response.text.count("\n") == 1
    unauthenticated = httpx.post(
        f"{serve.url}/v1/traces", content=full, headers={"Content-Type": "application/x-protobuf"}
    )
    assert unauthenticated.status_code == 401
    assert _post(serve, "wb_sk_nope", full, "application/x-protobuf").status_code == 401
    [row] = _served_rows(serve, store)
    assert row.provider_response_id == "r-kept"


def test_revoked_key_and_missing_scope_are_refused(store, serve):
    with store.write() as conn:
        _, feedback_only = key_rows.create_key(conn, "browser-backend", ["feedback"])
        _, ingest = key_rows.create_key(conn, "collector", ["ingest"])
    body = json.dumps(_otlp_json([])).encode()
    response = _post(serve, feedback_only, body)
    assert response.status_code == 403 and "ingest" in response.json()["error"]
    assert _post(serve, ingest, body).status_code == 200
    with store.write() as conn:
        key_rows.revoke_key(conn, "collector")
    response = wait_for(lambda: (r := _post(serve, ingest, body)).status_code == 403 and r, timeout=5)
    assert "revoked" in response.json()["error"]


def test_spans_are_in_the_spool_before_the_response(store, key, serve, tmp_path):
    """The 200 means the span is in the spool (page cache): no ingest has to have run."""
    from workbench.capture.parse import record_to_row, split_payload
    from workbench.capture.spool import iter_payloads

    serve.state.ingester.stop()
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.response.id": "r-spooled"}
    assert (
        _post(serve, key, json.dumps(_otlp_json([_span("aaaaaaaaaaaaaaaa", "chat", attrs)])).encode()).status_code
        == 200
    )
    rows = [record_to_row(*split_payload(p)) for p in iter_payloads(tmp_path / "serve-spool")]
    assert [r["provider_response_id"] for r in rows] == ["r-spooled"]


def test_a_registered_prompt_is_recorded_with_its_id_and_hash_like_the_wrapper(store_url, store, key, serve):
    wb = workbench.open(store_url, ingest="off")
    try:
        prompt = wb.prompts.register("support-answer", "Answer politely: {question}")
    finally:
        wb.close()
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "m",
        "gen_ai.response.id": "r-prompt",
        "workbench.prompt.name": "support-answer",
        "workbench.prompt.version": prompt.version,
    }
    unknown = {**attrs, "gen_ai.response.id": "r-unknown", "workbench.prompt.version": 99}
    body = _otlp_json([_span("bbbbbbbbbbbbbbbb", "chat", attrs), _span("cccccccccccccccc", "chat", unknown)])
    assert _post(serve, key, json.dumps(body).encode()).status_code == 200
    rows = {t.provider_response_id: t for t in _served_rows(serve, store, 2)}
    known = rows["r-prompt"]
    assert (known.prompt_id, known.prompt_name, known.prompt_version, known.prompt_hash) == (
        prompt.id,
        "support-answer",
        prompt.version,
        prompt.content_hash,
    )
    assert (rows["r-unknown"].prompt_name, rows["r-unknown"].prompt_version, rows["r-unknown"].prompt_id) == (
        "support-answer",
        99,
        None,
    )


def test_openinference_streaming_call_equals_the_wrapper(store_url, store, key, serve):
    from openinference.instrumentation.openai import OpenAIInstrumentor

    from .openai_fakes import chat_sse

    def streamed(client: Any) -> Any:
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        assert len(list(stream)) > 2
        return stream

    fake = FakeOpenAI().push(chat_sse(["Hel", "lo"]))
    wrapped = _wrapper_row(store_url, fake, streamed)
    fake.push(chat_sse(["Hel", "lo"]))
    provider = _tracer_provider(_proto_exporter(serve, key))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        streamed(fake.client())
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    [served] = _served_rows(serve, store)
    _assert_same(wrapped, served)
    assert served.stream and served.output_text == "Hello" and served.ttft_ms is not None


def test_openinference_responses_api_call_equals_the_wrapper(store_url, store, key, serve):
    from openinference.instrumentation.openai import OpenAIInstrumentor

    from .openai_fakes import responses_body

    def respond(client: Any) -> Any:
        return client.responses.create(model="gpt-4.1", input="Say hello in French.", instructions="Be brief.")

    fake = FakeOpenAI().push(responses_body())
    wrapped = _wrapper_row(store_url, fake, respond)
    fake.push(responses_body())
    provider = _tracer_provider(_json_exporter(serve, key))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        respond(fake.client())
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    [served] = _served_rows(serve, store)
    _assert_same(wrapped, served)
    assert served.operation == "responses" and served.output_text == "Bonjour."
