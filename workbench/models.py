"""The shared vocabulary: pydantic models every package speaks (store rows come back as these)."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Alert",
    "Calibration",
    "Candidate",
    "CandidateStatus",
    "Decision",
    "Export",
    "Feedback",
    "FeedbackKind",
    "JudgeScore",
    "Prompt",
    "PromptEvent",
    "Signal",
    "Trace",
    "default_actor",
    "last_user_text",
    "utcnow",
]

FeedbackKind = Literal["explicit", "implicit"]
Signal = Literal[
    "thumbs",
    "rating",
    "correction",
    "comment",
    "repeat_ask",
    "regenerate",
    "abandon",
    "pushback",
    "positive",
]
CandidateStatus = Literal["open", "accepted", "rejected", "skipped"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_actor() -> str:
    """Who a decision is recorded as (triage, prompt promotions): $WORKBENCH_ACTOR, else the login
    name ($USER, $USERNAME or the password database), else 'unknown'."""
    try:
        return (
            os.environ.get("WORKBENCH_ACTOR")
            or os.environ.get("USER")
            or os.environ.get("USERNAME")
            or getpass.getuser()
            or "unknown"
        )
    except (KeyError, OSError):
        return "unknown"


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (what the user asked this turn); parts of a multi-part
    message are joined; "" when there is no user message."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            return content if isinstance(content, str) else ""
    return ""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Prompt(_Model):
    """A registered prompt template; same name + same content hash is the same version."""

    id: str
    name: str
    version: int
    template: str
    variables: list[str] = Field(default_factory=list)
    content_hash: str
    created_at: datetime = Field(default_factory=utcnow)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def format(self, **values: Any) -> str:
        return self.template.format(**values)


class Trace(_Model):
    """One captured LLM call."""

    id: str
    created_at: datetime
    operation: Literal["chat", "responses"] = "chat"
    provider_response_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    parent_id: str | None = None
    prompt_id: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    prompt_hash: str | None = None
    variables: dict[str, Any] | None = None
    variant: str | None = None
    model_requested: str | None = None
    model_resolved: str | None = None
    system_fingerprint: str | None = None
    base_url: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    input: list[dict[str, Any]] = Field(default_factory=list)
    output_text: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    stream: bool = False
    status: Literal["ok", "error", "cancelled"] = "ok"  # cancelled: a stream closed or dropped before its end
    error_type: str | None = None
    error_message: str | None = None
    http_status: int | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def prompt_ref(self) -> str | None:
        return f"{self.prompt_name}@{self.prompt_version}" if self.prompt_name else None

    @property
    def last_user_text(self) -> str:
        """The text of the last user message (what the user asked this turn)."""
        return last_user_text(self.input)


class Feedback(_Model):
    """One explicit vote or implicit signal about a trace (append-only)."""

    id: str
    trace_id: str
    kind: FeedbackKind
    signal: Signal
    value: float | None = None
    text: str | None = None
    strength: float = 1.0
    source: str
    user_id: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Candidate(_Model):
    """A golden-set candidate: a cluster of traces that drew negative or conflicting feedback."""

    id: str
    cluster_key: str
    representative_trace_id: str
    member_trace_ids: list[str] = Field(default_factory=list)
    feedback_ids: list[str] = Field(default_factory=list)
    count: int = 1
    input: list[dict[str, Any]] = Field(default_factory=list)
    output_text: str | None = None
    expected_output: str | None = None
    signals: dict[str, float] = Field(default_factory=dict)
    primary_signal: str | None = None
    users: int = 0
    priority: float = 0.0
    status: CandidateStatus = "open"
    labels: list[str] = Field(default_factory=list)
    notes: str | None = None
    prompt_name: str | None = None
    prompt_version: int | None = None
    model_resolved: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Decision(_Model):
    """A triage action on a candidate (append-only); the latest one sets the candidate's status."""

    id: str
    candidate_id: str
    action: str
    actor: str
    before: dict[str, Any] = Field(default_factory=dict)
    after: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class JudgeScore(_Model):
    """One judge verdict on a trace under one rubric version and judge model."""

    id: str
    trace_id: str
    rubric_id: str
    rubric_version: int
    judge_model: str
    judge_model_version: str | None = None
    score: float | None = None
    raw_answer: str | None = None
    parse_status: Literal["ok", "unparsed", "error"] = "ok"
    parse_error: str | None = None
    order: str | None = None
    other_trace_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    cache_key: str
    created_at: datetime = Field(default_factory=utcnow)


class Calibration(_Model):
    id: str
    rubric_id: str
    judge_model: str | None = None
    rubric_version: int | None = None
    group_key: dict[str, Any] = Field(default_factory=dict)
    n: int
    metrics: dict[str, Any] = Field(default_factory=dict)
    mapping: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class Export(_Model):
    """Which golden-set version and file fed which export (append-only)."""

    id: str
    golden_set: str
    version: int
    file_hash: str
    format: str
    path: str
    item_count: int = 0
    feedback_ids: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    output_sha256: str | None = None


class Alert(_Model):
    id: str
    configuration: dict[str, Any]
    metric: str
    window: str
    baseline: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)


class PromptEvent(_Model):
    """Promotion, rollback or staged rollout of a prompt version (append-only)."""

    id: str
    prompt_name: str
    prompt_version: int
    action: Literal["promote", "rollback", "rollout"]
    share: float | None = None
    actor: str
    reason: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
