"""0003: indexes for the triage queue's keyset pages and its filters (fast at a million candidates)."""

from __future__ import annotations

from sqlalchemy import Connection, text

NAME = "0003_queue_indexes"

INDEXES = {
    "ix_candidates_queue_order": "candidates (status, priority DESC, id)",
    "ix_candidates_signal": "candidates (primary_signal, priority)",
    "ix_candidates_prompt": "candidates (prompt_name, prompt_version, priority)",
    "ix_candidates_model": "candidates (model_resolved, priority)",
}


def upgrade(conn: Connection) -> None:
    for name, target in INDEXES.items():
        conn.execute(text(f"CREATE INDEX {name} ON {target}"))
