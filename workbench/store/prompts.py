"""Prompt registry rows: same name + same content hash is the same version; new content, next version."""

from __future__ import annotations

import hashlib
import string

from sqlalchemy import Connection, func, select

from ..errors import NotFoundError, ValidationError
from ..ids import new_id
from ..models import Prompt, utcnow
from .schema import prompts

__all__ = ["content_hash", "get_prompt", "list_prompts", "register_prompt", "template_variables"]


def content_hash(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8")).hexdigest()


def template_variables(template: str) -> list[str]:
    """The ``{names}`` a str.format template uses, in first-use order."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as exc:
        raise ValidationError(f"prompt template is not a valid format string: {exc}") from exc
    seen: dict[str, None] = {}
    for name in fields:
        seen.setdefault(name.split(".")[0].split("[")[0], None)
    return list(seen)


def _row_to_prompt(row: object) -> Prompt:
    return Prompt.model_validate(dict(row._mapping))  # type: ignore[attr-defined]


def register_prompt(conn: Connection, name: str, template: str) -> Prompt:
    """Register (or find) a prompt version; call inside a write transaction."""
    if not name or not name.strip():
        raise ValidationError("prompt name must not be empty")
    if "@" in name:
        raise ValidationError(f"prompt name {name!r} must not contain '@' (it separates name and version)")
    digest = content_hash(template)
    existing = conn.execute(select(prompts).where(prompts.c.name == name, prompts.c.content_hash == digest)).first()
    if existing is not None:
        return _row_to_prompt(existing)
    latest = conn.execute(select(func.max(prompts.c.version)).where(prompts.c.name == name)).scalar()
    prompt = Prompt(
        id=new_id(),
        name=name,
        version=(latest or 0) + 1,
        template=template,
        variables=template_variables(template),
        content_hash=digest,
        created_at=utcnow(),
    )
    conn.execute(prompts.insert().values(**prompt.model_dump()))
    return prompt


def get_prompt(conn: Connection, name: str, version: int | None = None) -> Prompt:
    """A prompt version; without a version, the latest."""
    query = select(prompts).where(prompts.c.name == name)
    query = (
        query.where(prompts.c.version == version) if version is not None else query.order_by(prompts.c.version.desc())
    )
    row = conn.execute(query.limit(1)).first()
    if row is None:
        what = f"{name}@{version}" if version is not None else name
        raise NotFoundError(f"no prompt {what!r}")
    return _row_to_prompt(row)


def list_prompts(conn: Connection, name: str | None = None) -> list[Prompt]:
    query = select(prompts).order_by(prompts.c.name, prompts.c.version)
    if name is not None:
        query = query.where(prompts.c.name == name)
    return [_row_to_prompt(row) for row in conn.execute(query)]
