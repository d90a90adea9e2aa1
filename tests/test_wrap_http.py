"""The wrapper over a real loopback HTTP server with the SDK's default HTTP client (no http_client given),
and with aiohttp (``DefaultAioHttpClient``) where the installed openai has it and aiohttp is installed."""

from __future__ import annotations

import time

import openai
import pytest
from werkzeug import Response

import workbench

from .openai_fakes import chat_body, chat_sse
from .wrap_support import all_traces

MESSAGES = [{"role": "user", "content": "Capital of France?"}]
SSE = chat_sse(["Par", "is"])


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False)
    yield handle
    handle.close()


def _dies_mid_stream(request):
    cut = SSE.index(b"\n\n", SSE.index(b"\n\n") + 2) + 2

    def body():
        yield SSE[:cut]
        time.sleep(0.05)
        raise RuntimeError("the server process died")  # werkzeug drops the connection

    return Response(body(), content_type="text/event-stream")


def _serve(httpserver) -> None:
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_json(chat_body())
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_data(SSE, content_type="text/event-stream")
    httpserver.expect_ordered_request("/v1/chat/completions").respond_with_handler(_dies_mid_stream)


def _statuses(wb) -> list[tuple[str | None, str, str | None]]:
    wb.flush()
    return sorted((t.session_id, t.status, t.error_type) for t in all_traces(wb))


EXPECTED = [("full", "ok", None), ("partial", "error", "IncompleteStream"), ("stream", "ok", None)]


def _expected(raised: BaseException | None) -> list[tuple[str | None, str, str | None]]:
    """A dropped connection reaches the app either as a clean end of the body (the wrapper alone can tell the
    final event is missing: IncompleteStream) or, depending on how far the socket got, as the SDK's
    APIConnectionError; either way the trace is an error, never ok."""
    if raised is None:
        return EXPECTED
    return [("full", "ok", None), ("partial", "error", type(raised).__name__), ("stream", "ok", None)]


def test_default_http_client_over_loopback(wb, httpserver):
    _serve(httpserver)
    client = wb.wrap(openai.OpenAI(api_key="sk-test", base_url=httpserver.url_for("/v1"), max_retries=0))
    client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "full"})
    assert (
        len(
            list(
                client.chat.completions.create(
                    model="m", messages=MESSAGES, stream=True, workbench={"session_id": "stream"}
                )
            )
        )
        == 5
    )
    raised: BaseException | None = None
    try:
        stream = client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, workbench={"session_id": "partial"}
        )
        list(stream)
    except openai.APIConnectionError as exc:
        raised = exc
    assert _statuses(wb) == _expected(raised)


async def test_aiohttp_client_over_loopback(wb, httpserver):
    if not hasattr(openai, "DefaultAioHttpClient"):
        pytest.skip(f"openai {openai.__version__} has no DefaultAioHttpClient")
    pytest.importorskip("aiohttp", reason="aiohttp comes with openai[aiohttp]")
    _serve(httpserver)
    client = wb.wrap(
        openai.AsyncOpenAI(
            api_key="sk-test",
            base_url=httpserver.url_for("/v1"),
            max_retries=0,
            http_client=openai.DefaultAioHttpClient(),
        )
    )
    try:
        await client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "full"})
        stream = await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, workbench={"session_id": "stream"}
        )
        assert len([chunk async for chunk in stream]) == 5
        stream = await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, workbench={"session_id": "partial"}
        )
        raised: BaseException | None = None
        try:
            async for _ in stream:
                pass
        except openai.APIConnectionError as exc:
            raised = exc
    finally:
        await client.close()
    assert _statuses(wb) == _expected(raised)
