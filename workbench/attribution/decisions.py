"""The decision log: promote, roll back or stage a prompt version, with who, when, why and the evidence.

Each decision is an append-only ``prompt_events`` row; ``wb.prompts.get`` replays them. The
evidence is the comparison of the prompt's versions at the moment of the decision (``compare``
on ``--metric``), so a later reader sees what the person saw. No data yet is not a reason to
refuse a decision (a first deploy has none); the evidence then says why there is no comparison.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from workbench.attribution.service import compare_configurations
from workbench.errors import NotFoundError, StatisticsError, ValidationError
from workbench.ids import new_id
from workbench.models import PromptEvent, default_actor, utcnow
from workbench.prompts import parse_prompt_ref
from workbench.store import Store
from workbench.store import attribution as rows_db
from workbench.store import prompts as prompt_rows

__all__ = ["history", "promote", "rollback", "rollout"]


def _why(why: str | None, required: bool) -> str | None:
    if why is not None and not why.strip():
        why = None
    if required and why is None:
        raise ValidationError("--why is required: say why, so the decision log explains itself later")
    return why.strip() if why else None


def _versioned(ref: str) -> tuple[str, int]:
    name, version = parse_prompt_ref(ref)
    if version is None:
        raise ValidationError(f"give a version: {name}@VERSION (see `workbench prompts --name {name}`)")
    return name, version


def _evidence(
    store: Store, name: str, metric: str, since: datetime | None, state: rows_db.PromptState
) -> dict[str, Any]:
    """The comparison that justified the decision, or why there is none."""
    before = {"promoted": state.promoted, "rollout": state.rollout, "share": state.share}
    try:
        report = compare_configurations(store, "prompt_version", metric, since, prompt=name)
    except StatisticsError as exc:
        return {"before": before, "comparison": None, "comparison_note": str(exc)}
    return {"before": before, "comparison": report.to_dict()}


def _record(
    store: Store,
    name: str,
    version: int,
    action: str,
    *,
    why: str | None,
    actor: str | None,
    share: float | None,
    evidence: dict[str, Any],
) -> PromptEvent:
    event = PromptEvent(
        id=new_id(),
        prompt_name=name,
        prompt_version=version,
        action=action,  # type: ignore[arg-type]
        share=share,
        actor=actor or default_actor(),
        reason=why,
        evidence=evidence,
        created_at=utcnow(),
    )
    with store.write() as conn:
        rows_db.insert_prompt_event(conn, event)
    return event


def _state(store: Store, name: str, version: int | None = None) -> rows_db.PromptState:
    """The prompt's current state; NotFoundError for an unknown name or version (before any evidence is
    computed: a comparison can scan every trace of the prompt)."""
    with store.read() as conn:
        if not prompt_rows.list_prompts(conn, name):
            raise NotFoundError(f"no prompt named {name!r}")
        if version is not None:
            prompt_rows.get_prompt(conn, name, version)
        return rows_db.prompt_state(conn, name)


def promote(
    store: Store,
    ref: str,
    *,
    why: str | None,
    actor: str | None = None,
    metric: str = "thumbs_up_rate",
    since: datetime | None = None,
) -> PromptEvent:
    """Serve NAME@VERSION to everyone (ends any staged rollout)."""
    name, version = _versioned(ref)
    reason = _why(why, True)
    state = _state(store, name, version)
    return _record(
        store,
        name,
        version,
        "promote",
        why=reason,
        actor=actor,
        share=None,
        evidence=_evidence(store, name, metric, since, state),
    )


def rollback(
    store: Store,
    name: str,
    *,
    why: str | None,
    to: int | None = None,
    actor: str | None = None,
    metric: str = "thumbs_up_rate",
    since: datetime | None = None,
) -> PromptEvent:
    """Go back: to ``to``; else end the staged rollout; else to the previously promoted version."""
    if "@" in name:
        raise ValidationError(f"rollback takes a prompt NAME (use --to VERSION for a target), not {name!r}")
    reason = _why(why, True)
    state = _state(store, name, to)
    if to is None:
        if state.rollout is not None and state.promoted is not None:
            to = state.promoted
        else:
            earlier = [v for v in state.history if v != state.promoted]
            if not earlier:
                raise ValidationError(
                    f"prompt {name!r} has no earlier promoted version to roll back to; give one with --to VERSION"
                )
            to = earlier[-1]
    return _record(
        store,
        name,
        to,
        "rollback",
        why=reason,
        actor=actor,
        share=None,
        evidence=_evidence(store, name, metric, since, state),
    )


def rollout(
    store: Store,
    ref: str,
    *,
    share: float,
    why: str | None = None,
    actor: str | None = None,
    metric: str = "thumbs_up_rate",
    since: datetime | None = None,
) -> PromptEvent:
    """Hand NAME@VERSION to ``share`` of sessions (stable per session id); the rest keep the promoted one."""
    name, version = _versioned(ref)
    if (
        isinstance(share, bool)
        or not isinstance(share, int | float)
        or not math.isfinite(share)
        or not (0 < share <= 1)
    ):
        raise ValidationError(f"--share must be a fraction in (0, 1], e.g. 0.1 for 10% of sessions, not {share!r}")
    reason = _why(why, False)
    state = _state(store, name, version)
    if state.promoted is None:
        raise ValidationError(
            f"nothing is promoted for {name!r}, so every session already gets the latest "
            f"version; promote the current one first (workbench prompts promote {name}@N)"
        )
    if state.promoted == version:
        raise ValidationError(f"{name}@{version} is already the promoted version")
    return _record(
        store,
        name,
        version,
        "rollout",
        why=reason,
        actor=actor,
        share=float(share),
        evidence=_evidence(store, name, metric, since, state),
    )


def history(store: Store, name: str | None = None) -> list[PromptEvent]:
    with store.read() as conn:
        return rows_db.list_prompt_events(conn, name)
