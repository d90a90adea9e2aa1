"""Project keys (for `workbench serve`) and the secret feedback tokens are signed with.

A key is shown once when created (``wb_sk_`` + 43 random URL-safe characters) and stored only as its
SHA-256: keys are long random strings, so a fast hash is enough and a look-up is one indexed equality.
Revoking keeps the row (``revoked_at``) so listings show what existed. The signing secret lives in the
store so that an app process (``wb.feedback_token``) and every serve process agree without configuration.

The tables are defined here rather than in schema.py: they belong to serve alone (migration 0007).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, MetaData, String, Table, Text, select, update

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import utcnow
from .types import JSONText, UTCDateTime

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "ApiKey",
    "api_keys",
    "create_key",
    "find_key",
    "hash_key",
    "list_keys",
    "revoke_key",
    "signing_secrets",
]

KEY_PREFIX = "wb_sk_"
SCOPES = ("ingest", "feedback")

metadata = MetaData()
api_keys = Table(
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
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("id", String(26), primary_key=True),
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str  # the first characters, to recognise a key in listings
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _row(row: object) -> ApiKey:
    return ApiKey(
        row.id,  # type: ignore[attr-defined]
        row.name,  # type: ignore[attr-defined]
        row.prefix,  # type: ignore[attr-defined]
        tuple(row.scopes),  # type: ignore[attr-defined]
        row.created_at,  # type: ignore[attr-defined]
        row.revoked_at,  # type: ignore[attr-defined]
    )


def create_key(conn: Connection, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
    """A new key: returns its record and the secret (shown once; only its hash is stored)."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "\x00" in name:
        raise ValidationError("key name must be non-empty text of at most 200 characters")
    wanted = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValidationError(f"scopes must be some of {', '.join(SCOPES)}, not {', '.join(unknown) or 'none'}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(new_id(), name.strip(), secret[:10], wanted, utcnow(), None)
    conn.execute(
        api_keys.insert().values(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            key_hash=hash_key(secret),
            scopes=list(key.scopes),
            created_at=key.created_at,
        )
    )
    return key, secret


def find_key(conn: Connection, secret: str) -> ApiKey | None:
    """The key with this secret (revoked or not), or None."""
    row = conn.execute(select(api_keys).where(api_keys.c.key_hash == hash_key(secret))).first()
    return _row(row) if row is not None else None


def list_keys(conn: Connection, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(api_keys).order_by(api_keys.c.id)
    if not include_revoked:
        query = query.where(api_keys.c.revoked_at.is_(None))
    return [_row(r) for r in conn.execute(query)]


def revoke_key(conn: Connection, ref: str) -> ApiKey:
    """Revoke by id, name or prefix (a name or prefix must match exactly one active key)."""
    match = (api_keys.c.id == ref) | (api_keys.c.name == ref)
    if ref.startswith(KEY_PREFIX):
        match = match | (api_keys.c.prefix == ref[:10])
    rows = [_row(r) for r in conn.execute(select(api_keys).where(match))]
    active = [k for k in rows if k.active] or rows
    if not active:
        raise NotFoundError(f"no key with id, name or prefix {ref!r}")
    if len(active) > 1:
        raise ValidationError(f"{len(active)} keys are named {ref!r}; revoke one by its id")
    key = active[0]
    if key.active:
        now = utcnow()
        conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(revoked_at=now))
        key = ApiKey(key.id, key.name, key.prefix, key.scopes, key.created_at, now)
    return key


def signing_secrets(conn: Connection, *, create: bool = True) -> dict[str, bytes]:
    """Feedback-token signing secrets by id, newest last; one is created on first use."""
    rows = conn.execute(select(signing_keys).order_by(signing_keys.c.id)).all()
    if not rows and create:
        conn.execute(signing_keys.insert().values(id=new_id(), secret=secrets.token_hex(32), created_at=utcnow()))
        rows = conn.execute(select(signing_keys).order_by(signing_keys.c.id)).all()
    return {r.id: bytes.fromhex(r.secret) for r in rows}
