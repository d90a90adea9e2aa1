"""Golden-set versions on disk: build, list, load, diff.

``ROOT/golden_sets/NAME/vN.jsonl`` holds one item per line (keys sorted, sorted by item id,
UTF-8, trailing newline) and ``manifest.json`` lists every version (see ``manifest.py``).
Versions are immutable: a build writes a new ``vN.jsonl`` and appends a manifest entry, and a
build whose items are byte-identical to the latest version writes nothing. Tamper checks live
in ``verify.py``; ``load_version`` refuses a file whose hash no longer matches its manifest.

Golden items hold (redacted) user text, so a set's directory is created 0700 and its files 0600
(``atomic.py``), whatever the umask; ``chmod`` them, or let git check them out, to share. A set name
is one path component of letters, digits, ``.``, ``_`` and ``-`` (no separators, no ``..``, no
trailing newline), and a manifest entry can only name a ``vN.jsonl`` in its own directory.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

from workbench.errors import GoldenSetError, NotFoundError, ValidationError
from workbench.golden.atomic import atomic_write_bytes
from workbench.golden.items import GoldenItem, canonical_line, coerce_items, line_sha256
from workbench.golden.manifest import (
    MANIFEST_NAME,
    SET_NAME,
    ItemHash,
    Manifest,
    VersionInfo,
    read_manifest,
    write_manifest,
)
from workbench.models import utcnow

__all__ = [
    "GOLDEN_DIR",
    "BuildResult",
    "ChangedItem",
    "GoldenVersion",
    "SetDiff",
    "SetSummary",
    "build_version",
    "diff",
    "diff_items",
    "find_item",
    "list_sets",
    "load_manifest",
    "load_version",
    "parse_ref",
    "resolve_version",
    "serialize_items",
    "set_dir",
]

GOLDEN_DIR = "golden_sets"
_NAME = SET_NAME
_VERSION = re.compile(r"^v?(\d+)$")


@dataclass(frozen=True)
class GoldenVersion:
    """One loaded version: its manifest entry and its items (sorted by id)."""

    name: str
    info: VersionInfo
    items: list[GoldenItem]
    path: Path

    @property
    def version(self) -> int:
        return self.info.version

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.info.version}"


@dataclass(frozen=True)
class BuildResult:
    name: str
    version: int
    created: bool  # False: items identical to the latest version, nothing written
    path: Path
    info: VersionInfo


@dataclass(frozen=True)
class SetSummary:
    name: str
    versions: int
    latest: int
    item_count: int
    created_at: datetime


@dataclass(frozen=True)
class ChangedItem:
    id: str
    before: GoldenItem
    after: GoldenItem
    fields: list[str]  # top-level fields (and provenance.* subfields) that differ


@dataclass
class SetDiff:
    added: list[GoldenItem] = field(default_factory=list)
    removed: list[GoldenItem] = field(default_factory=list)
    changed: list[ChangedItem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed), "changed": len(self.changed)}


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(
            f"golden set name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, not starting with '.')"
        )
    return name


def set_dir(root: str | Path, name: str) -> Path:
    return Path(root) / GOLDEN_DIR / check_name(name)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME``, ``NAME@vN``, ``NAME@N`` or ``NAME@latest`` -> (name, version or None for latest)."""
    name, _, version = ref.partition("@")
    check_name(name)
    if not version or version == "latest":
        return name, None
    match = _VERSION.fullmatch(version)
    if not match or int(match.group(1)) < 1:
        raise ValidationError(f"golden set ref {ref!r}: version must look like v3 or 3")
    return name, int(match.group(1))


def serialize_items(items: Iterable[GoldenItem]) -> tuple[bytes, list[ItemHash]]:
    """File bytes (sorted by id, one canonical line each) and the per-line hashes."""
    ordered = sorted(items, key=lambda item: item.id)
    lines = [canonical_line(item) for item in ordered]
    hashes = [ItemHash(id=item.id, sha256=line_sha256(line)) for item, line in zip(ordered, lines, strict=True)]
    data = b"".join(line + b"\n" for line in lines)
    return data, hashes


