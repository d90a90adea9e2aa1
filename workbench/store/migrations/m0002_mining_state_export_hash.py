"""0002: where incremental mining got to; the exported file's own hash in the export log."""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, String, Table, text

from ..types import JSONText, UTCDateTime

NAME = "0002_mining_state_export_hash"


def upgrade(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "mining_state",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("watermark", UTCDateTime()),
        Column("details", JSONText()),
        Column("updated_at", UTCDateTime(), nullable=False),
    )
    metadata.create_all(conn)
    conn.execute(text("ALTER TABLE exports ADD COLUMN output_sha256 VARCHAR(64)"))
