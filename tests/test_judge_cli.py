"""`workbench rubrics`, `workbench judge run` and `workbench judge calibrate` through the real entry point."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from workbench.feedback.explicit import FeedbackAPI
from workbench.judge import get_rubric
from workbench.judge.calibration import (
    calibrate,
    calibrate_pairwise,
    extract_keys,
    extract_numbers,
    extract_preferences,
    parse_jsonl,
    ratings_to_preferences,
)
from workbench.judge.runner import JudgeConfig, JudgeRunner
from workbench.judge.service import StoreCache, pairs_to_judge, traces_to_judge
from workbench.store import judge as judge_rows
from workbench.store import open_store
from workbench.store.traces import insert_traces

from .conftest import run_cli
from .test_judge_runner import FakeJudge, FakeServer, shown_first, trace_row

DATA = Path(__file__).parent / "data"
UNIEVAL, LLMBAR = DATA / "unieval_topical_chat.jsonl", DATA / "llmbar_natural.jsonl"
REQUIRED = {"n", "pearson", "spearman", "kendall", "kappa", "krippendorff_alpha", "mapping", "ppi", "classical"}


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(fake_server: FakeServer) -> FakeJudge:
    return fake_server.fresh()


def cli_json(*args: str, cwd: Path) -> Any:
    result = run_cli(*args, "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def rows_of(path: Path):
    return parse_jsonl(path.read_text(), str(path))


def same(a: Any, b: Any) -> None:
    """JSON round trip of the direct result equals the CLI's (floats to 12 significant digits)."""
    assert json.loads(json.dumps(a), parse_float=lambda s: round(float(s), 12)) == json.loads(
        json.dumps(b), parse_float=lambda s: round(float(s), 12)
    )


# ----------------------------------------------------------------------------- from a file


def test_calibrate_from_file_matches_calling_calibrate_directly(tmp_path):
    out = cli_json(
        "judge",
        "calibrate",
        "--from",
        str(UNIEVAL),
        "--judge-field",
        "predict_scores.overall",
        "--human-field",
        "scores.overall",
        cwd=tmp_path,
    )
    assert set(out) >= REQUIRED
    for key in ("ppi", "classical"):
        assert out[key] is None or {"estimate", "ci_low", "ci_high"} <= set(out[key])
    rows = rows_of(UNIEVAL)
    direct = calibrate(extract_numbers(rows, "predict_scores.overall"), extract_numbers(rows, "scores.overall"))
    same(out, direct.to_dict())
    assert out["n"] == 360 and out["pearson"]["estimate"] == pytest.approx(0.6328, abs=1e-4)


def test_calibrate_from_file_with_groups_and_unlabelled_scores(tmp_path):
    lines = UNIEVAL.read_text().splitlines()
    labelled, unlabelled = tmp_path / "labelled.jsonl", tmp_path / "unlabelled.jsonl"
    labelled.write_text("\n".join(lines[::5]) + "\n")  # the file cycles through 6 systems: every 5th hits all
    unlabelled.write_text("\n".join(line for i, line in enumerate(lines) if i % 5) + "\n")
    out = cli_json(
        "judge",
        "calibrate",
        "--from",
        str(labelled),
        "--judge-field",
        "predict_scores.overall",
        "--human-field",
        "scores.overall",
        "--group-field",
        "system_id",
        "--unlabeled",
        str(unlabelled),
        "--bootstrap",
        "200",
        "--seed",
        "3",
        cwd=tmp_path,
    )
    rows, u_rows = rows_of(labelled), rows_of(unlabelled)
    direct = calibrate(
        extract_numbers(rows, "predict_scores.overall"),
        extract_numbers(rows, "scores.overall"),
        unlabeled=extract_numbers(u_rows, "predict_scores.overall"),
        groups=extract_keys(rows, "system_id"),
        unlabeled_groups=extract_keys(u_rows, "system_id"),
        n_bootstrap=200,
        seed=3,
    )
    same(out, direct.to_dict())
    assert out["n"] == 72 and out["n_unlabeled"] == 288 and out["ppi"]["ci_low"] < out["ppi"]["ci_high"]
    assert len(out["groups"]) == 6 and all((g["n"], g["n_unlabeled"]) == (12, 48) for g in out["groups"])


