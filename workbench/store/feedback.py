"""Feedback rows (append-only): idempotent inserts, listing, and the latest vote per user."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, func, select

from ..models import Feedback
from .schema import feedback
from .traces import insert_ignore

__all__ = ["add_feedback", "add_feedback_many", "list_feedback", "row_to_feedback"]


def row_to_feedback(row: object) -> Feedback:
    data = dict(row._mapping)  # type: ignore[attr-defined]
    data["evidence"] = data.get("evidence") or {}
    data["metadata"] = data.get("metadata") or {}
    return Feedback.model_validate(data)


def add_feedback(conn: Connection, item: Feedback) -> tuple[Feedback, bool]:
    """Store one row; with an idempotency key already stored, return that row instead (created=False)."""
    if item.idempotency_key is not None:
        existing = conn.execute(select(feedback).where(feedback.c.idempotency_key == item.idempotency_key)).first()
        if existing is not None:
            return row_to_feedback(existing), False
    conn.execute(insert_ignore(conn, feedback).values(**item.model_dump()))
    if item.idempotency_key is not None:  # a concurrent writer may have won the race on the key
        stored = conn.execute(select(feedback).where(feedback.c.idempotency_key == item.idempotency_key)).one()
        return row_to_feedback(stored), stored.id == item.id
    return item, True


def add_feedback_many(conn: Connection, items: Sequence[Feedback]) -> int:
    """Bulk insert; rows whose idempotency key is already stored are skipped. Returns rows added."""
    if not items:
        return 0
    before = conn.execute(select(func.count()).select_from(feedback)).scalar_one()
    conn.execute(insert_ignore(conn, feedback), [item.model_dump() for item in items])
    return int(conn.execute(select(func.count()).select_from(feedback)).scalar_one() - before)


def list_feedback(
    conn: Connection,
    *,
    trace_ids: Sequence[str] | None = None,
    signal: str | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    latest_per_user: bool = False,
    limit: int | None = None,
) -> list[Feedback]:
    """Feedback, oldest first. ``latest_per_user`` keeps only each user's newest row per (trace, signal)."""
    query = select(feedback)
    conditions = []
    if trace_ids is not None:
        conditions.append(feedback.c.trace_id.in_(list(trace_ids)))
    if signal is not None:
        conditions.append(feedback.c.signal == signal)
    if kind is not None:
        conditions.append(feedback.c.kind == kind)
    if since is not None:
        conditions.append(feedback.c.created_at >= since)
    if conditions:
        query = query.where(and_(*conditions))
    if latest_per_user:
        # Each user's newest row per (trace, signal): by time, then id (ids sort only to the millisecond).
        who = func.coalesce(feedback.c.user_id, feedback.c.source)
        ranked = (
            select(
                feedback.c.id,
                func.row_number()
                .over(
                    partition_by=(feedback.c.trace_id, feedback.c.signal, who),
                    order_by=(feedback.c.created_at.desc(), feedback.c.id.desc()),
                )
                .label("rank"),
            )
            .where(*conditions)
            .subquery()
        )
        query = select(feedback).where(feedback.c.id.in_(select(ranked.c.id).where(ranked.c.rank == 1)))
    query = query.order_by(feedback.c.created_at, feedback.c.id)  # ids sort only to the millisecond
    if limit is not None:
        query = query.limit(limit)
    return [row_to_feedback(row) for row in conn.execute(query)]