def load_manifest(root: str | Path, name: str) -> Manifest:
    path = set_dir(root, name) / MANIFEST_NAME
    if not path.is_file():
        raise NotFoundError(f"golden set {name!r} not found (no {path})")
    manifest = read_manifest(path)
    if manifest.name != name:
        raise GoldenSetError(f"{path}: manifest names set {manifest.name!r}, expected {name!r}")
    return manifest


def resolve_version(manifest: Manifest, version: int | str | None) -> VersionInfo:
    if isinstance(version, str):
        version = parse_ref(f"{manifest.name}@{version}")[1]
    info = manifest.latest if version is None else manifest.get(version)
    if info is None:
        have = ", ".join(f"v{v.version}" for v in manifest.versions) or "none"
        wanted = "any version" if version is None else f"v{version}"
        raise NotFoundError(f"golden set {manifest.name!r} has no {wanted} (versions: {have})")
    return info


def _parse_lines(path: Path, data: bytes) -> list[GoldenItem]:
    items = []
    for lineno, line in enumerate(data.splitlines(), start=1):
        try:
            items.append(GoldenItem.model_validate_json(line))
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error.get("loc", ()))
            msg = str(error.get("msg")).removeprefix("Value error, ")
            raise GoldenSetError(f"{path}:{lineno}: {where + ': ' if where else ''}{msg}") from None
    return items


def load_version(root: str | Path, name: str, version: int | str | None = None, *, check: bool = True) -> GoldenVersion:
    """Load one version (latest if ``version`` is None); ``check`` refuses a tampered file."""
    manifest = load_manifest(root, name)
    info = resolve_version(manifest, version)
    path = set_dir(root, name) / info.file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise GoldenSetError(f"golden set {name!r} v{info.version}: {path} is missing") from None
    if check and line_sha256(data) != info.file_sha256:
        raise GoldenSetError(f"{path}: content does not match manifest hash; run `workbench golden verify {name}`")
    return GoldenVersion(name=name, info=info, items=_parse_lines(path, data), path=path)


def list_sets(root: str | Path) -> list[SetSummary]:
    """Every set under ``ROOT/golden_sets`` that has at least one version, by name."""
    base = Path(root) / GOLDEN_DIR
    summaries = []
    for directory in sorted(base.iterdir()) if base.is_dir() else []:
        if not (directory / MANIFEST_NAME).is_file() or not _NAME.fullmatch(directory.name):
            continue
        manifest = load_manifest(root, directory.name)
        if latest := manifest.latest:
            summaries.append(
                SetSummary(directory.name, len(manifest.versions), latest.version, latest.item_count, latest.created_at)
            )
    return summaries


