"""The ingest process ``workbench.open(ingest="process")`` starts: follows the spool off the app's CPU.

    python -m workbench.capture.sidecar --parent PID [--interval S]

The store comes from WORKBENCH_URL and the spool from WORKBENCH_SPOOL (set by the app; a URL with a
password never shows in ``ps``). One follower per spool holds ``.follow.lock``; a sidecar that finds it
taken waits for it while its app lives, so the spool always has a follower as long as some app runs.
It exits when its app is gone (after one last pass) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from .ingest import follow_spool

log = logging.getLogger("workbench.ingest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench-ingest-sidecar")
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="workbench ingest: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    directory = Path(os.environ["WORKBENCH_SPOOL"])

    from ..store import open_store

    store_holder: list[object] = []

    def provider():  # type: ignore[no-untyped-def]
        if not store_holder:
            store_holder.append(open_store(os.environ["WORKBENCH_URL"]))
        return store_holder[0]

    follow_spool(provider, directory, interval=args.interval, stop=stop, parent_pid=args.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
