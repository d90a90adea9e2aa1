"""Issue 13 items 2, 3, 5, 6: the wrapped client is the original client, on every SDK path.

One trace per call with the right status, ``workbench=`` accepted everywhere a call can be made, the
SDK's own signatures and types, and nothing extra on the wire. The SDK's default HTTP client throughout.
"""

from __future__ import annotations

import inspect
import logging
import typing
from importlib import resources

import openai
import pydantic
import pytest

import workbench
from workbench.capture.wrap import CONTEXT_HEADER

from .openai_fakes import chat_body, chat_sse, responses_body
from .wrap_support import Endpoint, all_traces, helpers, needs_responses, responses_helper_sse, stored

MESSAGES = [{"role": "user", "content": "Where is my order?"}]


class Answer(pydantic.BaseModel):
    city: str


@pytest.fixture
def wb(sqlite_url: str):
    handle = workbench.open(sqlite_url, background_ingest=False)
    yield handle
    handle.close()


def _sessions(wb) -> list[tuple[str | None, str]]:
    wb.flush()
    return sorted((t.session_id, t.status) for t in all_traces(wb))


# -- item 2: with_options / copy -------------------------------------------------------------------


def test_with_options_and_copy_return_recording_clients(wb):
    client = wb.wrap(Endpoint().client())
    for derived in (client.with_options(timeout=5.0), client.copy(), client.with_options(max_retries=1).copy()):
        assert isinstance(derived, openai.OpenAI)
        derived.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "derived"})
    assert _sessions(wb) == [("derived", "ok")] * 3


async def test_async_with_options_records(wb):
    client = wb.wrap(Endpoint().async_client())
    resp = await client.with_options(timeout=5.0).chat.completions.create(
        model="m", messages=MESSAGES, workbench={"session_id": "a"}
    )
    wb.flush()
    assert stored(wb, workbench.trace_id(resp)).session_id == "a"


def test_the_original_client_is_left_alone(wb):
    server = Endpoint()
    plain = server.client()
    wb.wrap(plain)
    assert type(plain) is openai.OpenAI
    plain.chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(TypeError):
        plain.chat.completions.create(model="m", messages=MESSAGES, workbench={})
    assert _sessions(wb) == []


# -- item 3: parse, stream helpers, raw and streaming responses -------------------------------------


def test_parse_is_recorded_with_its_schema_and_context(wb, caplog):
    server = Endpoint(chat_body(content='{"city": "Paris"}'))
    client = wb.wrap(server.client())
    with caplog.at_level(logging.WARNING, logger="workbench"):
        resp = helpers(client).parse(
            model="m", messages=MESSAGES, response_format=Answer, workbench={"session_id": "p"}
        )
    assert resp.choices[0].message.parsed == Answer(city="Paris")
    wb.flush()
    trace = stored(wb, workbench.trace_id(resp))
    assert (trace.session_id, trace.status, trace.output_text) == ("p", "ok", '{"city": "Paris"}')
    fmt = trace.params["response_format"]  # the JSON schema the SDK sent (item 6: the class is recorded)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Answer"
    assert not caplog.records


