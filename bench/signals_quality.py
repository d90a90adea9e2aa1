"""Precision and recall of the implicit-signal detectors on labelled simulated sessions.

    python bench/signals_quality.py [--sessions 400] [--seed 20250303] [--errors] [--speed]
                                    [--embeddings] [--real shared/data/oasst_en_100_trees.jsonl]

The sessions (workbench.feedback.simulate) include hard negatives for every detector: refinements
and look-alike follow-ups for repeat_ask, retries after failed calls and late resends for regenerate,
"no problem, thanks" / "what's wrong with my code?" / quoted answers for pushback, "thanks, but..." for
positive, and in-progress sessions for abandon. Targets: precision >= 0.9 and recall >= 0.8 for
repeat_ask, regenerate and pushback. ``--speed`` also times pure detection (traces per second).
``--embeddings`` adds the MiniLM paraphrase path (needs the embeddings extra). ``--real`` runs the
detectors over real Open-Assistant conversations (every root-to-leaf path as one session) and lists
what fires: those follow-ups are unlabelled, so read the list -- most real follow-ups are new
questions, so repeat-ask firings there are mostly false positives.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from workbench.feedback import SignalConfig, detect
from workbench.feedback.signals import load_encoder
from workbench.feedback.simulate import BASE_TIME, ChatBuilder, evaluate, generate_sessions

TARGETS = {"repeat_ask": (0.9, 0.8), "regenerate": (0.9, 0.8), "pushback": (0.9, 0.8)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20250303)
    parser.add_argument("--errors", action="store_true", help="print every false positive and negative")
    parser.add_argument("--speed", action="store_true", help="time pure detection")
    parser.add_argument("--embeddings", action="store_true", help="use the MiniLM paraphrase path too")
    parser.add_argument("--real", type=Path, help="Open-Assistant trees (JSONL) to run the detectors over")
    args = parser.parse_args()

    sessions = generate_sessions(args.sessions, args.seed)
    config = SignalConfig(repeat_ask={"use_embeddings": args.embeddings})
    encoder = load_encoder() if args.embeddings else None
    predicted: dict[str, set[str]] = defaultdict(set)
    found_by: dict[tuple[str, str], object] = {}
    for session in sessions:
        for finding in detect(session.traces, config, session.now, encoder=encoder):
            predicted[finding.signal].add(finding.trace_id)
            found_by[(finding.signal, finding.trace_id)] = finding.evidence
    scores = evaluate(sessions, predicted)
    traces = sum(len(s.traces) for s in sessions)
    print(f"{len(sessions)} sessions, {traces} traces, seed {args.seed}")
    header = ("detector", "labelled", "found", "TP", "FP", "FN", "precision", "recall")
    print("{:<12} {:>8} {:>6} {:>5} {:>4} {:>4} {:>9} {:>7}  target".format(*header))
    failed = False
    for signal, s in scores.items():
        target = TARGETS.get(signal)
        mark = ""
        if target:
            ok = s.precision >= target[0] and s.recall >= target[1]
            failed |= not ok
            mark = f"P>={target[0]} R>={target[1]} {'ok' if ok else 'MISSED'}"
        print(
            f"{signal:<12} {s.true_positives + s.false_negatives:>8} {s.true_positives + s.false_positives:>6} "
            f"{s.true_positives:>5} {s.false_positives:>4} {s.false_negatives:>4} {s.precision:>9.3f} "
            f"{s.recall:>7.3f}  {mark}"
        )
    if args.errors:
        _print_errors(sessions, predicted, found_by)
    if args.speed:
        _speed(sessions, config)
    if args.real:
        _real(args.real, config, encoder)
    return 1 if failed else 0


def _print_errors(sessions, predicted, found_by) -> None:  # type: ignore[no-untyped-def]
    """Each miss with the subject's user turn and the turns after it (what the detector saw)."""

    def said(trace) -> str:  # type: ignore[no-untyped-def]
        return repr(str(trace.input[-1].get("content")))[:100]

    for session in sessions:
        ids = {t.id for t in session.traces}
        for signal in ("repeat_ask", "regenerate", "pushback", "positive", "abandon"):
            truth = session.labels.get(signal, set()) - session.ignore.get(signal, set())
            found = (predicted.get(signal, set()) & ids) - session.ignore.get(signal, set())
            for kind, bad in (("FP", found - truth), ("FN", truth - found)):
                for trace_id in sorted(bad):
                    i = next(k for k, t in enumerate(session.traces) if t.id == trace_id)
                    after = " | ".join(said(t) for t in session.traces[i + 1 : i + 3])
                    print(f"{kind} {signal} {trace_id}: {said(session.traces[i])} -> {after}")
                    if kind == "FP":
                        print(f"    evidence {found_by.get((signal, trace_id))}")


def _speed(sessions, config) -> None:  # type: ignore[no-untyped-def]
    """CPU time of pure detection (best of 5 passes, so other processes on the machine matter less)."""
    traces = sum(len(s.traces) for s in sessions)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for session in sessions:
            detect(session.traces, config, session.now)
        best = min(best, time.process_time() - start)
    print(f"speed: {traces / best:,.0f} traces/s ({best / traces * 1e6:.1f} us/trace CPU, one core, best of 5)")


def _real(path: Path, config: SignalConfig, encoder) -> None:  # type: ignore[no-untyped-def]
    """Every prompter->assistant path of each tree as one session, 90 s between turns; list what fires."""

    def paths(message, trail):  # type: ignore[no-untyped-def]
        trail = [*trail, message]
        replies = message.get("replies") or []
        if not replies:
            yield trail
        for reply in replies:
            yield from paths(reply, trail)

    seen: set[tuple[str, tuple[str, ...]]] = set()
    counts: Counter[str] = Counter()
    pairs = 0
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        tree = json.loads(line)
        for k, trail in enumerate(paths(tree["prompt"], [])):
            chat = ChatBuilder(f"oasst{n}-{k}", "user", BASE_TIME)
            for ask, answer in zip(trail[::2], trail[1::2], strict=False):
                if ask["role"] == "prompter" and answer["role"] == "assistant":
                    chat.ask(ask["text"], answer["text"], after_s=90)
            by_id = {t.id: t for t in chat.traces}
            for finding in detect(chat.traces, config, None, encoder=encoder):
                said = tuple(str(by_id[i].input[-1]["content"])[:100] for i in finding.evidence["trace_ids"])
                if (finding.signal, said) in seen:  # paths share prefixes: count each exchange once
                    continue
                seen.add((finding.signal, said))
                counts[finding.signal] += 1
                print(f"  real {finding.signal:<10} {' ==> '.join(repr(x) for x in said)}")
            pairs += len(chat.traces) - 1
    print(f"real conversations ({path.name}): {dict(counts)} over about {pairs} follow-up turns (paths overlap)")


if __name__ == "__main__":
    sys.exit(main())
