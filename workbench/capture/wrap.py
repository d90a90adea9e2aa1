"""Wrapping an OpenAI client: the wrapped client *is* an OpenAI client, and every way of calling it is recorded.

``wrap_client`` returns a shallow copy of the client whose class is a subclass of the client's own
class (same name, same methods, same signatures). Recording happens at the one place every SDK path
goes through, the client's ``post``: ``create``, ``parse``, the ``.stream()`` helpers,
``with_raw_response``, ``with_streaming_response``, and anything made by ``with_options()`` /
``copy()`` (the SDK builds those with ``self.__class__``, so they are recording clients too).

- The request is the body the SDK already built (pydantic classes already turned into JSON schema by
  ``parse``); the response is the bytes the SDK read. Nothing is serialized twice on the hot path.
- ``workbench={...}`` is accepted by ``create``/``parse``/``stream`` of ``chat.completions`` and
  ``responses``: validated at once, then carried to ``post`` inside ``extra_headers`` under a private
  key that ``post`` removes before the SDK builds the request, so it reaches the ``post`` of deferred
  calls too (the stream helpers send when their context manager is entered), and never the server.
- A stream's status comes from how its iteration ended: exhausted -> ok; raised (connection error,
  malformed chunk) -> error, with the partial output; closed or dropped before the end -> cancelled.
  ``close()`` alone decides nothing while an iteration is running, because the HTTP client closes the
  response before the error of a failed read reaches the app.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import sys
import time
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..errors import ValidationError
from ..ids import new_id
from .context import build_context
from .recorder import Recorder

if TYPE_CHECKING:
    from ..models import Prompt

__all__ = ["CONTEXT_HEADER", "context", "trace_id", "wrap_client"]

log = logging.getLogger("workbench.capture")

ClientT = TypeVar("ClientT")

_perf = time.perf_counter
_TRACE_ATTR = "_wb_trace_id"
_ROUTES = {"/chat/completions": "chat", "/responses": "responses"}
_RAW_HEADER = "X-Stainless-Raw-Response"
CONTEXT_HEADER = "x-workbench-context"  # private: post() pops it, it is never sent
_CALL: ContextVar[_Call | None] = ContextVar("workbench_call", default=None)
_AMBIENT: ContextVar[dict[str, Any] | None] = ContextVar("workbench_context", default=None)
_CANCELLED = (GeneratorExit, KeyboardInterrupt)


def trace_id(response: Any) -> str | None:
    """The workbench trace id of anything a wrapped client returned: a response, a stream, a raw response,
    a stream helper's stream, or ``parse()`` of a raw response."""
    tid = getattr(response, _TRACE_ATTR, None)
    if tid is not None:
        return tid
    for attr in ("http_response", "response", "_response", "_raw_stream"):
        inner = getattr(response, attr, None)
        if inner is not None:
            tid = getattr(inner, _TRACE_ATTR, None)
            if tid is not None:
                return tid
    return None


@contextmanager
def context(
    *,
    prompt: Prompt | None = None,
    variables: dict[str, Any] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    variant: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    metadata: dict[str, Any] | None = None,
    parent_id: str | None = None,
) -> Iterator[None]:
    """Calls made inside this block (this thread or task) carry this context, as if each passed ``workbench=``.

    The typed way to attach context: a wrapped client is typed as the SDK's client, so a type checker
    flags ``workbench=`` (the SDK's signatures do not have it) but not this. Keys given to ``workbench=``
    on a call win over the block's. Checked at once, like ``workbench=``.
    """
    given = {
        "prompt": prompt,
        "variables": variables,
        "session_id": session_id,
        "user_id": user_id,
        "variant": variant,
        "tags": tags,
        "metadata": metadata,
        "parent_id": parent_id,
    }
    ctx = build_context({k: v for k, v in given.items() if v is not None})
    outer = _AMBIENT.get()
    token = _AMBIENT.set({**outer, **ctx} if outer else ctx)
    try:
        yield
    finally:
        _AMBIENT.reset(token)