def test_calibrate_pairwise_file_matches_calibrate_pairwise(tmp_path):
    out = cli_json(
        "judge",
        "calibrate",
        "--from",
        str(LLMBAR),
        "--judge-field",
        "gpt4_pref",
        "--human-field",
        "label",
        "--pairwise",
        "--swapped-field",
        "gpt4_pref_swapped",
        "--texts",
        "output_1,output_2",
        "--bootstrap",
        "300",
        cwd=tmp_path,
    )
    rows = rows_of(LLMBAR)
    lengths = [[len(r[f]) for r in rows.items] for f in ("output_1", "output_2")]
    direct = calibrate_pairwise(
        extract_preferences(rows, "gpt4_pref"),
        extract_preferences(rows, "label"),
        judge_swapped=extract_preferences(rows, "gpt4_pref_swapped"),
        length_a=lengths[0],
        length_b=lengths[1],
        n_bootstrap=300,
    )
    same(out, direct.to_dict())
    assert set(out) >= REQUIRED and out["scale"] == "pairwise" and out["position_bias"]["n"] == 100
    assert out["agreement"]["estimate"] == pytest.approx(
        np.mean(extract_preferences(rows, "gpt4_pref") == extract_preferences(rows, "label"))
    )


def test_calibrate_prints_a_table_without_json(tmp_path):
    result = run_cli(
        "judge",
        "calibrate",
        "--from",
        str(UNIEVAL),
        "--judge-field",
        "predict_scores.overall",
        "--human-field",
        "scores.overall",
        "--group-field",
        "system_id",
        "--bootstrap",
        "100",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"pearson\s+│\s+0\.633", result.stdout) and "by group" in result.stdout
    assert "Original Ground Truth" in result.stdout and "note:" in result.stdout


