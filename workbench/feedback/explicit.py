"""Explicit feedback: thumbs, ratings, corrections and comments an app (or a person) sends.

Append-only: a changed vote is a new row and views use each user's latest. The same idempotency key
twice stores one row, so apps can retry freely.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import Feedback, utcnow
from ..store import Store
from ..store import feedback as feedback_rows
from ..store import traces as trace_rows

__all__ = ["FeedbackAPI"]


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
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValidationError(f"field 'value' must be a number, not {value!r}")
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
            raise ValidationError(f"field 'ref' must be a trace id or response id, not {ref!r}")
        if user_id is not None and not isinstance(user_id, str):
            raise ValidationError(f"field 'user_id' must be a string, not {user_id!r}")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationError(f"field 'metadata' must be an object, not {type(metadata).__name__}")
        fields = {"value": value, "text": text, "user_id": user_id, "idempotency_key": idempotency_key,
                  "metadata": dict(metadata or {})}
        try:
            return self._insert(ref, signal, **fields)
        except NotFoundError:
            if self._catch_up is None:
                raise
        self._catch_up()
        return self._insert(ref, signal, **fields)

    def _insert(self, ref: str, signal: str, *, value: float | None, text: str | None, user_id: str | None,
                idempotency_key: str | None, metadata: dict[str, Any]) -> Feedback:
        with self._store.write() as conn:
            trace_id = trace_rows.resolve_trace_id(conn, ref)
            item = Feedback(
                id=new_id(), trace_id=trace_id, kind="explicit", signal=signal, value=value,  # type: ignore[arg-type]
                text=text, strength=1.0, source=f"user:{user_id}" if user_id else "api", user_id=user_id,
                metadata=metadata, idempotency_key=idempotency_key, created_at=utcnow(),
            )
            stored, _created = feedback_rows.add_feedback(conn, item)
        return stored


def _scale(scale: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in scale)
    except (TypeError, ValueError):
        raise ValidationError(f"field 'scale' must be (low, high), not {scale!r}") from None
    if not low < high:
        raise ValidationError(f"field 'scale' must have low < high, not {scale!r}")
    return low, high


def _text(field: str, text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError(f"field '{field}' must be non-empty text")
    return text