def _tag(result: Any, tid: str) -> None:
    try:
        object.__setattr__(result, _TRACE_ATTR, tid)
    except (AttributeError, TypeError):  # objects without a __dict__ (None, str from a raw read)
        pass


def _error(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:4000],
        "status": getattr(exc, "status_code", None),
        "body": body if isinstance(body, (dict, list, str, type(None))) else str(body),
    }


_INCOMPLETE = "the stream ended without its final event ([DONE] or response.completed): the output is partial"
_FINAL_EVENTS = (b"response.completed", b"response.incomplete", b"response.failed")


def _complete(op: str, body: bytes) -> bool:
    """Whether an SSE body that ended without an error reached its final event. A connection closed early
    (HTTP/1.0-style, or a proxy giving up) ends a body as cleanly as the server finishing it does."""
    body = body.rstrip()
    if body.endswith(b"[DONE]"):  # the SDK's end of any stream
        return True
    if op == "chat":
        return False
    last = body.rfind(b"\n\n") + 2
    if op == "messages":  # Anthropic: the last event is message_stop
        return b"message_stop" in body[last : last + 200]
    return any(event in body[last : last + 200] for event in _FINAL_EVENTS)


class _Call:
    """One recorded request, from ``post`` until its outcome is known; emits exactly once."""

    __slots__ = (
        "bytes_done",
        "bytes_running",
        "done",
        "drop",
        "items",
        "items_running",
        "meta",
        "parts",
        "raw_stream",
        "recorder",
        "response",
        "t0",
        "teed",
    )

    def __init__(self, recorder: Recorder, meta: dict[str, Any], raw_stream: bool) -> None:
        self.recorder = recorder
        self.meta = meta
        self.raw_stream = raw_stream  # with_streaming_response: the body is read after post returns
        self.t0 = _perf()
        self.response: Any = None
        self.parts: list[bytes] = []
        self.done = False
        self.bytes_running = False  # a read of the body is inside a next()
        self.items_running = False  # an iteration of the SDK Stream is inside a next()
        self.items = False  # an SDK Stream over this body decides the outcome
        self.bytes_done = False
        self.drop = 0  # the key of this call's entry in _DROPS (a watched stream), once it has one
        self.teed = False  # the response's body methods are ours (_tee_sync/_tee_async) until finish

    def finish(self, body: bytes | None = None, exc: BaseException | None = None, cancelled: bool = False) -> None:
        if self.done:
            return
        self.done = True
        if self.drop:  # the stream's outcome is known: stop watching for its collection
            _DROPS.pop(self.drop, None)
        meta = self.meta
        meta["lat"] = (_perf() - self.t0) * 1000.0
        if exc is not None:
            if isinstance(exc, _CANCELLED) or type(exc).__name__ == "CancelledError":
                cancelled = True
            else:
                meta["err"] = _error(exc)
        if cancelled:
            meta["end"] = "cancelled"
        if body is None:
            body = b"".join(self.parts)
        if exc is None and not cancelled and meta.get("stream") and not _complete(meta["op"], body):
            meta["err"] = {"type": "IncompleteStream", "message": _INCOMPLETE, "status": None, "body": None}
        if self.parts:
            self.parts = []
        if self.teed:
            _untee(self.response)
        self.response = None
        self.recorder.emit(meta, body)

    def failed(self, exc: BaseException) -> None:
        """``post`` raised: an HTTP error after retries, a connection error, or a response that did not parse."""
        if self.done:
            return
        response = self.response
        body = b""
        if response is not None:
            try:
                body = response.content
            except Exception:  # noqa: BLE001 - an unread body: keep what was teed
                body = b"".join(self.parts)
        self.finish(body, exc)

    # -- the body, teed while whoever reads it reads it --------------------------------------------
    def bytes_ended(self, exc: BaseException | None = None) -> None:
        self.bytes_running = False
        self.bytes_done = exc is None
        if not self.items:  # nobody parses events from these bytes: the bytes decide
            self.finish(exc=exc)

    def closed(self) -> None:
        """The response was closed. Mid-iteration that is the SDK or HTTP client cleaning up before an
        outcome surfaces: wait for it. Otherwise the reader is done with it."""
        if self.done or self.bytes_running or self.items_running:
            return
        if self.bytes_done and not self.items:
            self.finish()
            return
        # Closed while an exception unwinds (a stream helper failed on an event, a ``with`` block raised):
        # that exception is how the call ended. A plain close before the end is a cancel.
        exc = sys.exc_info()[1]
        self.finish(exc=exc, cancelled=exc is None)


