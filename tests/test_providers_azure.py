"""Azure OpenAI: the request names a deployment, the response reports the model behind it. A trace keeps
both: model_requested is the deployment the app asked for, model_resolved the model version Azure ran."""

from __future__ import annotations

import json

import openai
import pytest

import workbench

from .openai_fakes import chat_body
from .wrap_support import http_module, stored

DEPLOYMENT = "support-gpt4o"
MODEL_VERSION = "gpt-4o-2024-08-06"
QUESTION = [{"role": "user", "content": "Capital of France?"}]


def _azure_sse(parts: list[str]) -> bytes:
    """Azure's stream: a first chunk with no choices and an empty model (prompt filter results), then deltas."""
    first = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    chunks = [first]
    for i, part in enumerate(parts):
        delta = {"content": part} if i else {"role": "assistant", "content": part}
        chunks.append(
            {
                "id": "chatcmpl-az1",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": MODEL_VERSION,
                "system_fingerprint": "fp_az",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None, "content_filter_results": {}}],
            }
        )
    chunks.append({**chunks[-1], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
    return body + b"data: [DONE]\n\n"


class AzureEndpoint:
    def __init__(self, *replies: dict | bytes) -> None:
        self.http = http_module()
        self.replies = list(replies)
        self.requests: list = []

    def _reply(self, request):
        self.requests.append(request)
        reply = self.replies.pop(0)
        if isinstance(reply, bytes):
            return self.http.Response(200, content=reply, headers={"content-type": "text/event-stream"})
        return self.http.Response(200, json=reply)

    def client(self) -> openai.AzureOpenAI:
        return openai.AzureOpenAI(
            api_key="az-test",
            api_version="2024-10-21",
            azure_endpoint="http://myres.openai.fake",
            max_retries=0,
            http_client=openai.DefaultHttpxClient(transport=self.http.MockTransport(self._reply)),
        )


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False)
    yield handle
    handle.close()


def test_azure_records_the_model_the_response_reports(wb):
    server = AzureEndpoint(chat_body("Paris.", model=MODEL_VERSION), _azure_sse(["Par", "is"]))
    client = wb.wrap(server.client())
    assert isinstance(client, openai.AzureOpenAI)
    resp = client.chat.completions.create(model=DEPLOYMENT, messages=QUESTION, workbench={"session_id": "s-az"})
    stream = client.chat.completions.create(model=DEPLOYMENT, messages=QUESTION, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Paris"
    assert all(f"/openai/deployments/{DEPLOYMENT}/chat/completions" in str(r.url) for r in server.requests)
    wb.flush()
    plain, streamed = stored(wb, workbench.trace_id(resp)), stored(wb, workbench.trace_id(stream))
    for trace in (plain, streamed):
        assert (trace.model_requested, trace.model_resolved) == (DEPLOYMENT, MODEL_VERSION)
        assert trace.status == "ok" and trace.base_url.startswith("http://myres.openai.fake/openai")
    assert (plain.output_text, plain.session_id) == ("Paris.", "s-az")
    assert (streamed.output_text, streamed.provider_response_id, streamed.system_fingerprint) == (
        "Paris",
        "chatcmpl-az1",
        "fp_az",
    )
