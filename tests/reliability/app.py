"""Capture apps for the reliability suite, run in a subprocess so a crash (SIGBUS) is an exit code.

    python -m tests.reliability.app fill STORE_URL CALLS     spool on a tiny filesystem until it is full
    python -m tests.reliability.app steps STORE_URL          read commands from stdin: call N, flush, close
    python -m tests.reliability.app durable STORE_URL        50 calls, flush (seal, ingest, delete the segment)
Each prints one JSON line per step on stdout.
"""

from __future__ import annotations

import json
import logging
import sys

import workbench
from tests.openai_fakes import FakeOpenAI, chat_body

MESSAGES = [{"role": "user", "content": "hello"}]


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def fill(url: str, calls: int) -> None:
    fake = FakeOpenAI()
    fake.default = chat_body("x" * 2000)
    wb = workbench.open(url, ingest="off", segment_bytes=256 << 10)
    client = wb.wrap(fake.client())
    for _ in range(calls):
        client.chat.completions.create(model="m", messages=MESSAGES)
    _say(step="full", calls=calls, dropped=wb.dropped)
    flushed = wb.flush()  # ingest frees the spool: capture resumes at the next call
    for _ in range(20):
        client.chat.completions.create(model="m", messages=MESSAGES)
    _say(step="resumed", ingested=flushed.traces, dropped=wb.dropped)
    wb.close()
    _say(step="closed")


def steps(url: str) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    wb = workbench.open(url, ingest="thread", ingest_interval=0.05, close_timeout=5)
    client = wb.wrap(FakeOpenAI().client())
    made = 0
    for line in sys.stdin:
        command, *rest = line.split()
        if command == "call":
            for _ in range(int(rest[0])):
                client.chat.completions.create(model="m", messages=MESSAGES)
                made += 1
            _say(step="called", made=made)
        elif command == "error":
            _say(step="error", last_error=wb._ingester.last_error)
        elif command == "close":
            wb.close()
            _say(step="closed", made=made, dropped=wb.dropped)
            return


def durable(url: str) -> None:
    wb = workbench.open(url, ingest="off")
    client = wb.wrap(FakeOpenAI().client())
    for _ in range(50):
        client.chat.completions.create(model="m", messages=MESSAGES)
    stats = wb.flush()  # seal the segment, ingest it, delete it
    _say(step="flushed", traces=stats.traces, removed=stats.removed_segments)
    wb.close()


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "fill":
        fill(url, int(sys.argv[3]))
    elif mode == "steps":
        steps(url)
    elif mode == "durable":
        durable(url)