# -- the response body and the SDK stream over it ----------------------------------------------------

_TEED = ("iter_bytes", "close", "aiter_bytes", "aclose")


def _untee(response: Any) -> None:
    """The outcome is known: give the response its own methods back. httpx keeps a response in a reference
    cycle with its stream, so whatever the response holds waits for the cyclic GC; the teed methods held
    this call, its record and the original bound methods (15 objects per streamed call, 45% more
    collections than the plain client's 33). Without them the call is freed when it finishes."""
    d = response.__dict__
    for name in _TEED:
        d.pop(name, None)


def _tee_sync(call: _Call, response: Any) -> None:
    iter_bytes, close = response.iter_bytes, response.close

    def teed_iter_bytes(*args: Any, **kwargs: Any) -> Any:
        call.bytes_running = True
        parts = call.parts
        try:
            for chunk in iter_bytes(*args, **kwargs):
                if not parts:  # the first chunk: time to first token
                    call.meta["ttft"] = (_perf() - call.t0) * 1000.0
                parts.append(chunk)
                call.bytes_running = False
                yield chunk
                call.bytes_running = True
        except GeneratorExit:
            call.bytes_running = False
            raise
        except BaseException as exc:
            call.bytes_ended(exc)
            raise
        call.bytes_ended()

    def teed_close() -> None:
        try:
            close()
        finally:
            call.closed()

    response.iter_bytes, response.close = teed_iter_bytes, teed_close
    call.teed = True


def _tee_async(call: _Call, response: Any) -> None:
    aiter_bytes, aclose = response.aiter_bytes, response.aclose

    async def teed_aiter_bytes(*args: Any, **kwargs: Any) -> Any:
        call.bytes_running = True
        parts = call.parts
        try:
            async for chunk in aiter_bytes(*args, **kwargs):
                if not parts:  # the first chunk: time to first token
                    call.meta["ttft"] = (_perf() - call.t0) * 1000.0
                parts.append(chunk)
                call.bytes_running = False
                yield chunk
                call.bytes_running = True
        except GeneratorExit:
            call.bytes_running = False
            raise
        except BaseException as exc:
            call.bytes_ended(exc)
            raise
        call.bytes_ended()

    async def teed_aclose() -> None:
        try:
            await aclose()
        finally:
            call.closed()

    response.aiter_bytes, response.aclose = teed_aiter_bytes, teed_aclose
    call.teed = True


def _watch_sync(call: _Call, inner: Any) -> Any:
    """Stands in for a Stream's iterator: how this iteration ends is the call's outcome."""
    try:
        while True:
            call.items_running = True
            try:
                item = next(inner)
            except StopIteration:
                call.items_running = False
                call.finish()
                return
            call.items_running = False
            yield item
    except GeneratorExit:  # closed by the app, or garbage-collected half-read
        call.items_running = False
        call.finish(cancelled=True)
        inner.close()
        raise
    except BaseException as exc:
        call.items_running = False
        call.finish(exc=exc)
        raise


async def _watch_async(call: _Call, inner: Any) -> Any:
    try:
        while True:
            call.items_running = True
            try:
                item = await inner.__anext__()
            except StopAsyncIteration:
                call.items_running = False
                call.finish()
                return
            call.items_running = False
            yield item
    except GeneratorExit:
        call.items_running = False
        call.finish(cancelled=True)
        await inner.aclose()
        raise
    except BaseException as exc:
        call.items_running = False
        call.finish(exc=exc)
        raise


