"""The current schema, for queries. Migrations (store/migrations/) hold the frozen history.

A test checks that a freshly migrated store has exactly these tables and columns.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from .types import JSONText, UTCDateTime

__all__ = [
    "alerts",
    "calibrations",
    "candidate_search",
    "candidates",
    "decisions",
    "exports",
    "feedback",
    "judge_scores",
    "metadata",
    "migrations_table",
    "mining_state",
    "prompt_events",
    "prompts",
    "spool_offsets",
    "traces",
]

metadata = MetaData()
ID = String(26)

migrations_table = Table(
    "wb_migrations",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("applied_at", UTCDateTime(), nullable=False),
)

prompts = Table(
    "prompts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("template", Text, nullable=False),
    Column("variables", JSONText(), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("name", "version", name="uq_prompts_name_version"),
    UniqueConstraint("name", "content_hash", name="uq_prompts_name_hash"),
)

traces = Table(
    "traces",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("operation", String(20), nullable=False),
    Column("provider_response_id", String(200)),
    Column("session_id", String(200)),
    Column("user_id", String(200)),
    Column("parent_id", ID),
    Column("prompt_id", ID),
    Column("prompt_name", String(200)),
    Column("prompt_version", Integer),
    Column("prompt_hash", String(64)),
    Column("variables", JSONText()),
    Column("variant", String(200)),
    Column("model_requested", String(200)),
    Column("model_resolved", String(200)),
    Column("system_fingerprint", String(200)),
    Column("base_url", String(500)),
    Column("params", JSONText()),
    Column("input", JSONText()),
    Column("output_text", Text),
    Column("tool_calls", JSONText()),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("total_tokens", Integer),
    Column("latency_ms", Float),
    Column("ttft_ms", Float),
    Column("stream", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("error_type", String(200)),
    Column("error_message", Text),
    Column("http_status", Integer),
    Column("tags", JSONText()),
    Column("metadata", JSONText()),
    Index("ix_traces_created_at", "created_at"),
    Index("ix_traces_session", "session_id", "created_at"),
    Index("ix_traces_user", "user_id"),
    Index("ix_traces_response_id", "provider_response_id"),
    Index("ix_traces_prompt", "prompt_name", "prompt_version"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", ID, primary_key=True),
    Column("trace_id", ID, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("signal", String(40), nullable=False),
    Column("value", Float),
    Column("text", Text),
    Column("strength", Float, nullable=False),
    Column("source", String(200), nullable=False),
    Column("user_id", String(200)),
    Column("evidence", JSONText()),
    Column("metadata", JSONText()),
    Column("idempotency_key", String(300), unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_feedback_trace", "trace_id"),
    Index("ix_feedback_signal", "signal", "created_at"),
    Index("ix_feedback_user", "user_id"),
)

candidates = Table(
    "candidates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("cluster_key", String(100), nullable=False, unique=True),
    Column("representative_trace_id", ID, nullable=False),
    Column("member_trace_ids", JSONText(), nullable=False),
    Column("feedback_ids", JSONText(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("input", JSONText(), nullable=False),
    Column("output_text", Text),
    Column("expected_output", Text),
    Column("signals", JSONText(), nullable=False),
    Column("primary_signal", String(40)),
    Column("users", Integer, nullable=False),
    Column("priority", Float, nullable=False),
    Column("status", String(20), nullable=False),
    Column("labels", JSONText(), nullable=False),
    Column("notes", Text),
    Column("prompt_name", String(200)),
    Column("prompt_version", Integer),
    Column("model_resolved", String(200)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_candidates_queue", "status", "priority"),
    Index("ix_candidates_priority", "priority"),
    # 0003; the queue-order index sorts priority descending (created in SQL there)
    Index("ix_candidates_signal", "primary_signal", "priority"),
    Index("ix_candidates_prompt", "prompt_name", "prompt_version", "priority"),
    Index("ix_candidates_model", "model_resolved", "priority"),
)

# 0005: one search document per candidate, maintained by triggers on candidates (see that migration);
# status and priority are copies so a search filters and orders its matches here. SQLite also has the
# FTS5 tables candidate_search_trigram and candidate_search_words over ``doc`` (not SQLAlchemy tables).
candidate_search = Table(
    "candidate_search",
    metadata,
    Column("doc_id", Integer, primary_key=True),
    Column("candidate_id", ID, nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("priority", Float, nullable=False),
    Column("doc", Text, nullable=False),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("candidate_id", ID, nullable=False),
    Column("action", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("before", JSONText()),
    Column("after", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_decisions_candidate", "candidate_id", "created_at"),
)

judge_scores = Table(
    "judge_scores",
    metadata,
    Column("id", ID, primary_key=True),
    Column("trace_id", ID, nullable=False),
    Column("rubric_id", String(200), nullable=False),
    Column("rubric_version", Integer, nullable=False),
    Column("judge_model", String(200), nullable=False),
    Column("judge_model_version", String(200)),
    Column("score", Float),
    Column("raw_answer", Text),
    Column("parse_status", String(20), nullable=False),
    Column("parse_error", Text),
    Column("order", String(10)),
    Column("other_trace_id", ID),
    Column("prompt_tokens", Integer),
    Column("completion_tokens", Integer),
    Column("cost", Float),
    Column("cache_key", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_judge_scores_trace", "trace_id", "rubric_id"),
    Index("ix_judge_scores_cache", "cache_key"),
    Index("ix_judge_scores_rubric", "rubric_id", "rubric_version", "judge_model"),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("rubric_id", String(200), nullable=False),
    Column("judge_model", String(200)),
    Column("rubric_version", Integer),
    Column("group_key", JSONText()),
    Column("n", Integer, nullable=False),
    Column("metrics", JSONText()),
    Column("mapping", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),
)

exports = Table(
    "exports",
    metadata,
    Column("id", ID, primary_key=True),
    Column("golden_set", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("file_hash", String(64), nullable=False),
    Column("format", String(40), nullable=False),
    Column("path", Text, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("feedback_ids", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("output_sha256", String(64)),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("configuration", JSONText(), nullable=False),
    Column("metric", String(100), nullable=False),
    Column("window", String(40), nullable=False),
    Column("baseline", String(40), nullable=False),
    Column("evidence", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),
)

prompt_events = Table(
    "prompt_events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("prompt_name", String(200), nullable=False),
    Column("prompt_version", Integer, nullable=False),
    Column("action", String(20), nullable=False),
    Column("share", Float),
    Column("actor", String(200), nullable=False),
    Column("reason", Text),
    Column("evidence", JSONText()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_prompt_events_name", "prompt_name", "created_at"),
)

mining_state = Table(
    "mining_state",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("watermark", UTCDateTime()),
    Column("details", JSONText()),
    Column("updated_at", UTCDateTime(), nullable=False),
)

spool_offsets = Table(
    "spool_offsets",
    metadata,
    Column("segment", String(200), primary_key=True),
    Column("offset", Integer, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
