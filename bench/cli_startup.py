"""CLI start-up: wall and CPU time of `workbench --help` and `workbench traces --limit 20`, in one run.

    python bench/cli_startup.py [--traces 1000] [--runs 15] [--before REF]

Each command runs as a new process, exactly as a user types it, against a SQLite store holding
``--traces`` captured calls (made through the real wrapper on a fake transport). Modes are
interleaved run by run, so machine load hits them alike; the baseline is `python -c pass` measured
in the same rounds. ``--before REF`` also times the same commands on an exported copy of that git
revision (``git archive``; nothing in the checkout changes), so the ratio after/before is measured
in the same run too. CPU is the children's user+system time (all their threads).

Target (issue 12): `traces --limit 20` under 400 ms wall on a quiet machine. On a shared, busy machine,
`chrt -f 10 python bench/cli_startup.py` (root) lets the timed processes run first, which comes close.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COMMANDS = [["--help"], ["traces", "--limit", "20"]]


MAKE_STORE = """
import sys
import workbench
from tests.openai_fakes import FakeOpenAI

directory, count = sys.argv[1], int(sys.argv[2])
wb = workbench.open(directory)
client = wb.wrap(FakeOpenAI().client())
prompt = wb.prompts.register("support-answer", "Answer: {question}")
for i in range(count):
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"question {i}: where is order {i}?"}],
        workbench={"prompt": prompt, "session_id": f"s-{i // 5}", "user_id": f"u-{i % 40}"},
    )
wb.close()
"""


def make_store(directory: Path, count: int, tree: Path, env: dict[str, str]) -> None:
    """``count`` traces in ``directory``/.workbench, captured through that tree's wrapper and ingested
    (each tree makes its own store: an older workbench refuses a store migrated by a newer one)."""
    directory.mkdir(parents=True)
    env = {**env, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"}
    # cwd is the new directory: `python -c` puts it first on sys.path, so the tree's workbench is the one used
    subprocess.run([sys.executable, "-c", MAKE_STORE, str(directory), str(count)], env=env, cwd=directory, check=True)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and children CPU seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def export_revision(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "workbench"], capture_output=True, check=True)
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--before", metavar="REF", help="also time this git revision (e.g. aa1e247)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wb-cli-bench-") as tmp:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
        base_env["COLUMNS"] = "120"
        trees = {"now": ROOT}
        if args.before:
            trees[f"before ({args.before})"] = export_revision(args.before, Path(tmp) / "before")
        modes: list[tuple[str, list[str], dict[str, str], Path]] = [
            ("python -c pass", [sys.executable, "-c", "pass"], base_env, Path(tmp))
        ]
        for number, (label, tree) in enumerate(trees.items()):
            project = Path(tmp) / f"project-{number}"
            make_store(project, args.traces, tree, base_env)
            env = {**base_env, "PYTHONPATH": str(tree)}
            for argv in COMMANDS:
                command = [sys.executable, "-m", "workbench", *argv]
                modes.append((f"{label}: workbench {' '.join(argv)}", command, env, project))
        for _, argv, env, cwd in modes:  # warm the page cache and .pyc files once
            timed(argv, cwd, env)
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _, _ in modes}
        for _ in range(args.runs):
            for label, argv, env, cwd in modes:
                samples[label].append(timed(argv, cwd, env))

    load = os.getloadavg()[0]
    print(
        f"{args.traces} traces in SQLite, {args.runs} interleaved runs per mode, load average {load:.2f} "
        f"on {os.cpu_count()} CPUs (a quiet machine has ~0)"
    )
    print(f"{'mode':<52} {'wall p50':>9} {'wall min':>9} {'cpu p50':>9}")
    medians = {}
    for label, values in samples.items():
        walls, cpus = [w for w, _ in values], [c for _, c in values]
        medians[label] = statistics.median(walls)
        print(
            f"{label:<52} {medians[label] * 1000:>7.0f}ms {min(walls) * 1000:>7.0f}ms "
            f"{statistics.median(cpus) * 1000:>7.0f}ms"
        )
    if args.before:
        for argv in COMMANDS:
            now = medians[f"now: workbench {' '.join(argv)}"]
            before = medians[f"before ({args.before}): workbench {' '.join(argv)}"]
            print(f"workbench {' '.join(argv)}: {now / before:.2f}x the wall time of {args.before}")
    traces = medians["now: workbench traces --limit 20"]
    verdict = "met" if traces < 0.400 else "MISSED"
    print(
        f"target `workbench traces --limit 20` < 400 ms wall: {traces * 1000:.0f} ms p50 -> {verdict}"
        + ("" if load < 0.5 else " (machine not quiet: rerun when the load average is near 0)")
    )


if __name__ == "__main__":
    main()
