"""Tamper check: does every ``vN.jsonl`` still hold exactly the lines its manifest entry hashed?

Each line is matched to the manifest by its sha256, then by the item id it names, so a report
says *which* line changed and how: modified (same id, different bytes, or a line that no longer
parses where an item used to be), added (a line the manifest never saw), removed (a manifest item
with no line), duplicated, or out of order. A manifest edited to match an edited file cannot be
caught from the files alone; the export log's file hashes are the outside anchor for that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from workbench.errors import GoldenSetError
from workbench.golden.items import line_sha256
from workbench.golden.manifest import VersionInfo
from workbench.golden.sets import load_manifest, resolve_version, set_dir

__all__ = ["Problem", "VerifyReport", "verify", "verify_file"]

_VERSION_FILE = re.compile(r"^v(\d+)\.jsonl$")


@dataclass(frozen=True)
class Problem:
    version: int | None
    kind: str  # modified, added, removed, duplicate, out_of_order, file_hash, missing_file, untracked, manifest
    message: str
    line: int | None = None
    item_id: str | None = None


@dataclass
class VerifyReport:
    name: str
    checked: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise ``GoldenSetError`` with the first problem if there are any (for the CLI)."""
        if self.problems:
            more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            raise GoldenSetError(f"golden set {self.name!r}: {self.problems[0].message}{more}")


def _line_id(line: bytes) -> str | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    item_id = value.get("id") if isinstance(value, dict) else None
    return item_id if isinstance(item_id, str) else None


def verify_file(path: Path, info: VersionInfo) -> list[Problem]:
    """Every difference between ``path`` and the manifest entry ``info``, line by line."""
    v = info.version
    where = f"{path.name}"
    if not path.is_file():
        return [Problem(v, "missing_file", f"{where}: file is missing")]
    problems: list[Problem] = []
    if info.item_count != len(info.items):
        problems.append(
            Problem(v, "manifest", f"{where}: manifest item_count {info.item_count} != {len(info.items)} item hashes")
        )
    data = path.read_bytes()
    if line_sha256(data) == info.file_sha256 and not problems:
        return []
    by_sha = {entry.sha256: position for position, entry in enumerate(info.items)}
    by_id = {entry.id: position for position, entry in enumerate(info.items)}
    matched: set[int] = set()
    unknown: list[tuple[int, str | None]] = []
    last_position = -1
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        position = by_sha.get(line_sha256(line))
        if position is None:
            item_id = _line_id(line)
            position = by_id.get(item_id) if item_id is not None else None
            if position is None:
                unknown.append((lineno, item_id))
                continue
            if position not in matched:
                problems.append(
                    Problem(v, "modified", f"{where}:{lineno}: item {item_id} was modified", lineno, item_id)
                )
        item_id = info.items[position].id
        if position in matched:
            problems.append(Problem(v, "duplicate", f"{where}:{lineno}: item {item_id} appears again", lineno, item_id))
            continue
        matched.add(position)
        if position < last_position:
            problems.append(
                Problem(v, "out_of_order", f"{where}:{lineno}: item {item_id} is out of order", lineno, item_id)
            )
        last_position = max(last_position, position)
    for lineno, item_id in unknown:
        # A line that no longer parses (or whose id was edited) where an unmatched item used to be
        # is that item, modified; anything else is an added line.
        position = lineno - 1
        if position < len(info.items) and position not in matched:
            matched.add(position)
            expected = info.items[position].id
            how = "no longer parses" if item_id is None else f"now has id {item_id}"
            problems.append(
                Problem(v, "modified", f"{where}:{lineno}: item {expected} was modified ({how})", lineno, expected)
            )
        else:
            label = f"item {item_id}" if item_id else "a line"
            problems.append(
                Problem(v, "added", f"{where}:{lineno}: {label} is not in the manifest (added)", lineno, item_id)
            )
    for position, entry in enumerate(info.items):
        if position not in matched:
            problems.append(
                Problem(
                    v, "removed", f"{where}: item {entry.id} (line {position + 1}) was removed", position + 1, entry.id
                )
            )
    if not problems and line_sha256(data) != info.file_sha256:
        problems.append(
            Problem(
                v,
                "file_hash",
                f"{where}: file hash does not match the manifest (line endings or final newline changed?)",
            )
        )
    problems.sort(key=lambda p: (p.line or 0, p.kind))
    return problems


def verify(root: str | Path, name: str, version: int | str | None = None) -> VerifyReport:
    """Check one version, or every version of the set when ``version`` is None."""
    manifest = load_manifest(root, name)
    directory = set_dir(root, name)
    infos = manifest.versions if version is None else [resolve_version(manifest, version)]
    report = VerifyReport(name=name)
    for info in infos:
        report.checked.append(info.version)
        report.problems.extend(verify_file(directory / info.file, info))
    if version is None:
        tracked = {info.file for info in manifest.versions}
        for path in sorted(directory.iterdir()):
            if _VERSION_FILE.match(path.name) and path.name not in tracked:
                report.problems.append(
                    Problem(None, "untracked", f"{path.name}: not in the manifest (left by an interrupted build?)")
                )
    return report
