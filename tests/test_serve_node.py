"""The OpenTelemetry JS SDK and its OTLP/HTTP exporters (npm, run in Node) sending to `workbench serve`.

The npm packages are installed by .ci/run (``npm ci`` in tests/serve_node/); tests never reach the network,
so without them (or without node) this test skips and says why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import workbench
from workbench.store import keys as key_rows
from workbench.store import open_store
from workbench.store import traces as trace_rows

from .openai_fakes import FakeOpenAI
from .serve_support import ServeThread, wait_for

NODE_DIR = Path(__file__).parent / "serve_node"
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
    "http_status",
    "tags",
]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (apt-get install nodejs npm)")
    if not (NODE_DIR / "node_modules" / "@opentelemetry" / "exporter-trace-otlp-proto").is_dir():
        pytest.skip("npm packages missing: run `npm ci --prefix tests/serve_node` (.ci/run does)")
    return node


def _genai_attributes(messages: list[dict[str, str]], answer: str) -> dict[str, Any]:
    """What a JS app's instrumentation records for the call (OpenTelemetry GenAI semantic conventions)."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.openai.response.system_fingerprint": "fp_abc",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 8,
        "gen_ai.usage.total_tokens": 20,
        "gen_ai.conversation.id": "s-node",
        "user.id": "u-node",
        "workbench.tags": ["web"],
        "gen_ai.input.messages": json.dumps(
            [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in messages]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": answer}], "finish_reason": "stop"}]
        ),
    }


@pytest.mark.parametrize("protocol", ["proto", "json"])
def test_opentelemetry_js_exporter_equals_the_wrapper(sqlite_url, tmp_path, protocol):
    node = _node()
    store = open_store(sqlite_url)
    with store.write() as conn:
        key = key_rows.create_key(conn, "node", ["ingest"])[1]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
    wb = workbench.open(sqlite_url, ingest="off")
    try:
        response = wb.wrap(FakeOpenAI().client()).chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            temperature=0.2,
            workbench={"session_id": "s-node", "user_id": "u-node", "tags": ["web"]},
        )
        wb.flush()
        with store.read() as conn:
            wrapped = trace_rows.get_trace(conn, workbench.trace_id(response))
    finally:
        wb.close()

    with ServeThread(sqlite_url, spool=str(tmp_path / "serve-spool")) as serve:
        args = {
            "url": f"{serve.url}/v1/traces",
            "key": key,
            "protocol": protocol,
            "attributes": _genai_attributes(messages, wrapped.output_text),
        }
        done = subprocess.run(
            [node, "send.mjs", json.dumps(args)], cwd=NODE_DIR, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        ids = json.loads(done.stdout)

        def served() -> Any:
            serve.ingest()
            with store.read() as conn:
                rows = [t for t in trace_rows.list_traces(conn, limit=10) if "otel" in t.metadata]
            return rows[0] if rows else None

        row = wait_for(served)
    a, b = wrapped.model_dump(), row.model_dump()
    assert {f: (a[f], b[f]) for f in COMPARED if a[f] != b[f]} == {}
    otel = row.metadata["otel"]
    assert (otel["trace_id"], otel["span_id"]) == (ids["traceId"], ids["spanId"])
    # SimpleSpanProcessor sends the LLM span (it ends first) alone: its parent is known by id only
    assert otel["parent_span_id"] and otel["ancestors"] == [] and otel["resource"]["service.name"] == "node-frontend"
    store.close()
