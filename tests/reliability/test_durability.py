"""Issue 16 item 6: a spool segment is deleted only after the rows it held are on disk.

Traced with strace (the real system calls, in order): the sealed segment is fsynced before it is renamed,
and the SQLite WAL is fsynced after the segment's last rows were committed and before the segment is
unlinked. Before: with ``synchronous=NORMAL`` the WAL was not fsynced between commit and unlink, so a
power loss could lose rows whose only other copy was already deleted.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from .conftest import run_app


def test_segment_deleted_only_after_a_durable_commit(sqlite_url, tmp_path: Path):
    if shutil.which("strace") is None:
        pytest.skip("durability-order test needs strace")
    log = tmp_path / "strace.log"
    result = run_app(
        "durable",
        sqlite_url,
        cwd=tmp_path,
        prefix=[
            "strace",
            "-f",
            "-y",
            "-qq",
            "-o",
            str(log),
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2,unlink,unlinkat",
        ],
    )
    if result.returncode != 0 and "ptrace" in result.stderr:
        pytest.skip(f"strace is not permitted here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[0]) == {"step": "flushed", "traces": 50, "removed": 1}
    calls = log.read_text().splitlines()
    seal = next(i for i, line in enumerate(calls) if re.search(r'rename\w*\("[^"]*\.wbspool\.open"', line))
    unlink = next(i for i, line in enumerate(calls) if re.search(r"unlink\w*\(.*\.wbspool\"", line))
    assert any(re.search(r"fsync\(\d+<[^>]*\.wbspool\.open>", line) for line in calls[:seal]), (
        "the segment was not fsynced before it was sealed"
    )
    assert any(re.search(r"f(data)?sync\(\d+<[^>]*workbench\.db(-wal)?>", line) for line in calls[seal:unlink]), (
        "the store's commit was not on disk before the segment was deleted:\n" + "\n".join(calls[seal : unlink + 1])
    )
