"""Writes ordinary_sentences.txt: 1,000 sentences from the Open-Assistant sample (Apache-2.0) for false positives.

Sentences of 6-45 words are cut from every message in workbench/data/oasst_en_100_trees.jsonl (lines split,
then at ., ! or ?), de-duplicated and sorted; 500 are drawn from those containing a digit and 500 from the
rest, with a fixed seed. Digits are oversampled (they are 13% of the sentences) because almost every
false positive needs one. Sentences that do hold a PII item are kept and listed in README.md: a
redaction there is right, not a false positive.

    python tests/data/pii/make_sentences.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def main() -> None:
    texts: list[str] = []

    def walk(message: dict) -> None:
        texts.append(message["text"])
        for reply in message.get("replies", []):
            walk(reply)

    for line in (ROOT / "workbench/data/oasst_en_100_trees.jsonl").read_text(encoding="utf-8").splitlines():
        walk(json.loads(line)["prompt"])
    sentences: set[str] = set()
    for text in texts:
        for line in text.split("\n"):
            for sentence in re.split(r"(?<=[.!?])\s+", line.strip()):
                if 6 <= len(sentence.split()) <= 45 and not sentence.startswith("```"):
                    sentences.add(sentence)
    ordered = sorted(sentences)
    rng = random.Random(1000)
    with_digit = [s for s in ordered if re.search(r"\d", s)]
    without = [s for s in ordered if not re.search(r"\d", s)]
    chosen = rng.sample(with_digit, 500) + rng.sample(without, 500)
    out = Path(__file__).with_name("ordinary_sentences.txt")
    out.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    print(f"{len(chosen)} sentences -> {out}")


if __name__ == "__main__":
    main()