def test_chat_stream_helper_is_recorded(wb):
    server = Endpoint(chat_sse(["Par", "is"]), chat_sse(["a", "b", "c"]))
    client = wb.wrap(server.client())
    with helpers(client).stream(model="m", messages=MESSAGES, workbench={"session_id": "done"}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Paris"
    with helpers(client).stream(model="m", messages=MESSAGES, workbench={"session_id": "left"}) as stream:
        next(iter(stream))
    wb.flush()
    assert stored(wb, workbench.trace_id(stream)).session_id == "left"
    assert _sessions(wb) == [("done", "ok"), ("left", "cancelled")]


async def test_async_chat_stream_helper_is_recorded(wb):
    client = wb.wrap(Endpoint(chat_sse(["Par", "is"])).async_client())
    async with helpers(client).stream(model="m", messages=MESSAGES, workbench={"session_id": "as"}) as s:
        async for _ in s:
            pass
    assert _sessions(wb) == [("as", "ok")]


def test_responses_stream_helper_and_parse_are_recorded(wb):
    server = Endpoint(responses_helper_sse(["Bon", "jour"]), responses_body('{"city": "Lyon"}'))
    client = wb.wrap(server.client())
    needs_responses(client)
    with client.responses.stream(model="m", input="hi", workbench={"session_id": "rs"}) as stream:
        assert stream.get_final_response().output_text == "Bonjour"
    parsed = client.responses.parse(model="m", input="hi", text_format=Answer, workbench={"session_id": "rp"})
    assert parsed.output_parsed == Answer(city="Lyon")
    assert _sessions(wb) == [("rp", "ok"), ("rs", "ok")]
    assert stored(wb, workbench.trace_id(parsed)).operation == "responses"


def test_with_raw_response_is_recorded(wb):
    server = Endpoint(chat_body(), chat_sse(["x", "y"]))
    client = wb.wrap(server.client())
    raw = client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, workbench={"session_id": "r"})
    completion = raw.parse()
    assert workbench.trace_id(raw) == workbench.trace_id(completion) is not None
    raw = client.with_raw_response.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, workbench={"session_id": "rs"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == "xy"
    assert _sessions(wb) == [("r", "ok"), ("rs", "ok")]


def test_with_streaming_response_is_recorded(wb):
    server = Endpoint(chat_body(), chat_sse(["x", "y"]), chat_body())
    client = wb.wrap(server.client())
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, workbench={"session_id": "sr"}
    ) as response:
        assert response.parse().choices[0].message.content.startswith("Paris")
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=MESSAGES, stream=True, workbench={"session_id": "srs"}
    ) as response:
        assert len(list(response.parse())) > 2
    with client.with_streaming_response.chat.completions.create(
        model="m", messages=MESSAGES, workbench={"session_id": "rr"}
    ) as response:
        response.read()
    assert _sessions(wb) == [("rr", "ok"), ("sr", "ok"), ("srs", "ok")]


def test_status_errors_are_recorded_once_and_reraised_unchanged(wb):
    server = Endpoint((429, {"error": {"message": "slow down", "type": "rate_limit"}}))
    client = wb.wrap(server.client())
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, workbench={"session_id": "e"})
    wb.flush()
    [trace] = all_traces(wb)
    assert (trace.status, trace.error_type, trace.http_status) == ("error", "RateLimitError", 429)


# -- item 5: signatures and types -------------------------------------------------------------------


def _params(fn) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


@pytest.mark.parametrize(
    "path",
    [
        "chat.completions.create",
        "chat.completions.parse",
        "chat.completions.stream",
        "responses.create",
        "responses.stream",
        "responses.parse",
    ],
)
def test_signatures_are_the_sdks_plus_workbench(wb, path):
    plain = Endpoint().client()
    wrapped = wb.wrap(Endpoint().client())

    def get(obj):
        for part in path.split("."):
            obj = getattr(obj, part, None)
        return obj

    if get(plain) is None:
        pytest.skip(f"{path} is not in openai {openai.__version__}")
    sdk, ours = _params(get(plain)), _params(get(wrapped))
    assert ours.pop("workbench").kind is inspect.Parameter.KEYWORD_ONLY
    assert ours == sdk
    assert inspect.signature(get(wrapped)).return_annotation == inspect.signature(get(plain)).return_annotation
    plain_async, wrapped_async = get(Endpoint().async_client()), get(wb.wrap(Endpoint().async_client()))
    assert inspect.iscoroutinefunction(wrapped_async) == inspect.iscoroutinefunction(plain_async)
    assert _params(wrapped_async).keys() - _params(plain_async).keys() == {"workbench"}


def test_client_methods_keep_their_signatures(wb):
    plain, wrapped = Endpoint().client(), wb.wrap(Endpoint().client())
    for name in ("copy", "with_options", "post", "get", "close"):
        assert inspect.signature(getattr(wrapped, name)) == inspect.signature(getattr(plain, name)), name
    assert type(wrapped).__name__ == "OpenAI" and isinstance(wrapped, openai.OpenAI)
    assert isinstance(wrapped.chat.completions, type(plain.chat.completions))


