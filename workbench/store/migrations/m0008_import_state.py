"""0008: where each import (a JSONL file, a Langfuse project, an OTLP file) stopped, so an interrupted
import resumes there instead of re-reading from the start; written in the same transaction as the rows."""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, String, Table

from ..types import JSONText, UTCDateTime

NAME = "0008_import_state"


def upgrade(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "import_state",
        metadata,
        Column("source", String(500), primary_key=True),
        Column("state", JSONText(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    metadata.create_all(conn)
