"""A LiteLLM callback: ``litellm.callbacks = [wb.litellm_callback()]`` records every completion LiteLLM makes,
whatever provider it reaches, as the same trace row a wrapped OpenAI chat call makes.

LiteLLM hands every provider's answer to its callbacks already translated into OpenAI's chat format
(``ModelResponse``), so one mapping covers them all: the request is ``model`` (as the app named it,
``anthropic/claude-...``), ``messages`` and the model parameters LiteLLM reports; the response is parsed
by the ingester's own chat parser; the model version is the one the provider reported.

Context: ``litellm.completion(..., metadata={"workbench": {"session_id": ..., "prompt": ...}})`` (the
keys of ``workbench=``), or a ``workbench.context(...)`` block around the call (sync calls: LiteLLM runs
its callbacks with a copy of the caller's context).

Timing, and what a SIGKILL can cost: LiteLLM runs success callbacks after the call has returned, in its
own logging thread (sync) or logging task (async), never on the app's path. So the record is spooled a
moment after the call returns, not before as with ``wb.wrap``: an app killed in that moment loses the
calls whose callbacks had not run yet. Everything already spooled survives as usual.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import orjson

from ..errors import InvalidContextError
from ..ids import new_id
from .context import build_context
from .parse import parse_output
from .recorder import Recorder

__all__ = ["make_callback", "record_from_litellm"]

log = logging.getLogger("workbench.capture")

_CALL_TYPES = frozenset(("completion", "acompletion"))
_SEEN_LIMIT = 4096  # call ids remembered, so a call LiteLLM reports to both sync and async hooks is recorded once


def _seconds(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return None


def _error(exc: Any) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "message": str(exc)[:4000],
        "status": getattr(exc, "status_code", None),
        "body": None,
    }


def _context(kwargs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """``metadata={"workbench": {...}}`` over the caller's ``workbench.context()``; a bad one is noted, not raised
    (the call has already been made, and LiteLLM would swallow the exception anyway)."""
    from .wrap import _AMBIENT

    metadata = (kwargs.get("litellm_params") or {}).get("metadata") or {}
    ambient = _AMBIENT.get() or {}
    try:
        given = build_context(metadata.get("workbench"))
    except InvalidContextError as exc:
        return dict(ambient), f"workbench context ignored: {exc}"
    return ({**ambient, **given} if ambient else given), None


def record_from_litellm(
    kwargs: dict[str, Any], response: Any, start: Any, end: Any, exc: Any = None
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(meta, context) of one finished LiteLLM call in the spool's record shape, or None for calls that are
    not chat completions (embeddings, images...)."""
    call_type = kwargs.get("call_type")
    if call_type is not None and str(call_type) not in _CALL_TYPES:
        return None
    logged = kwargs.get("standard_logging_object") or {}
    hidden = ((kwargs.get("litellm_params") or {}).get("metadata") or {}).get("hidden_params") or {}
    ctx, problem = _context(kwargs)
    req: dict[str, Any] = {
        "model": hidden.get("litellm_model_name") or kwargs.get("model"),
        "messages": kwargs.get("messages") or [],
        **(logged.get("model_parameters") or {}),
    }
    t0, t1 = _seconds(start), _seconds(end)
    stream = bool(kwargs.get("stream"))
    meta: dict[str, Any] = {
        "v": 1,
        "id": new_id(),
        "ts": t0 if t0 is not None else _seconds(datetime.now()),
        "op": "chat",
        "base": logged.get("api_base") or hidden.get("api_base") or kwargs.get("api_base"),
        "ctx": ctx,
        "req": req,
        "src": "litellm",
    }
    if t0 is not None and t1 is not None:
        meta["lat"] = (t1 - t0) * 1000.0
    if stream:
        meta["stream"] = True
        first = _seconds(kwargs.get("completion_start_time"))
        if first is not None and t0 is not None:
            meta["ttft"] = (first - t0) * 1000.0
    if problem:
        meta["capture_error"] = problem
    if exc is not None:
        meta["err"] = _error(exc)
        status = getattr(exc, "status_code", None)
        if status is not None:
            meta["status"] = status
    full = kwargs.get("complete_streaming_response") or response
    dump = getattr(full, "model_dump", None)
    if exc is None and dump is not None:
        meta["status"] = 200
        meta["parsed"] = parse_output({"op": "chat"}, orjson.dumps(dump(), default=str))
    return meta, ctx


def _failure(kwargs: dict[str, Any]) -> BaseException:
    exc = kwargs.get("exception")
    return exc if isinstance(exc, BaseException) else RuntimeError(str(exc or "LiteLLM reported a failure"))


def make_callback(recorder: Recorder) -> Any:
    """A ``litellm.integrations.custom_logger.CustomLogger`` that spools each call through ``recorder``."""
    try:
        from litellm.integrations.custom_logger import CustomLogger
    except ImportError:
        from ..errors import ConfigError

        raise ConfigError("wb.litellm_callback() needs LiteLLM: pip install 'workbench[litellm]'") from None

    class WorkbenchCallback(CustomLogger):  # type: ignore[misc]
        """Records LiteLLM calls into a workbench store (``litellm.callbacks = [wb.litellm_callback()]``)."""

        def __init__(self) -> None:
            super().__init__()
            # LiteLLM keeps one callback per class name + public str attributes: without an attribute of its
            # own, a second store's callback (another wb) would be dropped as a duplicate of the first.
            self.workbench_callback = new_id()
            self.recorder = recorder
            self._seen: OrderedDict[str, None] = OrderedDict()
            self._lock = threading.Lock()

        def _first_time(self, kwargs: dict[str, Any]) -> bool:
            call_id = kwargs.get("litellm_call_id")
            if not call_id:
                return True
            with self._lock:
                if call_id in self._seen:
                    return False
                self._seen[call_id] = None
                if len(self._seen) > _SEEN_LIMIT:
                    self._seen.popitem(last=False)
            return True

        def _record(self, kwargs: dict[str, Any], response: Any, start: Any, end: Any, exc: Any = None) -> None:
            try:
                if not self.recorder.enabled or not self._first_time(kwargs):
                    return
                built = record_from_litellm(kwargs, response, start, end, exc)
                if built is None or not self.recorder.sampled(built[1]):
                    return
                self.recorder.emit(built[0], b"")
            except Exception:  # noqa: BLE001 - a callback must never disturb LiteLLM or the app
                self.recorder.dropped += 1
                log.exception("workbench: could not record a LiteLLM call")

        def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            self._record(kwargs, response_obj, start_time, end_time)

        def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            self._record(kwargs, response_obj, start_time, end_time, _failure(kwargs))

        async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            self._record(kwargs, response_obj, start_time, end_time)

        async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
            self._record(kwargs, response_obj, start_time, end_time, _failure(kwargs))

    return WorkbenchCallback()