def _watch_stream(call: _Call, stream: Any) -> None:
    if call.items or not hasattr(stream, "_iterator"):
        return
    call.items = True
    if isinstance(stream._iterator, types.AsyncGeneratorType):
        stream._iterator = _watch_async(call, stream._iterator)
    else:
        stream._iterator = _watch_sync(call, stream._iterator)
    try:
        object.__setattr__(stream, _TRACE_ATTR, call.meta["id"])
    except (AttributeError, TypeError):  # pragma: no cover - an SDK stream always has a __dict__
        pass
    # A stream dropped before its first item never runs the watcher: its collection is the outcome.
    # (weakref.finalize did this at ~3x the cost; the registry keeps the weakref alive, as finalize's does,
    # because a Stream sits in a cycle with its own generator and goes with the cyclic GC.)
    if not _AT_EXIT:
        _watch_exit()
    ref = weakref.ref(stream, _dropped)
    call.drop = id(ref)
    _DROPS[call.drop] = (ref, call)  # keyed by the weakref's id: a stream class need not be hashable


# a watched stream's weakref -> (that weakref, its call), until the stream is collected
_DROPS: dict[int, tuple[weakref.ref[Any], _Call]] = {}
_AT_EXIT: list[bool] = []


def _dropped(ref: weakref.ref[Any]) -> None:
    entry = _DROPS.pop(id(ref), None)
    if entry is not None:
        entry[1].finish(cancelled=True)


def _watch_exit() -> None:
    """Streams still alive when the interpreter exits end as cancelled (as weakref.finalize's atexit did)."""
    if not _AT_EXIT:
        _AT_EXIT.append(True)
        atexit.register(_finish_alive)


def _finish_alive() -> None:
    while _DROPS:
        _key, (_ref, call) = _DROPS.popitem()
        call.finish(cancelled=True)


def _hook_parse(call: _Call, api_response: Any, is_stream: type) -> None:
    """A raw/streaming response: whatever ``parse()`` makes of it carries the trace (and a Stream the outcome)."""
    parse = api_response.parse
    tid = call.meta["id"]

    if inspect.iscoroutinefunction(parse):

        async def hooked_aparse(*args: Any, **kwargs: Any) -> Any:
            result = await parse(*args, **kwargs)
            if isinstance(result, is_stream):
                _watch_stream(call, result)
            else:
                _tag(result, tid)
            return result

        api_response.parse = hooked_aparse
        return

    def hooked_parse(*args: Any, **kwargs: Any) -> Any:
        result = parse(*args, **kwargs)
        if isinstance(result, is_stream):
            _watch_stream(call, result)
        else:
            _tag(result, tid)
        return result

    api_response.parse = hooked_parse


def _bind(call: _Call, response: Any) -> None:
    """The HTTP response is in (after retries) and its body is still to be read."""
    call.response = response
    meta = call.meta
    meta["status"] = response.status_code
    try:
        object.__setattr__(response, _TRACE_ATTR, meta["id"])
    except (AttributeError, TypeError):  # pragma: no cover - an HTTP response always has a __dict__
        pass


# -- the recording client ---------------------------------------------------------------------------


class _ContextValue(str):
    """The ``workbench=`` context riding in ``extra_headers`` as a header value that holds the checked dict.
    Most SDK methods hand extra_headers to ``post`` as given (the dict is used as is); some (anthropic's
    beta messages) first merge them into an httpx Headers object, which encodes each value to bytes: then
    the bytes are the context's JSON (made only then, off the common path) and ``post`` parses them back."""

    __slots__ = ("ctx",)
    ctx: dict[str, Any]

    def __new__(cls, ctx: dict[str, Any]) -> _ContextValue:
        value = super().__new__(cls, "workbench-context")
        value.ctx = ctx
        return value

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return orjson.dumps(self.ctx)


