"""Recall of PII redaction on the probe corpus and false positives on ordinary sentences.

    python bench/redaction_quality.py [--misses]

Data: tests/data/pii/probes.jsonl (173 probes written to the formats' public specs, dev and held-out
splits; see tests/data/pii/README.md) and tests/data/pii/ordinary_sentences.txt (1,000 Open-Assistant
sentences, Apache-2.0). Targets (issue 16): recall >= 0.98, false positives <= 1%. Also prints the
redactor's time per text, sentences and probes interleaved in the same run, and with ``--adversarial``
the time for 100 KB inputs built to make regular expressions backtrack (runs of separated digits,
``a-a-a-...`` before a key label, unterminated PEM blocks...): each should take well under a second,
growing linearly with the size (a quadratic pattern took 578 s for the first one).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pii_corpus import false_positives, load_probes, load_sentences, score_probes  # noqa: E402
from workbench.candidates.redact import redact_text  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--misses", action="store_true", help="print every missed probe and false positive")
    parser.add_argument("--adversarial", action="store_true", help="time 100 KB inputs built to backtrack")
    args = parser.parse_args()
    if args.adversarial:
        adversarial()
    probes = load_probes()
    sentences = load_sentences()
    ok = True
    for split in ("dev", "heldout", "all"):
        chosen = [p for p in probes if split in ("all", p.split)]
        score = score_probes(redact_text, chosen)
        total = Counter(p.kind for p in chosen)
        missed = Counter(p.kind for p, _ in score.misses)
        kinds = "  ".join(f"{k} {total[k] - missed[k]}/{total[k]}" for k in sorted(total))
        print(f"recall {split:8s} {score.caught:4d}/{score.total:<4d} = {score.recall:.3f}   {kinds}")
        if args.misses:
            for probe, redacted in score.misses:
                print(f"    missed {probe.id} ({probe.spec}): {redacted!r}")
        ok &= score.recall >= 0.98
    flagged = false_positives(redact_text, sentences)
    rate = len(flagged) / len(sentences)
    print(f"false positives   {len(flagged):4d}/{len(sentences):<4d} = {rate:.3%}")
    if args.misses:
        for original, redacted in flagged:
            print(f"    {original!r} -> {redacted!r}")
    ok &= rate <= 0.01
    texts = [p.text for p in probes] + sentences
    redact_text(texts[0])
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(5):
        for text in texts:
            redact_text(text)
    n = 5 * len(texts)
    print(
        f"speed             {(time.perf_counter() - start) / n * 1e6:.0f} us/text wall, "
        f"{(time.process_time() - cpu) / n * 1e6:.0f} us/text CPU ({n} texts)"
    )
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def adversarial() -> None:
    shapes = {
        "separated digits": "1 ",
        "hyphenated digits": "12-",
        "words before a label": "a1-b2.",
        "colons": "1:",
        "dotted digits": "1.",
        "plus groups": "+1 ",
        "parenthesised": "(1)",
        "at signs": "x@y.co ",
        "key labels": "token: ",
        "password labels": "password=",
        "cards": "4111 1111 1111 1111 ",
        "addresses": "10.0.0.1 ",
        "no-break spaces": "7\u00a0",
    }
    for label, unit in shapes.items():
        times = []
        for size in (10_000, 100_000):
            text = unit * (size // len(unit))
            start = time.process_time()
            redact_text(text)
            times.append(time.process_time() - start)
        print(
            f"adversarial {label:22s} 10 KB {times[0]:.3f} s CPU, 100 KB {times[1]:.3f} s CPU "
            f"(x{times[1] / max(times[0], 1e-6):.0f} for x10 input)"
        )
    for unterminated in ("-----BEGIN PRIVATE KEY-----" + "A" * 100_000, "a@" + "a" * 100_000, "sk-" + "a-" * 50_000):
        start = time.process_time()
        redact_text(unterminated)
        print(f"adversarial {unterminated[:12]!r:22s} 100 KB {time.process_time() - start:.3f} s CPU")


if __name__ == "__main__":
    raise SystemExit(main())