def find_item(version: GoldenVersion, item_id: str) -> GoldenItem:
    """An item by id or unique id prefix (at least 4 characters)."""
    if len(item_id) < 4:
        raise ValidationError(f"item id {item_id!r}: give at least 4 characters")
    matches = [item for item in version.items if item.id.startswith(item_id)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(f"{version.ref}: no item {item_id!r}")
    raise ValidationError(f"{version.ref}: item prefix {item_id!r} is ambiguous ({len(matches)} items)")


def _changed_fields(before: GoldenItem, after: GoldenItem) -> list[str]:
    a, b = before.model_dump(mode="json"), after.model_dump(mode="json")
    fields = [key for key in sorted(a) if key != "provenance" and a[key] != b[key]]
    fields += [f"provenance.{key}" for key in sorted(a["provenance"]) if a["provenance"][key] != b["provenance"][key]]
    return fields


def diff_items(before: Iterable[GoldenItem], after: Iterable[GoldenItem]) -> SetDiff:
    """Added, removed and changed items (same id, different content), each sorted by id."""
    old = {item.id: item for item in before}
    new = {item.id: item for item in after}
    result = SetDiff(
        added=[new[i] for i in sorted(new.keys() - old.keys())],
        removed=[old[i] for i in sorted(old.keys() - new.keys())],
    )
    for item_id in sorted(old.keys() & new.keys()):
        if canonical_line(old[item_id]) != canonical_line(new[item_id]):
            result.changed.append(
                ChangedItem(item_id, old[item_id], new[item_id], _changed_fields(old[item_id], new[item_id]))
            )
    return result


def diff(root: str | Path, name: str, version_a: int | str, version_b: int | str) -> SetDiff:
    """What changed from ``version_a`` to ``version_b`` of one set."""
    return diff_items(load_version(root, name, version_a).items, load_version(root, name, version_b).items)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialize builds of one set (flock on the directory itself, so no lock file is left)."""
    try:
        import fcntl
    except ImportError:  # Windows: one writer at a time is the user's job
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _union(items: list[GoldenItem], attr: str) -> list[str]:
    values: set[str] = set()
    for item in items:
        value = getattr(item.provenance, attr)
        if isinstance(value, list):
            values.update(value)
        elif value:
            values.add(value)
    return sorted(values)


def build_version(
    root: str | Path,
    name: str,
    items: Iterable[GoldenItem | Mapping[str, Any]],
    *,
    tool_version: str,
    base_version: int | None = None,
    source: str | None = None,
    created_at: datetime | None = None,
) -> BuildResult:
    """Write ``vN.jsonl`` and its manifest entry, unless the items equal the latest version's.

    ``base_version`` carries that version's items forward and lets ``items`` add to or replace
    them (same id = replaced), which is what ``golden build --since vN`` needs.
    """
    new_items = coerce_items(items)
    directory = set_dir(root, name)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise GoldenSetError(f"cannot create {directory}: {exc.strerror or exc}") from exc
    with _locked(directory):
        manifest_path = directory / MANIFEST_NAME
        manifest = read_manifest(manifest_path) if manifest_path.is_file() else Manifest(name=name)
        merged: dict[str, GoldenItem] = {}
        if base_version is not None:
            merged = {item.id: item for item in load_version(root, name, base_version).items}
        seen: dict[str, int] = {}
        for position, item in enumerate(new_items):
            if item.id in seen:
                raise GoldenSetError(
                    f"golden set {name!r}: items {seen[item.id]} and {position} have the same input (id {item.id})"
                )
            seen[item.id] = position
            merged[item.id] = item
        if not merged:
            raise GoldenSetError(f"golden set {name!r}: no items to build")
        data, hashes = serialize_items(merged.values())
        file_sha = line_sha256(data)
        latest = manifest.latest
        if latest is not None and latest.file_sha256 == file_sha:
            return BuildResult(name, latest.version, False, directory / latest.file, latest)
        number = latest.version + 1 if latest else 1
        ordered = sorted(merged.values(), key=lambda item: item.id)
        parent = base_version if base_version is not None else (latest.version if latest else None)
        changes = {}
        if parent is not None:
            changes = diff_items(load_version(root, name, parent).items, ordered).counts
        info = VersionInfo(
            version=number,
            parent=parent,
            created_at=created_at or utcnow(),
            file=f"v{number}.jsonl",
            file_sha256=file_sha,
            item_count=len(ordered),
            items=hashes,
            candidate_ids=_union(ordered, "candidate_id"),
            feedback_ids=_union(ordered, "feedback_ids"),
            trace_ids=_union(ordered, "trace_ids"),
            decision_ids=_union(ordered, "decision_ids"),
            prompts=_union(ordered, "prompt"),
            models=_union(ordered, "model"),
            rubric_ids=_union(ordered, "rubric_ids"),
            tool_version=tool_version,
            source=source,
            changes=changes,
        )
        # An untracked vN.jsonl can only be left by a build that crashed before its manifest
        # write; it was never a version, so replacing it is safe.
        atomic_write_bytes(directory / info.file, data, error=GoldenSetError)
        manifest.versions.append(info)
        write_manifest(manifest_path, manifest)
    return BuildResult(name, number, True, directory / info.file, info)