def _begin(client: Any, path: str, kwargs: dict[str, Any]) -> _Call | None:
    # One pass over the request options: the private context entry (popped from a copy, never the
    # caller's dict) and the SDK's raw-response marker (read here, from the dict the SDK built, rather
    # than from the httpx request's headers, a case-insensitive scan of every header, once the response is in).
    options = kwargs.get("options")
    ctx = None
    raw_stream = False
    headers = options.get("headers") if options else None
    if headers:
        if CONTEXT_HEADER in headers:
            headers = dict(headers)
            ctx = headers.pop(CONTEXT_HEADER)
            kwargs["options"] = options = {**options, "headers": headers}
            ctx = ctx.ctx if type(ctx) is _ContextValue else orjson.loads(ctx) if isinstance(ctx, (str, bytes)) else ctx
        raw_stream = headers.get(_RAW_HEADER) == "stream"
    op = client._wb_routes.get(path)
    recorder: Recorder = client._wb_recorder
    if op is None or not recorder.enabled:
        return None
    ambient = _AMBIENT.get()
    if ambient is not None:
        ctx = ambient if ctx is None else {**ambient, **ctx}
    elif ctx is None:
        ctx = {}
    if recorder.sample_rate < 1.0 and not recorder.sampled(ctx):
        return None
    if recorder.redact is not None and ("variables" in ctx or "metadata" in ctx):
        try:
            ctx = _redact_context(recorder, ctx)
        except Exception:  # noqa: BLE001 - a failing hook must not break the app; nothing unredacted is kept
            recorder.dropped += 1
            log.exception("workbench: redact hook failed on workbench= context; call not recorded")
            return None
    req = kwargs.get("body")
    unset = client._wb_unset
    if unset is not None and req:  # leave the SDK's "not given" sentinels out now: one dumps fallback each
        req = {k: v for k, v in req.items() if type(v) is not unset}
    if options and options.get("extra_json"):
        req = {**(req or {}), **options["extra_json"]}
    # The URL object the SDK keeps (openai 3.x: _configured_base_url, behind two properties and an import per
    # read; 1.x and anthropic: _base_url); a cache keyed on its identity sees a new one when base_url is set.
    state = client.__dict__
    url = state.get("_configured_base_url") or state.get("_base_url") or client._base_url
    cached = state.get("_wb_base")
    if cached is None or cached[0] is not url:
        cached = state["_wb_base"] = (url, str(url))
    meta: dict[str, Any] = {
        "v": 1,
        "id": new_id(),
        "ts": recorder.clock(),
        "op": op,
        "base": cached[1],
        "ctx": ctx,
        "req": req,
    }
    if kwargs.get("stream"):
        meta["stream"] = True
    return _Call(recorder, meta, raw_stream)


def _redact_context(recorder: Recorder, ctx: dict[str, Any]) -> dict[str, Any]:
    redact = recorder.redact
    assert redact is not None
    ctx = dict(ctx)
    for key in ("variables", "metadata"):
        if key in ctx:
            ctx[key] = redact(ctx[key])
    return ctx


class _RecordingClient:
    """Marker base of every recording client class."""

    _wb_recorder: Recorder
    _wb_base_class: type
    _wb_routes: dict[str, str]  # request path -> the op the parser reads its body as
    _wb_streams: tuple[type, ...]  # the SDK's stream classes
    _wb_unset: type | None  # the sentinel type of arguments not given, when the SDK leaves them in the body


