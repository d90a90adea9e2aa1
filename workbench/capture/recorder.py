"""Turns one finished call into one spooled record, as cheaply as possible, and never raises.

The record body is ``meta JSON \\n response bytes``: the response is spooled as the SDK received it and
parsed later, off the hot path, by the ingester."""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable
from typing import Any

import orjson

from .spool import SpoolWriter

__all__ = ["Recorder", "Redactor"]

log = logging.getLogger("workbench.capture")

Redactor = Callable[[Any], Any]
_OMIT_PARAMS = ("extra_headers", "extra_query", "timeout")
_dumps = orjson.dumps
_OPTS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    """orjson fallback for SDK objects in the request (pydantic models, NotGiven, Timeout...)."""
    if isinstance(value, type):  # a class (response_format=Model): its JSON schema, or its name
        schema = getattr(value, "model_json_schema", None)
        return {"class": value.__qualname__, "schema": schema()} if callable(schema) else value.__qualname__
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_unset=True)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return None if type(value).__name__ in ("NotGiven", "Omit") else str(value)


class Recorder:
    """Holds the capture settings of one wrapped client and writes its records to the spool."""

    def __init__(
        self,
        writer: SpoolWriter | None,
        *,
        sample_rate: float = 1.0,
        redact: Redactor | None = None,
        enabled: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            from ..errors import ConfigError

            raise ConfigError(f"sample_rate must be between 0 and 1, not {sample_rate}")
        self.writer = writer
        self.sample_rate = sample_rate
        self.redact = redact
        self.enabled = enabled and writer is not None
        self.dropped = 0
        self.encode_failures = 0
        self.clock = clock or time.time  # replaying recorded traffic (the demo, imports) sets its own

    def sampled(self, ctx: dict[str, Any]) -> bool:
        """Keep whole sessions together: sample by session id when there is one."""
        if self.sample_rate >= 1.0:
            return True
        session = ctx.get("session_id")
        if session is not None:
            return (zlib.crc32(session.encode()) % 10_000) < self.sample_rate * 10_000
        return random.random() < self.sample_rate

    def emit(self, meta: dict[str, Any], body: bytes) -> None:
        """Serialize and append; never disturb the app. A record that cannot be encoded is still spooled
        (its trace id was returned): with the request replaced by a note, counted in ``encode_failures``."""
        try:
            req = meta["req"]
            for key in _OMIT_PARAMS:
                if key in req:
                    del req[key]
            if self.redact is not None:
                meta, body = self._redacted(meta, body)
            head = _dumps(meta, default=_default, option=_OPTS)
        except Exception as exc:  # noqa: BLE001 - capture must never break the app
            head = self._fallback(meta, exc)
            if head is None:
                self.dropped += 1
                return
        if not self.writer.append(head, body):  # type: ignore[union-attr]  # spool full: counted there too
            self.dropped += 1

    def _fallback(self, meta: dict[str, Any], exc: Exception) -> bytes | None:
        """The record with what can be encoded, and why the rest could not (stored as a capture error)."""
        self.encode_failures += 1
        reason = f"workbench could not encode this call's record: {type(exc).__name__}: {exc}"[:1000]
        log.warning("workbench: trace %s: %s", meta.get("id"), reason)
        safe: dict[str, Any] = {
            k: meta.get(k) for k in ("v", "id", "ts", "op", "base", "lat", "ttft", "status", "stream")
        }
        req = meta.get("req") if isinstance(meta.get("req"), dict) else {}
        safe["req"] = {"model": str(req.get("model"))} if req.get("model") is not None else {}
        safe["capture_error"] = reason
        for key in ("ctx", "err"):
            try:
                _dumps(meta.get(key), default=_default, option=_OPTS)
                safe[key] = meta.get(key)
            except Exception:  # noqa: BLE001
                safe[key] = None
        try:
            return _dumps(safe, default=str, option=_OPTS)
        except Exception:  # noqa: BLE001
            log.exception("workbench: could not spool trace %s", meta.get("id"))
            return None

    def _redacted(self, meta: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
        """Apply the user's redact hook before anything touches disk: parse now, spool parsed fields."""
        from .parse import parse_output

        assert self.redact is not None
        meta = dict(meta)
        req = orjson.loads(orjson.dumps(meta["req"], default=_default))
        meta["req"] = self.redact(req)
        parsed = parse_output(meta, body)
        for key in ("output_text", "tool_calls"):
            if parsed.get(key) is not None:
                parsed[key] = self.redact(parsed[key])
        if meta.get("err") and meta["err"].get("message"):
            meta["err"] = {**meta["err"], "message": self.redact(meta["err"]["message"]), "body": None}
        meta["parsed"] = parsed
        return meta, b""
