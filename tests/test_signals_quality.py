"""A session replayed through the real wrapper (``workbench.open(clock=...)``, real timestamps, the real
``mine``) is scored exactly as the detectors score it directly: the bench's two modes agree, on our own
labelled sessions and on EURTAD's real ones. Also the bench's arithmetic (Wilson intervals, scoring)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from workbench.feedback.signals.dataset import load_sessions

ROOT = Path(__file__).resolve().parents[1]


def _bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("signals_quality", ROOT / "bench" / "signals_quality.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["signals_quality"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("data", ["train", "eurtad"])
def test_replay_through_the_wrapper_scores_the_same_as_direct(data: str) -> None:
    bench = _bench()
    sessions = load_sessions(bench.DATA[data])[:40]
    detectors = ["lexical", "learned"]
    direct = bench.run_direct(sessions, detectors)
    replayed = bench.run_replay(sessions, detectors)
    for detector in detectors:
        d, r = direct[detector], replayed[detector]
        assert {s: v for s, v in d.signals.items() if v} == {s: v for s, v in r.signals.items() if v}, detector
        assert d.abandoned == r.abandoned, detector
    assert any(direct["learned"].signals.values())  # the sample is not trivially empty


def test_wilson_interval_and_scoring() -> None:
    bench = _bench()
    low, high = bench.wilson(8, 10)
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert bench.wilson(0, 0) == (0.0, 1.0)
    session = {
        "session_id": "s",
        "user_id": "u",
        "abandoned_after_turn": 1,
        "turns": [
            {"t": 0, "user": "a", "assistant": "b"},
            {"t": 5, "user": "c", "assistant": "d", "labels": {"pushback": True}},
        ],
    }
    pred = bench.Predicted()
    pred.signals["pushback"].add(("s", 0))
    pred.signals["repeat_ask"].add(("s", 0))
    scores, abandon = bench.score([session], pred, bench.ALL)
    assert (scores["pushback"].tp, scores["repeat_ask"].fp, scores["positive"].fn) == (1, 1, 0)
    assert abandon is not None and abandon.fn == 1 and abandon.tp == 0


def test_errors_are_never_listed_for_the_test_split() -> None:
    bench = _bench()
    with pytest.raises(SystemExit, match="train split only"):
        bench.errors("test", [], bench.Predicted())
