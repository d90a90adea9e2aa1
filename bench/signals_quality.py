"""Precision and recall of the implicit-signal detectors on labelled sessions nobody here tuned them on.

    python bench/signals_quality.py                       # test split + EURTAD (strict and with-clarify)
    python bench/signals_quality.py --data eurtad --detector learned --detector lexical
    python bench/signals_quality.py --direct              # detectors on traces built directly, no wrapper
    python bench/signals_quality.py --data train --errors # error analysis: only ever on the train split

Data sets (``--data``, repeatable): ``test`` (our frozen test split, ``tests/data/implicit_eval/test.jsonl``),
``eurtad`` and ``eurtad-clarify`` (real people and human labels, ``tests/data/implicit_real/``; only
repeat_ask and pushback are annotated there, so only those are scored), ``train``, or a JSONL path.
Simulated sessions are not used here.

Replay (the default) sends every session through the real wrapper: ``workbench.open(clock=...)`` with the
session's own timestamps, a ``httpx.MockTransport`` provider answering with the session's assistant
text, a regeneration re-sending the previous request without the previous answer. Then the real
``mine`` runs over the store per detector family, and the stored feedback rows are scored. ``--direct``
skips the wrapper and store and runs ``detect_batch`` on traces built from the same requests; the
two must agree (``tests/test_signals_quality.py``).

Per detector and data set: precision and recall per signal with 95% Wilson intervals, and abandonment
per session (a session counts when its failed last answer is flagged). Targets: P >= .90 and R >= .80
for repeat_ask, pushback and positive; abandonment P >= .80 at R >= .60.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402
from workbench.feedback import SignalConfig  # noqa: E402
from workbench.feedback.mining import mine  # noqa: E402

try:
    from workbench.feedback.signals import detect_batch  # noqa: E402
except ImportError:  # an older workbench (the BEFORE figures): one session at a time
    from workbench.feedback.signals import detect  # noqa: E402

    def detect_batch(sessions, config, now, encoder=None):  # type: ignore[no-untyped-def]  # noqa: ANN001
        return [f for s in sessions for f in detect(s, config, now)]


from workbench.feedback.signals.dataset import calls, load_sessions, sessions_start, traces, truth  # noqa: E402

DATA = {
    "test": ROOT / "tests/data/implicit_eval/test.jsonl",
    "train": ROOT / "tests/data/implicit_eval/train.jsonl",
    "eurtad": ROOT / "tests/data/implicit_real/implicit_real_dev.jsonl",
    "eurtad-clarify": ROOT / "tests/data/implicit_real/implicit_real_with_clarify_dev.jsonl",
}
ANNOTATED = {"eurtad": ("repeat_ask", "pushback"), "eurtad-clarify": ("repeat_ask", "pushback")}
ALL = ("repeat_ask", "regenerate", "pushback", "positive")
TARGETS = {"repeat_ask": (0.9, 0.8), "pushback": (0.9, 0.8), "positive": (0.9, 0.8), "abandon": (0.8, 0.6)}
Key = tuple[str, int]  # (session id, turn index of the answer)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of k successes in n trials ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    def cells(self) -> str:
        p_lo, p_hi = wilson(self.tp, self.tp + self.fp)
        r_lo, r_hi = wilson(self.tp, self.tp + self.fn)
        return (
            f"P {self.precision:.3f} [{p_lo:.2f}, {p_hi:.2f}]  R {self.recall:.3f} [{r_lo:.2f}, {r_hi:.2f}]  "
            f"(TP {self.tp}, FP {self.fp}, FN {self.fn})"
        )


@dataclass
class Predicted:
    """What a detector family found: signal -> answer keys, and the sessions it called abandoned."""

    signals: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    abandoned: set[str] = field(default_factory=set)
    evidence: dict[tuple[str, Key], Any] = field(default_factory=dict)


def config_for(detector: str) -> SignalConfig:
    if "detector" not in SignalConfig.model_fields:  # an older workbench (the BEFORE figures)
        return SignalConfig()
    return SignalConfig(detector=detector)  # type: ignore[arg-type]


def _add(pred: Predicted, signal: str, key: Key, last: dict[str, int], evidence: Any) -> None:
    if signal == "abandon":  # any abandonment flagged in a session flags the session (labels: last answer)
        pred.abandoned.add(key[0])
        return
    pred.signals[signal].add(key)
    pred.evidence[(signal, key)] = evidence


def run_direct(
    sessions: Sequence[dict[str, Any]], detectors: Iterable[str], encoder: Any = None
) -> dict[str, Predicted]:
    """Detectors on traces built straight from the sessions' requests (no wrapper, no store)."""
    starts = list(sessions_start(len(sessions)))
    built = [traces(s, start) for s, start in zip(sessions, starts, strict=True)]
    where = {t.id: (str(s["session_id"]), k) for s, ts in zip(sessions, built, strict=True) for k, t in enumerate(ts)}
    last = {str(s["session_id"]): len(s["turns"]) - 1 for s in sessions}
    now = starts[-1] + timedelta(days=1)
    out = {}
    for detector in detectors:
        pred = Predicted()
        for finding in detect_batch(
            built, config_for(detector), now, encoder=encoder if detector == "embedding" else None
        ):
            _add(pred, finding.signal, where[finding.trace_id], last, finding.evidence)
        out[detector] = pred
    return out


