"""Purge reaching the spool: after ``workbench purge --user U`` no copy of U's records stays in it.

The store is not the only place a captured call lives. Until its segment is finished, a record stays in
the spool file it was appended to, including the open segment of an app that is still running, and
records that could not be ingested sit in ``spool/quarantine/``. :func:`scrub_spool`, run after the
spool was ingested and the user's rows deleted:

- erases every segment's consumed prefix (``spool.erase_consumed``: records before the committed
  ingest offset are already in the store and never read again, so zeros there lose nothing). This
  erases every user's consumed records, not only U's: a record's bytes cannot be rewritten in place
  without breaking its checksum, and the store holds them all anyway;
- deletes quarantined files (``.bad`` with its ``.why``) that hold U's user id as a JSON field or any of
  U's texts (8+ characters, in the encodings a record uses). A quarantined record so damaged that
  neither is recognisable cannot be attributed to anyone and is left, which the report says.

It holds the spool's ingest lock throughout, so no ingester reads a segment while it is being erased.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ..store import Store
from ..store import traces as trace_rows
from .spool import erase_consumed, ingest_lock, list_segments, segment_key

__all__ = ["ScrubReport", "scrub_spool"]


@dataclass
class ScrubReport:
    segments: int = 0  # segments whose consumed prefix was erased
    bytes_erased: int = 0
    quarantine_removed: list[str] = field(default_factory=list)
    quarantine_kept: int = 0  # quarantined files left: nothing in them is the user's as far as can be told

    def line(self) -> str:
        return (
            f"spool: {self.bytes_erased:,} consumed bytes erased in {self.segments} segments; "
            f"{len(self.quarantine_removed)} quarantined files with the user's records deleted"
            + (f", {self.quarantine_kept} others kept" if self.quarantine_kept else "")
        )


def _needles(user_id: str, texts: Iterable[str]) -> list[bytes]:
    quoted = orjson.dumps(user_id)
    found = {b'"user_id":' + quoted, b'"user_id": ' + quoted}
    for text in texts:
        found.add(text.encode("utf-8", "surrogatepass"))
        found.add(orjson.dumps(text)[1:-1])  # how workbench writes it (UTF-8, JSON escapes)
        found.add(json.dumps(text)[1:-1].encode())  # how many providers write it (ASCII \\u escapes)
    return sorted(found, key=len, reverse=True)


def scrub_spool(store: Store, directory: Path, user_id: str, texts: Iterable[str] = ()) -> ScrubReport:
    """Erase consumed records and the user's quarantined records (module docstring); call after ingest."""
    report = ScrubReport()
    directory = Path(directory)
    if not directory.is_dir():
        return report
    needles = _needles(user_id, texts)
    with ingest_lock(directory):
        segments = list_segments(directory)
        with store.read() as conn:
            offsets = trace_rows.load_offsets(conn, [segment_key(p) for p in segments])
        for path in segments:
            offset = offsets.get(segment_key(path))
            if offset:
                erased = erase_consumed(path, offset)
                if erased:
                    report.segments += 1
                    report.bytes_erased += erased
        quarantine = directory / "quarantine"
        if quarantine.is_dir():
            files = sorted(p for p in quarantine.iterdir() if p.is_file())
            removed: set[Path] = set()
            for path in files:
                if path in removed:
                    continue
                data = path.read_bytes()
                if any(needle in data for needle in needles):
                    stem = path.name.rsplit(".", 1)[0]  # <segment>.<offset>: the .bad and its .why
                    for sibling in (p for p in files if p.name.rsplit(".", 1)[0] == stem):
                        sibling.unlink(missing_ok=True)
                        removed.add(sibling)
                        report.quarantine_removed.append(sibling.name)
            report.quarantine_kept = sum(1 for p in files if p not in removed and p.suffix == ".bad")
    return report