class _SyncRecording(_RecordingClient):
    def post(self, path: str, /, **kwargs: Any) -> Any:
        call = _begin(self, path, kwargs)
        if call is None:
            return super().post(path, **kwargs)  # type: ignore[misc]
        token = _CALL.set(call)
        try:
            return super().post(path, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CALL.reset(token)

    def _process_response(self, **kwargs: Any) -> Any:
        call = _CALL.get()
        if call is None or call.response is not None:
            return super()._process_response(**kwargs)  # type: ignore[misc]
        response = kwargs["response"]
        if kwargs.get("stream") or call.raw_stream:  # the body is still to be read: tee it
            _bind(call, response)
            _tee_sync(call, response)
            result = super()._process_response(**kwargs)  # type: ignore[misc]
            _settle(call, result, response, True, self._wb_streams)
            return result
        call.response = response  # the common case: the body was read with the headers
        call.meta["status"] = response.status_code
        result = super()._process_response(**kwargs)  # type: ignore[misc]
        _settle_read(call, result, response, self._wb_streams)
        return result


class _AsyncRecording(_RecordingClient):
    async def post(self, path: str, /, **kwargs: Any) -> Any:
        call = _begin(self, path, kwargs)
        if call is None:
            return await super().post(path, **kwargs)  # type: ignore[misc]
        token = _CALL.set(call)
        try:
            return await super().post(path, **kwargs)  # type: ignore[misc]
        except BaseException as exc:
            call.failed(exc)
            raise
        finally:
            _CALL.reset(token)

    async def _process_response(self, **kwargs: Any) -> Any:
        call = _CALL.get()
        if call is None or call.response is not None:
            return await super()._process_response(**kwargs)  # type: ignore[misc]
        response = kwargs["response"]
        if kwargs.get("stream") or call.raw_stream:
            _bind(call, response)
            _tee_async(call, response)
            result = await super()._process_response(**kwargs)  # type: ignore[misc]
            _settle(call, result, response, True, self._wb_streams)
            return result
        call.response = response  # the common case, as in the sync client
        call.meta["status"] = response.status_code
        result = await super()._process_response(**kwargs)  # type: ignore[misc]
        _settle_read(call, result, response, self._wb_streams)
        return result


_STREAMS: tuple[type, ...] = ()


_RAW_TYPES: dict[type, bool] = {}  # result type -> is it a raw response (has .http_response and .parse())


def _is_raw(result: Any) -> bool:
    raw = hasattr(result, "http_response") and callable(getattr(result, "parse", None))
    _RAW_TYPES[type(result)] = raw
    return raw


def _settle_read(call: _Call, result: Any, response: Any, streams: tuple[type, ...]) -> None:
    """The common case, a parsed model whose body came with the headers, in one frame instead of _bind and
    _settle (each Python frame costs ~1 us cold inside a real call); anything else takes the general path."""
    tid = call.meta["id"]
    try:
        response.__dict__[_TRACE_ATTR] = tid
        result.__dict__[_TRACE_ATTR] = tid
    except (AttributeError, TypeError):  # no __dict__ (None, str from a raw read): the general path tags what it can
        _settle(call, result, response, False, streams)
        return
    raw = _RAW_TYPES.get(type(result))
    if raw or (raw is None and _is_raw(result)) or isinstance(result, streams):
        _settle(call, result, response, False, streams)
        return
    call.finish(response.content)


def _settle(call: _Call, result: Any, response: Any, deferred: bool, streams: tuple[type, ...]) -> None:
    if isinstance(result, streams):
        _watch_stream(call, result)
        return
    try:
        object.__setattr__(result, _TRACE_ATTR, call.meta["id"])
    except (AttributeError, TypeError):  # objects without a __dict__ (None, str from a raw read)
        pass
    # hasattr on a pydantic model that lacks the attribute raises inside its __getattr__: asked once per type
    raw = _RAW_TYPES.get(type(result))
    if raw or (raw is None and _is_raw(result)):
        _hook_parse(call, result, streams)  # type: ignore[arg-type]
    if not deferred or (not call.meta.get("stream") and response.is_stream_consumed):
        call.finish(response.content)  # read already (or it came in one piece with the headers)


# -- resources: accept workbench=, keep the SDK's signatures -------------------------------------------

# Which children of which resource lead to recorded methods; everything else is the SDK's, untouched.
_CHILDREN = {
    "client": {"chat": "chat", "responses": "calls", "beta": "beta"},
    "beta": {"chat": "chat"},
    "chat": {"completions": "calls"},
    "calls": {},
    # Anthropic (capture/anthropic.py): messages.create/stream/parse, and the same under beta
    "anthropic": {"messages": "calls", "beta": "anthropic_beta"},
    "anthropic_beta": {"messages": "calls"},
}
_METHODS = ("create", "parse", "stream")
_RESOURCE_CLASSES: dict[tuple[type, str], type] = {}


def _with_workbench(sig: inspect.Signature) -> inspect.Signature:
    params = list(sig.parameters.values())
    extra = inspect.Parameter(
        "workbench", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="dict[str, Any] | None"
    )
    at = len(params)
    if params and params[-1].kind is inspect.Parameter.VAR_KEYWORD:
        at -= 1
    return sig.replace(parameters=[*params[:at], extra, *params[at:]])


def _recording_method(fn: Any) -> Any:
    if inspect.iscoroutinefunction(fn):

        async def method(self: Any, *args: Any, workbench: Any = None, **kwargs: Any) -> Any:
            if workbench is not None and self._client._wb_recorder.enabled:
                ctx = build_context(workbench)  # raises InvalidContextError before anything is sent
                if ctx:
                    kwargs["extra_headers"] = {
                        **(kwargs.get("extra_headers") or {}),
                        CONTEXT_HEADER: _ContextValue(ctx),
                    }
            return await fn(self, *args, **kwargs)

    else:

        def method(self: Any, *args: Any, workbench: Any = None, **kwargs: Any) -> Any:
            if workbench is not None and self._client._wb_recorder.enabled:
                ctx = build_context(workbench)  # raises InvalidContextError before anything is sent
                if ctx:
                    kwargs["extra_headers"] = {
                        **(kwargs.get("extra_headers") or {}),
                        CONTEXT_HEADER: _ContextValue(ctx),
                    }
            return fn(self, *args, **kwargs)

    functools.update_wrapper(method, fn)
    method.__signature__ = _with_workbench(inspect.signature(fn))  # type: ignore[attr-defined]
    return method


class _Child:
    """A data descriptor over an SDK attribute (eager in old SDKs, a cached_property in new ones):
    whatever the SDK puts there is turned into its recording subclass on the way in or out."""

    def __init__(self, name: str, role: str) -> None:
        self.name = name
        self.role = role

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        d = obj.__dict__
        value = d.get(self.name)
        if value is None:
            for klass in type(obj).__mro__:
                attr = klass.__dict__.get(self.name)
                if attr is not None and not isinstance(attr, (_Child, _LazyChild)):
                    value = attr.__get__(obj, type(obj))
                    break
            else:
                raise AttributeError(self.name)
        if not getattr(type(value), "_wb_recording", False):
            value = _recording_resource(value, self.role)
            d[self.name] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.name] = _recording_resource(value, self.role)