class _Provider:
    """OpenAI-compatible transport answering with the queued assistant text."""

    def __init__(self) -> None:
        self.answer = ""
        self.calls = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return httpx.Response(
            200,
            json={
                "id": f"chatcmpl-bench{self.calls:07d}",
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": "gpt-4o-mini-2024-07-18",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": self.answer}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            },
        )


class _Clock:
    at = 0.0

    def __call__(self) -> float:
        return self.at


def replay(sessions: Sequence[dict[str, Any]], directory: Path) -> tuple[Any, dict[str, Key], Any]:
    """Send every session through a wrapped client into a fresh store: (workbench, trace id -> key, now)."""
    from openai import OpenAI

    clock, provider = _Clock(), _Provider()
    wb = workbench.open(str(directory / "wb.db"), clock=clock, background_ingest=False)
    client = wb.wrap(
        OpenAI(
            api_key="sk-bench",
            base_url="https://api.openai.example/v1",
            max_retries=0,
            http_client=httpx.Client(transport=httpx.MockTransport(provider.handler)),
        )
    )
    where: dict[str, Key] = {}
    starts = list(sessions_start(len(sessions)))
    for session, start in zip(sessions, starts, strict=True):
        sid = str(session["session_id"])
        context = {"session_id": sid, **({"user_id": session["user_id"]} if session.get("user_id") else {})}
        for call in calls(session):
            provider.answer = call.answer
            clock.at = (start + timedelta(seconds=call.t)).timestamp()
            resp = client.chat.completions.create(model="gpt-4o-mini", messages=call.messages, workbench=context)
            where[workbench.trace_id(resp)] = (sid, call.index)
    wb.flush()
    return wb, where, starts[-1] + timedelta(days=1)


def run_replay(sessions: Sequence[dict[str, Any]], detectors: Iterable[str]) -> dict[str, Predicted]:
    """Replay through the wrapper, then the real ``mine`` per detector family; score the stored rows."""
    from workbench.store import feedback as feedback_rows

    last = {str(s["session_id"]): len(s["turns"]) - 1 for s in sessions}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        wb, where, now = replay(sessions, Path(tmp))
        try:
            for detector in detectors:
                config = config_for(detector)
                mine(wb.store, now=now, config=config, workers=0)
                from workbench.feedback.signals import detector_sources

                sources = set(detector_sources(config))
                pred = Predicted()
                with wb.store.read() as conn:
                    rows = feedback_rows.list_feedback(conn, kind="implicit")
                for row in rows:
                    if row.source in sources and row.trace_id in where:
                        _add(pred, row.signal, where[row.trace_id], last, row.evidence)
                out[detector] = pred
        finally:
            wb.close()
    return out