def write_lines(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


BAD_FILES = [  # rows of data.jsonl, extra options, the one line we expect on stderr
    ([{"j": 1, "h": 2}] * 2 + [{"j": 3}], (), r"data\.jsonl:3: field 'h' is missing"),
    (
        [{"j": 1, "h": 2}, {"j": "high", "h": 3}, {"j": 2, "h": 1}],
        (),
        r"data\.jsonl:2: field 'j' is 'high', not a number",
    ),
    ([{"j": 1, "h": 2}, {"j": 2, "h": 3}], (), "need at least 3 labelled pairs, got 2"),
    ([{"j": i, "h": 3} for i in range(5)], (), r"human scores are constant \(all 3\)"),
    ([{"j": 1, "h": 2}] * 3, ("--pairwise",), r"human preferences are constant \(all 2\)"),
    ([{"j": "x", "h": "a"}] * 3, ("--pairwise",), r"data\.jsonl:1: field 'j' is 'x', not a preference"),
    ([], (), "need at least 3 labelled pairs, got 0"),
    ('{"j": 1, "h": 2}\n{"j": 2,\n', (), r"data\.jsonl:2: not valid JSON"),
]
BAD_OPTIONS = [  # arguments, the one line we expect on stderr, exit code
    (("judge", "calibrate", "--rubric", "nope"), r"unknown rubric 'nope' \(available: factual_consistency", 4),
    (("judge", "run", "--rubric", "nope", "--base-url", "http://127.0.0.1:9/v1"), "unknown rubric 'nope'", 4),
    (("judge", "calibrate"), "give either --rubric ID", 2),
    (
        ("judge", "calibrate", "--from", "missing.jsonl", "--judge-field", "a", "--human-field", "b"),
        "cannot read missing.jsonl",
        2,
    ),
    (("judge", "calibrate", "--from", "x.jsonl"), "--from needs --judge-field and --human-field", 2),
    (("judge", "calibrate", "--rubric", "helpfulness", "--by", "week"), "--by must be one of", 2),
    (("judge", "calibrate", "--rubric", "helpfulness"), "no parsed judge scores for rubric helpfulness v1", 4),
    (("judge", "run", "--rubric", "helpfulness"), "no API key: set OPENAI_API_KEY", 2),
    (
        ("judge", "calibrate", "--from", "x.jsonl", "--judge-field", "j", "--human-field", "h", "--by", "variant"),
        "--by and --model apply to --rubric",
        2,
    ),
]


def run_many(cases: list[tuple[Any, ...]], runner: Any) -> list[Any]:
    """Each case is its own CLI process; run them side by side (process start-up dominates)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(runner, cases))


def one_line_error(result: Any, message: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and re.search(message, result.stderr), result.stderr


def test_bad_files_fail_with_one_clear_line(tmp_path):
    def attempt(case: tuple[Any, ...]) -> Any:
        number, (rows, args, _) = case
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        path = folder / "data.jsonl"
        if isinstance(rows, str):
            path.write_text(rows)
        else:
            write_lines(path, rows)
        return run_cli(
            "judge", "calibrate", "--from", str(path), "--judge-field", "j", "--human-field", "h", *args, cwd=folder
        )

    for result, (_rows, _args, message) in zip(run_many(list(enumerate(BAD_FILES)), attempt), BAD_FILES, strict=True):
        assert result.returncode == 2, (message, result.stderr)
        one_line_error(result, message)


def test_bad_options_fail_with_one_clear_line(tmp_path):
    open_store(tmp_path).close()  # an empty project store, found from tmp_path
    env = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}
    results = run_many(BAD_OPTIONS, lambda case: run_cli(*case[0], cwd=tmp_path, env=env))
    for result, (_args, message, code) in zip(results, BAD_OPTIONS, strict=True):
        assert result.returncode == code, (message, result.stderr)
        one_line_error(result, message)


def test_rubrics_lists_the_shipped_rubrics(tmp_path):
    listed = cli_json("rubrics", cwd=tmp_path)
    assert [r["id"] for r in listed] == ["factual_consistency", "helpfulness", "pairwise_preference", "reaction"]
    assert {r["id"]: r["fingerprint"] for r in listed}["helpfulness"] == get_rubric("helpfulness").fingerprint
    table = run_cli("rubrics", cwd=tmp_path)
    assert table.returncode == 0 and "likert 1-5" in table.stdout and "pairwise" in table.stdout
    bad = tmp_path / "rubrics"
    bad.mkdir()
    (bad / "broken.yaml").write_text("id: broken\nversion: 0\n")
    result = run_cli("rubrics", cwd=tmp_path)
    assert result.returncode == 2 and re.search(r"broken\.yaml:\d+: field", result.stderr)


# ----------------------------------------------------------------------------- judge run


def scored_answer(text: str) -> str:
    """The fake judge reads the quality the test wrote into each answer ("quality=K")."""
    match = re.search(r"quality=(\d)", text)
    return '{"reasoning": "as marked", "score": %s}' % (match.group(1) if match else "9")  # noqa: UP031


def test_judge_run_through_the_cli_and_rerun_costs_nothing(fake, sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with store.write() as conn:
        insert_traces(
            conn,
            [trace_row(f"r{i}", f"q{i}", f"quality={1 + i % 5}", minutes=i) for i in range(7)]
            + [trace_row("r-bad", "q", "no mark", minutes=9)],
        )
    store.close()
    fake.default = scored_answer
    args = (
        "--store",
        sqlite_url,
        "judge",
        "run",
        "--rubric",
        "helpfulness",
        "--base-url",
        fake.url,
        "--model",
        "gpt-4o-mini",
        "--concurrency",
        "3",
    )
    out = cli_json(*args, cwd=tmp_path)
    stats = out["stats"]
    assert (stats["calls"], stats["ok"], stats["unparsed"], stats["requests"]) == (8, 7, 1, 8)
    assert stats["prompt_tokens"] == 8 * 120 and stats["cost"] == pytest.approx(8 * (120 * 0.15 + 30 * 0.6) / 1e6)
    by_trace = {r["trace_id"]: r for r in out["results"]}
    assert by_trace["r3"]["score"] == 4.0 and by_trace["r-bad"]["parse_status"] == "unparsed"
    assert by_trace["r-bad"]["score"] is None and "not on the likert scale" in by_trace["r-bad"]["parse_error"]
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0 and "Nothing to judge" in again.stdout and len(fake.requests) == 8


def test_judge_run_table_and_failed_calls_exit_non_zero(fake, sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with store.write() as conn:
        insert_traces(conn, [trace_row("p1", "q <fail>", "quality=3"), trace_row("p2", "q2", "quality=2")])
    store.close()
    from .test_judge_runner import Step

    fake.default = scored_answer
    fake.scripts["<fail>"] = [Step(status=400)]
    result = run_cli(
        "--store",
        sqlite_url,
        "judge",
        "run",
        "--rubric",
        "helpfulness",
        "--base-url",
        fake.url,
        "--max-retries",
        "0",
        cwd=tmp_path,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "1 judge calls failed" in result.stderr and re.search(r"failed\s+│\s+1", result.stdout)
    assert re.search(r"cost\s+│\s+\$0\.0000", result.stdout)


# ----------------------------------------------------------------------------- calibrate from the store


def populate(store_url: str, fake: FakeJudge) -> dict[str, Any]:
    """40 traces over two prompt versions; 30 rated by users (one changes their mind); judged by the fake."""
    rng = np.random.default_rng(7)
    store = open_store(store_url)
    quality = {f"c{i:02d}": int(rng.integers(1, 6)) for i in range(40)}
    with store.write() as conn:
        insert_traces(
            conn,
            [
                trace_row(tid, f"question {tid}", f"quality={q}", minutes=i, version=1 + i % 2)
                for i, (tid, q) in enumerate(quality.items())
            ],
        )
    api, human = FeedbackAPI(store), {}
    for i, (tid, q) in enumerate(quality.items()):
        if i >= 30:
            continue
        a, b = int(np.clip(q + rng.integers(-1, 2), 1, 5)), int(np.clip(q + rng.integers(-1, 2), 1, 5))
        api.rating(tid, 1, user_id="u1")  # superseded by u1's later rating
        api.rating(tid, a, user_id="u1")
        api.rating(tid, b, user_id="u2")
        human[tid] = (a + b) / 2
    fake.default = scored_answer
    JudgeRunner(
        get_rubric("helpfulness"), JudgeConfig("gpt-4o-mini", base_url=fake.url, api_key="k"), cache=StoreCache(store)
    ).run_sync(traces_to_judge(store, get_rubric("helpfulness"), "gpt-4o-mini"))
    store.close()
    return {"quality": quality, "human": human}


def test_calibrate_from_the_store_by_prompt_version(fake, store_url, tmp_path):
    data = populate(store_url, fake)
    out = cli_json(
        "--store",
        store_url,
        "judge",
        "calibrate",
        "--rubric",
        "helpfulness",
        "--by",
        "prompt_version",
        "--bootstrap",
        "200",
        cwd=tmp_path,
    )
    quality, human = data["quality"], data["human"]
    rated = sorted(human)
    unrated = sorted(set(quality) - set(human))
    version = {tid: f"support@{1 + int(tid[1:]) % 2}" for tid in quality}
    direct = calibrate(
        [quality[t] for t in rated],
        [human[t] for t in rated],
        unlabeled=[quality[t] for t in unrated],
        groups=[version[t] for t in rated],
        unlabeled_groups=[version[t] for t in unrated],
        n_bootstrap=200,
    ).to_dict()
    assert out["n"] == 30 and out["n_unlabeled"] == 10 and out["signal"] == "rating"
    assert (out["rubric_id"], out["rubric_version"], out["judge_model"], out["by"]) == (
        "helpfulness",
        1,
        "gpt-4o-mini",
        "prompt_version",
    )
    same({k: out[k] for k in direct}, direct)
    assert [g["group"] for g in out["groups"]] == ["support@1", "support@2"]
    store = open_store(store_url)
    with store.read() as conn:
        stored = judge_rows.list_calibrations(conn, rubric_id="helpfulness")
    store.close()
    assert sorted(c.id for c in stored) == sorted(out["calibration_ids"])
    overall = next(c for c in stored if c.group_key == {})
    assert overall.n == 30 and overall.judge_model == "gpt-4o-mini" and overall.mapping["method"] == "isotonic"
    assert {c.rubric_version for c in stored} == {1}
    assert overall.metrics["pearson"] == out["pearson"]
    assert sorted(c.group_key["prompt_version"] for c in stored if c.group_key) == ["support@1", "support@2"]
    table = run_cli(
        "--store",
        store_url,
        "judge",
        "calibrate",
        "--rubric",
        "helpfulness",
        "--by",
        "model_version",
        "--bootstrap",
        "50",
        cwd=tmp_path,
    )
    assert table.returncode == 0 and "gpt-4o-2024-08-06+fp_app" in table.stdout


def test_calibrate_from_the_store_needs_enough_ratings(fake, sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    with store.write() as conn:
        insert_traces(conn, [trace_row(f"k{i}", f"q{i}", f"quality={1 + i}") for i in range(4)])
    FeedbackAPI(store).rating("k0", 2, user_id="u")
    FeedbackAPI(store).rating("k1", 4, user_id="u")
    fake.default = scored_answer
    JudgeRunner(
        get_rubric("helpfulness"), JudgeConfig("gpt-4o-mini", base_url=fake.url, api_key="k"), cache=StoreCache(store)
    ).run_sync(traces_to_judge(store, get_rubric("helpfulness"), "gpt-4o-mini"))
    store.close()
    result = run_cli("--store", sqlite_url, "judge", "calibrate", "--rubric", "helpfulness", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "rubric helpfulness v1, judge gpt-4o-mini: need at least 3 labelled pairs, got 2" in result.stderr


def test_binary_rubric_calibrates_against_thumbs(fake, sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    verdicts = [1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0]
    thumbs = [1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 0]
    with store.write() as conn:
        insert_traces(
            conn,
            [trace_row(f"f{i:02d}", f"q{i}", f"claim {i} " + ("ok" if v else "wrong")) for i, v in enumerate(verdicts)],
        )
    api = FeedbackAPI(store)
    for i, up in enumerate(thumbs):
        api.thumbs(f"f{i:02d}", up=bool(up), user_id="u")
    fake.default = lambda text: "Verdict: " + ("CONSISTENT" if " ok" in text else "INCONSISTENT")
    rubric = get_rubric("factual_consistency")
    JudgeRunner(rubric, JudgeConfig("gpt-4o-mini", base_url=fake.url, api_key="k"), cache=StoreCache(store)).run_sync(
        traces_to_judge(store, rubric, "gpt-4o-mini")
    )
    store.close()
    out = cli_json(
        "--store",
        sqlite_url,
        "judge",
        "calibrate",
        "--rubric",
        "factual_consistency",
        "--bootstrap",
        "100",
        cwd=tmp_path,
    )
    direct = calibrate(verdicts, thumbs, n_bootstrap=100).to_dict()
    assert out["signal"] == "thumbs" and out["scale"] == "binary"
    same({k: out[k] for k in direct}, direct)
    assert out["binary"]["accuracy"]["estimate"] == pytest.approx(10 / 12)


def test_pairwise_rubric_calibrates_pairs_against_ratings_of_both_sides(fake, sqlite_url, tmp_path):
    store = open_store(sqlite_url)
    rows, ratings = [], {}
    for i in range(8):
        good_first = i % 3 != 0
        rows += [
            trace_row(f"x{i}a", f"question {i}", f"answer {i} one" + (" GOOD" if good_first else ""), minutes=2 * i),
            trace_row(
                f"x{i}b", f"question {i}", f"answer {i} two" + ("" if good_first else " GOOD"), minutes=2 * i + 1
            ),
        ]
        ratings[f"x{i}a"], ratings[f"x{i}b"] = (5, 2) if good_first or i == 3 else (1, 4)
    with store.write() as conn:
        insert_traces(conn, rows)
    api = FeedbackAPI(store)
    for tid, value in ratings.items():
        api.rating(tid, value, user_id="u")
    fake.default = lambda t: '{"winner": "%s"}' % ("A" if "GOOD" in shown_first(t) else "B")  # noqa: UP031
    rubric = get_rubric("pairwise_preference")
    JudgeRunner(rubric, JudgeConfig("gpt-4o-mini", base_url=fake.url, api_key="k"), cache=StoreCache(store)).run_sync(
        pairs_to_judge(store, rubric, "gpt-4o-mini")
    )
    store.close()
    out = cli_json(
        "--store",
        sqlite_url,
        "judge",
        "calibrate",
        "--rubric",
        "pairwise_preference",
        "--bootstrap",
        "100",
        cwd=tmp_path,
    )
    judge = [1.0 if i % 3 != 0 else 2.0 for i in range(8)]
    human = ratings_to_preferences([ratings[f"x{i}a"] for i in range(8)], [ratings[f"x{i}b"] for i in range(8)])
    direct = calibrate_pairwise(judge, human, judge_swapped=judge, n_bootstrap=100).to_dict()
    same({k: out[k] for k in direct}, direct)
    assert out["agreement"]["estimate"] == pytest.approx(7 / 8) and out["position_bias"]["consistency"]["estimate"] == 1
    result = run_cli(
        "--store", sqlite_url, "judge", "calibrate", "--rubric", "pairwise_preference", "--by", "variant", cwd=tmp_path
    )
    assert result.returncode == 2 and "--by is not supported for pairwise rubrics" in result.stderr