class _LazyChild:
    """Over an SDK ``cached_property``: a non-data descriptor, so once the recording resource is stored in
    the instance's ``__dict__`` it is read from there like the SDK's own cached value, with no Python call
    on each ``client.chat.completions`` (the data descriptor costs one per attribute per access)."""

    __init__ = _Child.__init__
    __get__ = _Child.__get__


def _child(cls: type, name: str, role: str) -> _Child | _LazyChild:
    if isinstance(inspect.getattr_static(cls, name, None), functools.cached_property):
        return _LazyChild(name, role)
    return _Child(name, role)  # an eager instance attribute (older SDKs): assignments must be converted too


def _recording_resource(value: Any, role: str) -> Any:
    """The same resource object, its class swapped for a subclass whose calls accept workbench=."""
    cls = type(value)
    if getattr(cls, "_wb_recording", False):
        return value
    key = (cls, role)
    sub = _RESOURCE_CLASSES.get(key)
    if sub is None:
        attrs: dict[str, Any] = {
            "_wb_recording": True,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
        }
        for name, child_role in _CHILDREN[role].items():
            if hasattr(cls, name):
                attrs[name] = _child(cls, name, child_role)
        if role == "calls":
            for name in _METHODS:
                fn = cls.__dict__.get(name) or getattr(cls, name, None)
                if inspect.isfunction(fn):
                    attrs[name] = _recording_method(fn)
        sub = _RESOURCE_CLASSES[key] = type(cls.__name__, (cls,), attrs)
    try:
        value.__class__ = sub
    except TypeError:  # pragma: no cover - an SDK object we cannot re-class; leave it as it is
        return value
    return value


