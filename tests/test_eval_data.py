"""The implicit-signal evaluation set stays what was frozen, and keeps its own conventions.

A changed test split would make every reported figure incomparable with the last one, so its hash is pinned;
the structural rules of CONVENTIONS.md are checked so a labelling slip is caught before it skews a figure.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "implicit_eval"
SPLIT = json.loads((DATA / "split.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("side", ["train", "test"])
def test_split_files_are_the_frozen_ones(side: str) -> None:
    raw = (DATA / f"{side}.jsonl").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SPLIT[side]["sha256"]
    assert len(raw.decode("utf-8").splitlines()) == SPLIT[side]["sessions"]


# Extra sessions written for training only (never part of the frozen test split); same schema and conventions.
# Sessions written for training but not yet fitted on (pending/: folding them in means retraining the shipped
# weights); held to the same rules now so they are ready when they are used.
EXTRA = sorted(DATA.glob("train_extra_*.jsonl")) + sorted((DATA / "pending").glob("train_extra_*.jsonl"))


def _sessions() -> list[dict]:
    files = [DATA / f"{side}.jsonl" for side in ("train", "test")] + EXTRA
    return [json.loads(line) for path in files for line in path.open(encoding="utf-8")]


def test_no_session_or_user_on_both_sides() -> None:
    sides = {side: [json.loads(x) for x in (DATA / f"{side}.jsonl").open(encoding="utf-8")] for side in SPLIT}
    sides["train"] += [json.loads(x) for path in EXTRA for x in path.open(encoding="utf-8")]
    for key in ("session_id", "user_id"):
        train = [s[key] for s in sides["train"]]
        test = {s[key] for s in sides["test"]}
        assert not set(train) & test, key
    ids = [s["session_id"] for s in sides["train"]]
    assert len(ids) == len(set(ids)), "a training session id appears twice"


def test_sessions_follow_the_conventions() -> None:
    sessions = _sessions()
    assert len(sessions) >= 400
    assert len({s["lang"] for s in sessions}) >= 4
    for s in sessions:
        turns = s["turns"]
        assert not any(v for v in turns[0]["labels"].values()), s["session_id"]
        assert all(a["t"] <= b["t"] for a, b in itertools.pairwise(turns)), s["session_id"]
        for prev, turn in itertools.pairwise(turns):
            labels = turn["labels"]
            if labels["regenerate"]:
                assert turn["user"] == prev["user"], s["session_id"]
            if labels["correction_text"] is not None:
                assert labels["pushback"] and labels["correction_text"] in turn["user"], s["session_id"]
            assert not (labels["positive"] and labels["pushback"]), s["session_id"]
        assert s["abandoned_after_turn"] in (None, len(turns) - 1), s["session_id"]
