"""Turns one finished call into one spooled record, as cheaply as possible, and never raises."""

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


def _default(value: Any) -> Any:
    """orjson fallback for SDK objects in the request (pydantic models, NotGiven, Timeout...)."""
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
        """Serialize and append; on any failure count the drop and log, never disturb the app."""
        try:
            req = meta["req"]
            for key in _OMIT_PARAMS:
                if key in req:
                    del req[key]
            if self.redact is not None:
                meta, body = self._redacted(meta, body)
            payload = orjson.dumps(meta, default=_default) + b"\n" + body
            self.writer.append(payload)  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - capture must never break the app
            self.dropped += 1
            log.exception("workbench: could not spool trace %s", meta.get("id"))

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
