"""``golden_sets/NAME/manifest.json``: one file per set listing every version ever built.

Layout choice: a single manifest holding a list of version entries (oldest first) rather than
one manifest per version, so ``git log -p manifest.json`` is the set's history and a new build
appends one entry. Entries are never edited after they are written; each carries the sha256 of
its ``vN.jsonl`` and of every line in it, which is what ``verify`` checks.

An entry's ``file`` must be exactly ``v<version>.jsonl``: a manifest cannot point outside its set
(``../other/v1.jsonl``, ``/etc/passwd``, a symlink's name) or at another version's file; reading such
a manifest is a ``GoldenSetError`` (``verify`` exits 6). The manifest's ``name`` obeys the set-name rule.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workbench.errors import GoldenSetError
from workbench.golden.atomic import atomic_write_bytes
from workbench.models import utcnow

__all__ = ["MANIFEST_NAME", "SET_NAME", "ItemHash", "Manifest", "VersionInfo", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.json"
SCHEMA = 1
# A set name: one path component (always used with fullmatch: ``$`` would allow a final newline).
SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class ItemHash(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    sha256: str


class VersionInfo(BaseModel):
    """What one version holds and where its items came from."""

    model_config = ConfigDict(extra="forbid")

    version: int
    parent: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    file: str
    file_sha256: str
    item_count: int
    items: list[ItemHash]
    candidate_ids: list[str] = Field(default_factory=list)
    feedback_ids: list[str] = Field(default_factory=list)
    trace_ids: list[str] = Field(default_factory=list)
    decision_ids: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    rubric_ids: list[str] = Field(default_factory=list)
    tool_version: str
    source: str | None = None
    changes: dict[str, int] = Field(default_factory=dict)  # added/removed/changed vs parent

    @model_validator(mode="after")
    def _file_in_its_set(self) -> VersionInfo:
        if self.file != f"v{self.version}.jsonl":
            raise ValueError(f"file must be 'v{self.version}.jsonl' in the set's own directory, not {self.file!r}")
        return self


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    schema_version: int = SCHEMA
    versions: list[VersionInfo] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, name: str) -> str:
        if not SET_NAME.fullmatch(name):
            raise ValueError(f"set name {name!r} is not a plain name (letters, digits, '.', '_', '-')")
        return name

    @property
    def latest(self) -> VersionInfo | None:
        return self.versions[-1] if self.versions else None

    def get(self, version: int) -> VersionInfo | None:
        return next((v for v in self.versions if v.version == version), None)


def read_manifest(path: Path) -> Manifest:
    """Load a manifest; a malformed one is a ``GoldenSetError`` naming the file and field."""
    try:
        raw: Any = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise GoldenSetError(f"{path}: not valid JSON ({exc})") from None
    try:
        manifest = Manifest.model_validate(raw)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error.get("loc", ()))
        raise GoldenSetError(f"{path}: {where}: {error.get('msg')}") from None
    if manifest.schema_version > SCHEMA:
        raise GoldenSetError(f"{path}: schema_version {manifest.schema_version} is newer than this workbench")
    return manifest


def write_manifest(path: Path, manifest: Manifest) -> None:
    """Pretty-printed, keys sorted, trailing newline: written for people reading git diffs."""
    data = orjson.dumps(manifest.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    atomic_write_bytes(path, data + b"\n", error=GoldenSetError)
