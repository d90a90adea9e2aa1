"""A tiny app for crash and concurrency tests: N wrapped calls against a fake transport.

    python -m tests.capture_app STORE_URL N [--hang] [--tag TAG]
Prints "done N" when all calls returned; with --hang it then sleeps until killed.
"""

from __future__ import annotations

import sys
import time

import workbench
from tests.openai_fakes import FakeOpenAI


def main() -> None:
    url, count = sys.argv[1], int(sys.argv[2])
    hang = "--hang" in sys.argv
    tag = sys.argv[sys.argv.index("--tag") + 1] if "--tag" in sys.argv else "app"
    wb = workbench.open(url, background_ingest=not hang)
    client = wb.wrap(FakeOpenAI().client())
    for i in range(count):
        client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": f"q{i}"}],
            workbench={"session_id": f"{tag}-{i % 7}", "tags": [tag]},
        )
    print(f"done {count}", flush=True)
    if hang:
        time.sleep(600)
    wb.close()


if __name__ == "__main__":
    main()
