"""Wrapping an OpenAI client object: no global patching, same return values and exceptions.

``wrap`` returns a shallow copy of the client whose ``chat.completions`` and ``responses`` resources
record each ``create`` call. The call goes through the SDK's public ``with_raw_response`` path and is
parsed exactly as a plain call would be, which leaves the response bytes in hand: they are spooled as
they are and parsed later by the ingester, so the hot path never serializes SDK objects. Streams are
teed (decoded bytes) while the app consumes them.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ..errors import ValidationError
from ..ids import new_id
from .context import build_context
from .recorder import Recorder

__all__ = ["trace_id", "wrap_client"]

_perf = time.perf_counter
_TRACE_ATTR = "_wb_trace_id"

def trace_id(response: Any) -> str | None:
    """The workbench trace id of a response (or stream) returned by a wrapped client."""
    return getattr(response, _TRACE_ATTR, None)


def _tag(result: Any, tid: str) -> None:
    try:
        object.__setattr__(result, _TRACE_ATTR, tid)
    except (AttributeError, TypeError):  # pragma: no cover - objects without a __dict__
        pass


def _error(exc: BaseException) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:4000],
        "status": getattr(exc, "status_code", None),
        "body": body if isinstance(body, (dict, list, str, type(None))) else str(body),
    }


class _Delegate:
    """Everything not overridden falls through to the SDK object."""

    def __init__(self, target: Any) -> None:
        self._wb_target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wb_target, name)

    def __repr__(self) -> str:
        return f"<workbench-wrapped {self._wb_target!r}>"


class _Chat(_Delegate):
    def __init__(self, target: Any, completions: Any) -> None:
        super().__init__(target)
        self.completions = completions


class _Resource(_Delegate):
    def __init__(self, target: Any, recorder: Recorder, op: str, base_url: str) -> None:
        super().__init__(target)
        self._wb_recorder = recorder
        self._wb_op = op
        self._wb_base = base_url
        self._wb_raw_create = target.with_raw_response.create

    def _start(self, workbench: Any, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        recorder = self._wb_recorder
        if not recorder.enabled:
            return None
        ctx = build_context(workbench)
        if not recorder.sampled(ctx):
            return None
        return {"v": 1, "id": new_id(), "ts": recorder.clock(), "op": self._wb_op, "base": self._wb_base,
                "ctx": ctx, "req": kwargs}


class _SyncResource(_Resource):
    def create(self, *args: Any, workbench: Any = None, **kwargs: Any) -> Any:
        meta = self._start(workbench, kwargs)
        if meta is None:
            return self._wb_target.create(*args, **kwargs)
        recorder = self._wb_recorder
        t0 = _perf()
        try:
            raw = self._wb_raw_create(*args, **kwargs)
            response = raw.http_response
            if kwargs.get("stream"):
                _tee_sync(response, recorder, meta, t0)
                result = raw.parse()
                meta["stream"] = True
            else:
                result = raw.parse()
                meta["lat"] = (_perf() - t0) * 1000.0
                meta["status"] = response.status_code
                recorder.emit(meta, response.content)
        except Exception as exc:
            meta["lat"] = (_perf() - t0) * 1000.0
            meta["err"] = _error(exc)
            recorder.emit(meta, b"")
            raise
        _tag(result, meta["id"])
        return result


class _AsyncResource(_Resource):
    async def create(self, *args: Any, workbench: Any = None, **kwargs: Any) -> Any:
        meta = self._start(workbench, kwargs)
        if meta is None:
            return await self._wb_target.create(*args, **kwargs)
        recorder = self._wb_recorder
        t0 = _perf()
        try:
            raw = await self._wb_raw_create(*args, **kwargs)
            response = raw.http_response
            if kwargs.get("stream"):
                _tee_async(response, recorder, meta, t0)
                result = raw.parse()
                meta["stream"] = True
            else:
                result = raw.parse()
                meta["lat"] = (_perf() - t0) * 1000.0
                meta["status"] = response.status_code
                recorder.emit(meta, response.content)
        except Exception as exc:
            meta["lat"] = (_perf() - t0) * 1000.0
            meta["err"] = _error(exc)
            recorder.emit(meta, b"")
            raise
        _tag(result, meta["id"])
        return result


class _Tee:
    """Keeps the bytes the app reads; spools the call once the stream ends, fails or is closed.

    Installed as instance attributes over the response's ``iter_bytes``/``close`` (``aiter_bytes``/
    ``aclose``), which the SDK's Stream reads through: decoded bytes, whatever the transport.
    """

    def __init__(self, recorder: Recorder, meta: dict[str, Any], t0: float, response: Any) -> None:
        self._recorder = recorder
        self._meta = meta
        self._t0 = t0
        self._parts: list[bytes] = []
        self._done = False
        meta["status"] = response.status_code

    def _chunk(self, chunk: bytes) -> None:
        if not self._parts:
            self._meta["ttft"] = (_perf() - self._t0) * 1000.0
        self._parts.append(chunk)

    def finish(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        meta = self._meta
        meta["lat"] = (_perf() - self._t0) * 1000.0
        if exc is not None:
            meta["err"] = _error(exc)
        self._recorder.emit(meta, b"".join(self._parts))


def _tee_sync(response: Any, recorder: Recorder, meta: dict[str, Any], t0: float) -> None:
    tee = _Tee(recorder, meta, t0, response)
    iter_bytes, close = response.iter_bytes, response.close

    def teed_iter_bytes(*args: Any, **kwargs: Any) -> Any:
        try:
            for chunk in iter_bytes(*args, **kwargs):
                tee._chunk(chunk)
                yield chunk
        except Exception as exc:
            tee.finish(exc)
            raise
        finally:
            tee.finish()

    def teed_close() -> None:
        try:
            close()
        finally:
            tee.finish()

    response.iter_bytes, response.close = teed_iter_bytes, teed_close


def _tee_async(response: Any, recorder: Recorder, meta: dict[str, Any], t0: float) -> None:
    tee = _Tee(recorder, meta, t0, response)
    aiter_bytes, aclose = response.aiter_bytes, response.aclose

    async def teed_aiter_bytes(*args: Any, **kwargs: Any) -> Any:
        try:
            async for chunk in aiter_bytes(*args, **kwargs):
                tee._chunk(chunk)
                yield chunk
        except Exception as exc:
            tee.finish(exc)
            raise
        finally:
            tee.finish()

    async def teed_aclose() -> None:
        try:
            await aclose()
        finally:
            tee.finish()

    response.aiter_bytes, response.aclose = teed_aiter_bytes, teed_aclose


def wrap_client(client: Any, recorder: Recorder) -> Any:
    """A copy of ``client`` whose chat.completions.create and responses.create are recorded."""
    import openai

    if isinstance(client, openai.AsyncOpenAI):
        resource: type[_Resource] = _AsyncResource
    elif isinstance(client, openai.OpenAI):
        resource = _SyncResource
    else:
        raise ValidationError(
            f"wrap() takes an openai.OpenAI or openai.AsyncOpenAI client, not {type(client).__name__}"
        )
    wrapped = copy.copy(client)
    base_url = str(client.base_url)
    wrapped.__dict__["chat"] = _Chat(client.chat, resource(client.chat.completions, recorder, "chat", base_url))
    wrapped.__dict__["responses"] = resource(client.responses, recorder, "responses", base_url)
    wrapped.__dict__["_wb_recorder"] = recorder
    return wrapped