def score(
    sessions: Sequence[dict[str, Any]], pred: Predicted, signals: Sequence[str]
) -> tuple[dict[str, Score], Score | None]:
    scores = {s: Score() for s in signals}
    for session in sessions:
        sid, told = str(session["session_id"]), truth(session)
        for signal in signals:
            found = {k for (s, k) in pred.signals[signal] if s == sid}
            real = told.signals[signal]
            scores[signal].tp += len(found & real)
            scores[signal].fp += len(found - real)
            scores[signal].fn += len(real - found)
    if signals != ALL:
        return scores, None
    abandon = Score()
    for session in sessions:
        flagged = str(session["session_id"]) in pred.abandoned
        real = session.get("abandoned_after_turn") is not None
        abandon.tp += flagged and real
        abandon.fp += flagged and not real
        abandon.fn += real and not flagged
    return scores, abandon


def report(name: str, detector: str, sessions: Sequence[dict[str, Any]], pred: Predicted, mode: str) -> list[str]:
    signals = ANNOTATED.get(name, ALL)
    scores, abandon = score(sessions, pred, signals)
    turns = sum(len(s["turns"]) for s in sessions)
    lines = [f"{name} ({len(sessions)} sessions, {turns} turns) -- detector {detector}, {mode}"]
    rows = list(scores.items()) + ([("abandon", abandon)] if abandon is not None else [])
    for signal, s in rows:
        target = TARGETS.get(signal)
        mark = ""
        if target:
            ok = s.precision >= target[0] and s.recall >= target[1]
            mark = f"  target P>={target[0]} R>={target[1]}: {'met' if ok else 'MISSED'}"
        per = " per session" if signal == "abandon" else ""
        lines.append(f"  {signal:<11} {s.cells()}{per}{mark}")
    return lines


def errors(name: str, sessions: Sequence[dict[str, Any]], pred: Predicted) -> None:
    if name == "test":
        raise SystemExit("error: --errors is for the train split only (never look at the test split's errors)")
    for session in sessions:
        sid, told = str(session["session_id"]), truth(session)
        for signal in ANNOTATED.get(name, ALL):
            found = {k for (s, k) in pred.signals[signal] if s == sid}
            for kind, keys in (("FP", found - told.signals[signal]), ("FN", told.signals[signal] - found)):
                for _, k in sorted(keys):
                    turns = session["turns"]
                    reply = turns[k + 1]["user"] if k + 1 < len(turns) else ""
                    print(
                        f"{kind} {signal:<10} {sid}:{k} {turns[k]['user'][:60]!r} -> "
                        f"{turns[k]['assistant'][-60:]!r} -> {reply[:100]!r}"
                    )
                    if kind == "FP":
                        print(f"     {pred.evidence.get((signal, (sid, k)))}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", help="test, eurtad, eurtad-clarify, train, or a JSONL path")
    parser.add_argument("--detector", action="append", help="lexical, learned, embedding (default: all available)")
    parser.add_argument("--direct", action="store_true", help="score detectors directly, without the wrapper")
    parser.add_argument("--errors", action="store_true", help="list false positives and negatives (not on test)")
    parser.add_argument("--limit", type=int, help="only the first N sessions of each data set")
    args = parser.parse_args(argv)
    names = args.data or ["test", "eurtad", "eurtad-clarify"]
    if args.detector:
        detectors = args.detector
    elif "detector" not in SignalConfig.model_fields:
        detectors = ["lexical"]
    else:
        from workbench.feedback.signals import embeddings_available

        detectors = ["lexical", "learned"] + (["embedding"] if embeddings_available() else [])
    encoder = None
    if "embedding" in detectors:
        from workbench.feedback.signals import load_encoder

        encoder = load_encoder()
    for name in names:
        path = DATA.get(name, Path(name))
        if not path.exists():
            print(f"{name}: no file at {path} (skipped)")
            continue
        sessions = load_sessions(path)[: args.limit]
        mode = "direct" if args.direct else "replayed through the wrapper + mine"
        found = run_direct(sessions, detectors, encoder) if args.direct else run_replay(sessions, detectors)
        for detector, pred in found.items():
            print("\n".join(report(name, detector, sessions, pred, mode)), flush=True)
            if args.errors:
                errors(name, sessions, pred)
    return 0


if __name__ == "__main__":
    sys.exit(main())
