"""Explicit feedback: thumbs, ratings, corrections and comments an app (or a person) sends.

Append-only: a changed vote is a new row and views use each user's latest. The same idempotency key
twice stores one row, so apps can retry freely.

Everything is validated here, at the boundary, before the store sees it, so a bad value is one clear
``ValidationError`` naming the field (never a database error, and the same on SQLite and PostgreSQL).
Limits (``LIMITS``): text (corrections, comments) up to 100,000 characters; user ids, refs and
idempotency keys non-empty strings up to 190 characters; metadata a JSON object with string keys, up to
16 KiB as JSON; no NUL character anywhere (PostgreSQL cannot store one in text); numbers finite; a
rating scale exactly two numbers, low < high.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import Feedback, utcnow
from ..store import Store
from ..store import feedback as feedback_rows
from ..store import traces as trace_rows

__all__ = ["LIMITS", "FeedbackAPI"]

LIMITS = {"text_chars": 100_000, "id_chars": 190, "metadata_bytes": 16 * 1024}


class FeedbackAPI:
    """``wb.feedback``: every method takes a trace id or the provider's response id as ``ref``."""

    def __init__(self, store: Store, catch_up: Callable[[], object] | None = None) -> None:
        """``catch_up``: called once when a ref is not in the store yet (a call made a moment ago may still be
        in the capture spool: ``wb.feedback`` ingests it then), before the ref is reported unknown."""
        self._store = store
        self._catch_up = catch_up

    def thumbs(self, ref: str, up: bool = True, **options: Any) -> Feedback:
        if not isinstance(up, bool):
            raise ValidationError(f"field 'up' must be true or false, not {up!r}")
        return self._add(ref, "thumbs", value=1.0 if up else 0.0, **options)

    def rating(self, ref: str, value: float, scale: tuple[float, float] = (1, 5), **options: Any) -> Feedback:
        low, high = _scale(scale)
        if not _is_number(value):
            raise ValidationError(f"field 'value' must be a number, not {_show(value)}")
        if not low <= value <= high:
            raise ValidationError(f"field 'value' is {value}, outside the rating scale {low:g}..{high:g}")
        metadata = {**(options.pop("metadata", None) or {}), "scale": [low, high]}
        return self._add(ref, "rating", value=float(value), metadata=metadata, **options)

    def correction(self, ref: str, text: str, **options: Any) -> Feedback:
        """What the answer should have been; it becomes the candidate's proposed expected output."""
        return self._add(ref, "correction", text=_text("text", text), **options)

    def comment(self, ref: str, text: str, **options: Any) -> Feedback:
        return self._add(ref, "comment", text=_text("text", text), **options)

    def _add(
        self,
        ref: str,
        signal: str,
        *,
        value: float | None = None,
        text: str | None = None,
        user_id: str | None = None,
        idempotency_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Feedback:
        if not isinstance(ref, str) or not ref:
            raise ValidationError(f"field 'ref' must be a trace id or response id, not {_show(ref)}")
        _identifier("ref", ref)
        if user_id is not None:
            _identifier("user_id", user_id)
        if idempotency_key is not None:
            _identifier("idempotency_key", idempotency_key)
        fields = {
            "value": value,
            "text": text,
            "user_id": user_id,
            "idempotency_key": idempotency_key,
            "metadata": _metadata(metadata),
        }
        try:
            return self._insert(ref, signal, **fields)
        except NotFoundError:
            if self._catch_up is None:
                raise
        self._catch_up()
        return self._insert(ref, signal, **fields)

    def _insert(
        self,
        ref: str,
        signal: str,
        *,
        value: float | None,
        text: str | None,
        user_id: str | None,
        idempotency_key: str | None,
        metadata: dict[str, Any],
    ) -> Feedback:
        with self._store.write() as conn:
            trace_id = trace_rows.resolve_trace_id(conn, ref)
            item = Feedback(
                id=new_id(),
                trace_id=trace_id,
                kind="explicit",
                signal=signal,
                value=value,  # type: ignore[arg-type]
                text=text,
                strength=1.0,
                source=f"user:{user_id}" if user_id else "api",
                user_id=user_id,
                metadata=metadata,
                idempotency_key=idempotency_key,
                created_at=utcnow(),
            )
            stored, _created = feedback_rows.add_feedback(conn, item)
        return stored


def _show(value: Any) -> str:
    """A value for an error message: short, one line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _scale(scale: Any) -> tuple[float, float]:
    if not isinstance(scale, list | tuple) or len(scale) != 2 or not all(_is_number(v) for v in scale):
        raise ValidationError(f"field 'scale' must be two numbers [low, high], not {_show(scale)}")
    low, high = float(scale[0]), float(scale[1])
    if not low < high:
        raise ValidationError(f"field 'scale' must have low < high, not {_show(scale)}")
    return low, high


def _no_nul(field: str, text: str) -> None:
    if "\x00" in text:
        raise ValidationError(f"field '{field}' contains a NUL character")


def _identifier(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"field '{field}' must be a non-empty string, not {_show(value)}")
    if len(value) > LIMITS["id_chars"]:
        raise ValidationError(f"field '{field}' is {len(value)} characters; the limit is {LIMITS['id_chars']}")
    _no_nul(field, value)


def _text(field: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"field '{field}' must be non-empty text")
    if len(text) > LIMITS["text_chars"]:
        raise ValidationError(f"field '{field}' is {len(text):,} characters; the limit is {LIMITS['text_chars']:,}")
    _no_nul(field, text)
    return text


def _metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"field 'metadata' must be an object, not {type(metadata).__name__}")
    try:
        encoded = orjson.dumps(dict(metadata))  # string keys only, JSON values only
    except TypeError as exc:
        raise ValidationError(f"field 'metadata' must be a JSON object with string keys: {exc}") from None
    if len(encoded) > LIMITS["metadata_bytes"]:
        raise ValidationError(
            f"field 'metadata' is {len(encoded):,} bytes as JSON; the limit is {LIMITS['metadata_bytes']:,}"
        )
    if _has_nul(metadata):
        raise ValidationError("field 'metadata' contains a NUL character")
    return dict(metadata)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False