def _client_class(
    base: type,
    recorder: Recorder,
    mixin: type,
    routes: dict[str, str],
    streams: tuple[type, ...],
    role: str,
    unset: type | None = None,
) -> type:
    attrs: dict[str, Any] = {
        "_wb_recorder": recorder,
        "_wb_base_class": base,
        "_wb_routes": routes,
        "_wb_streams": streams,
        "_wb_unset": unset,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    for name, child_role in _CHILDREN[role].items():  # eager instance attributes in old SDKs: always
        attrs[name] = _child(base, name, child_role)
    return type(base.__name__, (mixin, base), attrs)


def _setup() -> None:
    """Once: the stream classes, and the SDK's docs/signatures on the overridden client methods."""
    global _STREAMS
    import openai

    _STREAMS = (openai.Stream, openai.AsyncStream)
    for mixin, base in ((_SyncRecording, openai.OpenAI), (_AsyncRecording, openai.AsyncOpenAI)):
        for name in ("post", "_process_response"):
            functools.update_wrapper(mixin.__dict__[name], getattr(base, name), updated=())


_RESOURCE_BASES = frozenset(("SyncAPIResource", "AsyncAPIResource"))


def _is_sdk_child(value: Any) -> bool:
    """A resource the SDK built against the client (any Stainless SDK: openai, anthropic)."""
    return any(k.__name__ in _RESOURCE_BASES for k in type(value).__mro__) or type(value).__name__.endswith(
        ("WithRawResponse", "WithStreamedResponse")
    )


def wrap_client(client: ClientT, recorder: Recorder) -> ClientT:
    """A copy of ``client`` of a recording subclass of its class; ``client`` itself is left as it was."""
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        mixin: type = _AsyncRecording
    elif isinstance(client, openai.OpenAI):
        mixin = _SyncRecording
    else:
        raise ValidationError(
            f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI client (Azure too), or an anthropic.Anthropic or "
            f"anthropic.AsyncAnthropic one, not {type(client).__name__}"
        )
    if not _STREAMS:
        _setup()
    return _wrapped_copy(client, recorder, mixin, _ROUTES, _STREAMS, "client")


def _wrapped_copy(
    client: ClientT,
    recorder: Recorder,
    mixin: type,
    routes: dict[str, str],
    streams: tuple[type, ...],
    role: str,
    unset: type | None = None,
) -> ClientT:
    """The copy itself, for any Stainless SDK client (OpenAI here, Anthropic in capture/anthropic.py)."""
    base = getattr(type(client), "_wb_base_class", type(client))  # re-wrapping records once, with the new settings
    wrapped = object.__new__(_client_class(base, recorder, mixin, routes, streams, role, unset))
    state = dict(client.__dict__)
    state.pop("_wb_base", None)
    # Resources the SDK built (eagerly in old versions, cached in new ones) are bound to the original
    # client's post: leave the cached ones out (rebuilt on first use), rebuild the eager ones, in the
    # SDK's own order, against the copy.
    children = {name: value for name, value in state.items() if _is_sdk_child(value)}
    wrapped.__dict__.update({name: value for name, value in state.items() if name not in children})
    for name, value in children.items():
        if not isinstance(inspect.getattr_static(base, name, None), functools.cached_property):
            setattr(wrapped, name, type(value)(wrapped))
    return wrapped
