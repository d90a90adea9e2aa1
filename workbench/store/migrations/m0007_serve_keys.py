"""0007: project keys for `workbench serve` (stored hashed, with scopes) and the secret feedback tokens are
signed with (kept in the store so every app process and every serve process share it)."""

from __future__ import annotations

from sqlalchemy import Column, Connection, MetaData, String, Table, Text

from ..types import JSONText, UTCDateTime

NAME = "0007_serve_keys"


def upgrade(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "api_keys",
        metadata,
        Column("id", String(26), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("prefix", String(20), nullable=False),
        Column("key_hash", String(64), nullable=False, unique=True),
        Column("scopes", JSONText(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("revoked_at", UTCDateTime()),
    )
    Table(
        "signing_keys",
        metadata,
        Column("id", String(26), primary_key=True),
        Column("secret", Text, nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
    )
    metadata.create_all(conn)
