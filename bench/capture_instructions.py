"""Instructions the wrapper adds per call, counted by valgrind's cachegrind instead of timed.

    python bench/capture_instructions.py [--mode sync|stream] [--calls 2000]

Wall-clock differences of a few microseconds drown in run-to-run spread on a shared machine; instruction
counts do not (repeat runs agree within ~2k with ``PYTHONHASHSEED=0``; another script around the same calls
moved the plain count by ~25k, the process's memory layout, so read the difference as a range). For plain and
wrapped clients (the same MockTransport as ``capture_overhead.py``) it counts a run of 100 calls and a run of
100 + ``--calls``, and prints the difference per call, so start-up and imports cancel out. Each run leaves by
``os._exit`` right after its calls: the exit-time ingest would otherwise run the spooled records into SQLite
inside the count. Needs ``valgrind`` on the PATH; about 90 s per mode and side.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _calls(mode: str, wrapped: bool, n: int) -> None:
    """The counted program: n calls, then leave before any exit handler runs."""
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    import capture_overhead as co

    import workbench

    client = co.sync_client()
    if wrapped:
        wb = workbench.open(os.path.join(tempfile.mkdtemp(), "store"), ingest="off")  # kept open until _exit
        client = wb.wrap(client)
    co.run_sync(client, wrapped, n, mode == "stream")  # the latency bench's loop (its clock reads on both sides)
    sys.stdout.flush()
    os._exit(0)


def _count(mode: str, wrapped: bool, n: int) -> int:
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--run",
        mode,
        "wrapped" if wrapped else "plain",
        str(n),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, check=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if found is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--run":
        _calls(sys.argv[2], sys.argv[3] == "wrapped", int(sys.argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("sync", "stream"), action="append")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    for mode in args.mode or ["sync", "stream"]:
        per_call = {}
        for wrapped in (False, True):
            base, more = _count(mode, wrapped, 100), _count(mode, wrapped, 100 + args.calls)
            per_call[wrapped] = (more - base) / args.calls
        added = per_call[True] - per_call[False]
        print(
            f"{mode}: plain {per_call[False]:,.0f} instructions per call, wrapped {per_call[True]:,.0f}: "
            f"+{added:,.0f} ({added / per_call[False]:.2%})",
            flush=True,
        )


if __name__ == "__main__":
    main()
