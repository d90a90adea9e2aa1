"""`workbench import otlp FILE`: OTLP/JSON as the Collector's file exporter writes it (one request per line)
becomes the trace rows `workbench serve` makes of the same spans; idempotent; bad lines by number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from workbench.capture.otlp import spool_records_json
from workbench.capture.parse import record_to_row
from workbench.store import open_store
from workbench.store import traces as trace_rows
from workbench.store.prompts import register_prompt

from .conftest import run_cli

PROMPT_ATTRS = {"workbench.prompt.name": "support", "workbench.prompt.version": 1}


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def span(span_id: str, name: str, attrs: dict[str, Any], *, trace: str, parent: str | None = None, at: int = 0):
    out = {
        "traceId": trace,
        "spanId": span_id,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(1764800000000000000 + at),
        "endTimeUnixNano": str(1764800000250000000 + at),
        "attributes": [attr(k, v) for k, v in attrs.items()],
        "status": {"code": 1},
    }
    if parent:
        out["parentSpanId"] = parent
    return out


def llm(question: str, answer: str, **extra: Any) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": f"chatcmpl-{question[:5]}",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
        ),
        "session.id": "sess-1",
        "user.id": "u-1",
        **extra,
    }


def request(*spans: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", "support-bot")]},
                "scopeSpans": [{"scope": {"name": "app"}, "spans": list(spans)}],
            }
        ]
    }


def test_llm_spans_become_the_rows_serve_makes_and_a_rerun_adds_nothing(store_url: str, tmp_path: Path) -> None:
    first = request(
        span("a1" * 8, "agent", {"app.step": "plan"}, trace="ab" * 16),
        span(
            "b1" * 8,
            "chat gpt-4o-mini",
            llm(
                "Where is my order?",
                "On its way.",
                **{"workbench.prompt.name": "support", "workbench.prompt.version": 1},
            ),
            trace="ab" * 16,
            parent="a1" * 8,
        ),
        span("c1" * 8, "chat gpt-4o-mini", llm("And the refund?", "Done."), trace="ab" * 16, parent="a1" * 8, at=9),
    )
    second = request(span("d1" * 8, "chat", llm("Thanks!", "You're welcome."), trace="cd" * 16, at=5_000_000_000))
    path = tmp_path / "traces.json"
    path.write_bytes(orjson.dumps(first) + b"\n" + b'{"resourceSpans": [' + b"\n" + orjson.dumps(second) + b"\n")
    store = open_store(store_url)
    with store.write() as conn:
        prompt = register_prompt(conn, "support", "Answer: {q}")
    store.close()

    result = run_cli("--store", store_url, "import", "otlp", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 2, result.stderr  # the cut-off line 2
    report = orjson.loads(result.stdout)
    assert report["imported"] == 3
    assert report["skipped"] == {"not a model call": 1, "malformed": 1}
    assert report["problems"][0].startswith("line 2: not JSON")

    def served(doc: dict[str, Any]) -> list[dict[str, Any]]:  # what serve spools and ingest stores
        batch = spool_records_json(
            doc, lambda n, v: (prompt.id, prompt.content_hash) if (n, v) == ("support", 1) else None
        )
        return [record_to_row(orjson.loads(head), body) for head, body in batch.records]

    expected = served(first) + served(second)
    store = open_store(store_url)
    try:
        with store.read() as conn:
            stored = {t.id: t.model_dump() for t in trace_rows.list_traces(conn, limit=None)}
    finally:
        store.close()
    assert set(stored) == {row["id"] for row in expected}
    for row in expected:
        got = stored[row["id"]]
        for column in (
            "created_at",
            "input",
            "output_text",
            "model_resolved",
            "total_tokens",
            "session_id",
            "user_id",
            "parent_id",
            "latency_ms",
            "metadata",
            "provider_response_id",
        ):
            assert got[column] == row[column], column
    by_question = {t["input"][-1]["content"]: t for t in stored.values()}
    assert by_question["Where is my order?"]["output_text"] == "On its way."
    assert by_question["Where is my order?"]["prompt_id"] == prompt.id  # a registered prompt, as serve records it
    assert by_question["Where is my order?"]["metadata"]["otel"]["ancestors"] == ["agent"]

    again = run_cli("--store", store_url, "import", "otlp", str(path), "--json", cwd=tmp_path)
    assert orjson.loads(again.stdout)["imported"] == 0
    assert orjson.loads(again.stdout)["skipped"]["already imported"] == 3


def test_one_pretty_printed_request_also_imports(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    doc = request(span("e1" * 8, "chat", llm("Hello?", "Hi."), trace="ef" * 16))
    path.write_text(json.dumps(doc, indent=2))
    open_store(sqlite_url).close()
    result = run_cli("--store", sqlite_url, "import", "otlp", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "imported 1 traces" in result.stdout


def test_a_request_that_is_not_otlp_is_reported_with_its_line(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "1"}]}]}]}\n')
    open_store(sqlite_url).close()
    result = run_cli("--store", sqlite_url, "import", "otlp", str(path), cwd=tmp_path)
    assert result.returncode == 2
    assert "imported 0 traces" in result.stdout and "bad.json: line 1:" in result.stderr
    assert "Traceback" not in result.stderr