def test_package_is_typed_and_wrap_returns_the_clients_type():
    assert resources.files("workbench").joinpath("py.typed").is_file()
    hints = typing.get_type_hints(workbench.Workbench.wrap)
    assert isinstance(hints["client"], typing.TypeVar) and hints["return"] is hints["client"]


# -- item 6: nothing extra on the wire, pydantic classes -------------------------------------------


def test_wrapped_requests_carry_no_extra_headers(wb):
    server = Endpoint(chat_body(), chat_body())
    client = wb.wrap(server.client())
    client.chat.completions.create(model="m", messages=MESSAGES, workbench={"session_id": "h"})
    server.client().chat.completions.create(model="m", messages=MESSAGES)
    wrapped_headers, plain_headers = ({k.lower() for k in r.headers} for r in server.requests)
    assert wrapped_headers == plain_headers
    assert "x-stainless-raw-response" not in wrapped_headers and CONTEXT_HEADER not in wrapped_headers
    assert server.requests[0].content == server.requests[1].content


def test_pydantic_class_in_create_raises_the_sdks_error_without_logging(wb, caplog):
    server = Endpoint()
    client = wb.wrap(server.client())
    with caplog.at_level(logging.WARNING, logger="workbench"), pytest.raises(TypeError) as wrapped_error:
        client.chat.completions.create(model="m", messages=MESSAGES, response_format=Answer)
    with pytest.raises(TypeError) as plain_error:
        server.client().chat.completions.create(model="m", messages=MESSAGES, response_format=Answer)
    assert str(wrapped_error.value) == str(plain_error.value)
    assert not caplog.records and server.requests == [] and wb.dropped == 0


def test_a_class_in_a_spooled_request_is_its_schema():
    from workbench.capture.recorder import _default

    assert _default(Answer)["schema"]["properties"] == {"city": {"title": "City", "type": "string"}}


@pytest.mark.slow
def test_type_checker_sees_the_sdks_client(tmp_path):
    """mypy: wb.wrap(OpenAI()) is an OpenAI; workbench.context(...) type-checks; workbench= is (rightly) unknown
    to the SDK's signatures, which is what workbench.context is for."""
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    import os
    import subprocess
    import sys
    from pathlib import Path

    app = tmp_path / "typed_app.py"
    app.write_text(
        "from openai import AsyncOpenAI, OpenAI\n"
        "import workbench\n"
        "wb = workbench.open()\n"
        "client = wb.wrap(OpenAI())\n"
        "reveal_type(client)\n"
        "reveal_type(wb.wrap(AsyncOpenAI()))\n"
        "with workbench.context(session_id='s', tags=['a']):\n"
        "    reply = client.chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'x'}])\n"
        "reveal_type(reply)\n"
        "client.chat.completions.create(model='m', messages=[], workbench={'session_id': 's'})\n"
    )
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--follow-imports=silent",
            "--cache-dir",
            str(Path.home() / ".cache/workbench-mypy"),
            str(app),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(repo)},
    )
    out = done.stdout
    assert 'Revealed type is "openai._client.OpenAI"' in out, out[-2000:]
    assert 'Revealed type is "openai._client.AsyncOpenAI"' in out
    assert 'Revealed type is "openai.types.chat.chat_completion.ChatCompletion"' in out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert errors and all(":10: error:" in line for line in errors), errors  # only the workbench= line


def test_the_recorded_base_url_follows_the_client(wb):
    """_begin reads the URL object the SDK keeps and caches its text by identity: setting base_url on the wrapped
    client, or a with_options() copy with another one, must be what the next trace records."""
    client = wb.wrap(Endpoint().client())
    first = client.chat.completions.create(model="m", messages=MESSAGES)
    client.base_url = "http://moved.local/v2"
    moved = client.chat.completions.create(model="m", messages=MESSAGES)
    copied = client.with_options(base_url="http://copy.local/v3").chat.completions.create(model="m", messages=MESSAGES)
    again = client.chat.completions.create(model="m", messages=MESSAGES)
    wb.flush()
    got = [stored(wb, workbench.trace_id(r)).base_url for r in (first, moved, copied, again)]
    assert got == ["http://fake.local/v1/", "http://moved.local/v2/", "http://copy.local/v3/", "http://moved.local/v2/"]
