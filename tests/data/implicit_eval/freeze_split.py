"""Freeze the train/test split of the implicit-signal evaluation set (run once, when the writers' files land).

    python tests/data/implicit_eval/freeze_split.py

A session goes to ``test`` when the first byte of sha256(session_id) is below 128, so the split does not depend
on file order or on the detectors. Users with several sessions keep them on one side (the hash is of the
user_id when the user has more than one session), so a detector cannot learn a user's wording from train.
The split is written once and committed; ``split.json`` records the hashes of both files, and a test checks them,
so a later edit of the test split is visible.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    sessions = []
    for part in sorted((HERE / "raw").glob("part_*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                sessions.append(json.loads(line))
    per_user = Counter(s["user_id"] for s in sessions)
    out: dict[str, list[str]] = {"train": [], "test": []}
    for s in sessions:
        key = s["user_id"] if per_user[s["user_id"]] > 1 else s["session_id"]
        side = "test" if hashlib.sha256(key.encode()).digest()[0] < 128 else "train"
        out[side].append(json.dumps(s, ensure_ascii=False))
    meta = {}
    for side, lines in out.items():
        text = "\n".join(lines) + "\n"
        (HERE / f"{side}.jsonl").write_text(text, encoding="utf-8")
        meta[side] = {"sessions": len(lines), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    (HERE / "split.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(meta)


if __name__ == "__main__":
    main()
