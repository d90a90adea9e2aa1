"""compare / watch / alerts / prompts promote|rollback|rollout through the real entry point (subprocess):
exit codes (3 on an alert with --once), the alert log, the webhook (delivered, down, retried), bad input."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pytest_httpserver import HTTPServer

from workbench.prompts import PromptRegistry
from workbench.store import Store, open_store, schema
from workbench.store import attribution as adb

from .conftest import run_cli
from .test_attribution_store import NOW, Data, ab_traffic

DRIFT_AT = NOW - timedelta(minutes=40)


def traffic(store: Store, *, drift: bool, seed: int = 0) -> None:
    """7 days of baseline and a busy last hour for support@1 and support@2 (thumbs 75% up, 10% re-asks).

    With ``drift``, support@2's thumbs-up rate falls to 40% from DRIFT_AT on.
    """
    rng = np.random.default_rng(seed)
    d = Data()
    for version in (1, 2):
        times = [NOW - timedelta(hours=1) - timedelta(seconds=float(s)) for s in rng.random(3000) * 7 * 86400]
        times += [NOW - timedelta(seconds=float(s)) for s in rng.random(300) * 3600]
        for at in sorted(times):
            tid = d.trace(at, prompt=("support", version), variant="A" if rng.random() < 0.5 else "B")
            p = 0.40 if drift and version == 2 and at >= DRIFT_AT else 0.75
            if rng.random() < 0.8:
                d.feedback_row(tid, "thumbs", float(rng.random() < p), at=at)
            if rng.random() < 0.1:
                d.feedback_row(tid, "repeat_ask", -1.0, user=None, kind="implicit", at=at)
    d.save(store)


def _cli(url: str, *args: str, cwd: Path):
    return run_cli("--store", url, *args, cwd=cwd)


def _watch(url: str, cwd: Path, *extra: str):
    return _cli(url, "watch", "--once", "--now", NOW.isoformat(), "--json", *extra, cwd=cwd)


def test_watch_detects_injected_drop_and_logs_evidence(store_url: str, tmp_path: Path) -> None:
    store = open_store(store_url)
    traffic(store, drift=True)
    result = _watch(store_url, tmp_path)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert [(a["configuration"]["label"], a["metric"]) for a in report["alerts"]] == [("support@2", "thumbs_up_rate")]
    status = {(c["label"], c["metric"]): c["status"] for c in report["checks"]}
    assert status[("support@1", "thumbs_up_rate")] == "ok" and status[("support@2", "repeat_ask_rate")] == "ok"
    with store.read() as conn:
        (logged,) = adb.list_alerts(conn)
    ev = logged.evidence
    assert logged.window == "1h" and logged.baseline == "7d" and logged.configuration["prompt_version"] == 2
    assert ev["baseline"]["value"] == pytest.approx(0.75, abs=0.03) and ev["window"]["value"] < 0.65
    assert ev["p_adjusted"] < 0.01 and ev["tests_in_run"] == 4
    # examples are real thumbs-down traces of support@2 inside the window
    assert len(ev["example_trace_ids"]) == 5
    with store.read() as conn:
        from workbench.store.traces import get_trace

        for tid in ev["example_trace_ids"]:
            t = get_trace(conn, tid)
            assert t.prompt_version == 2 and NOW - timedelta(hours=1) <= t.created_at < NOW
    # the CUSUM over 5-minute buckets dates the change near where it was injected
    started = datetime.fromisoformat(ev["change"]["started_at"])
    assert abs(started - DRIFT_AT) <= timedelta(minutes=15)
    # a second run still exits 3 (the drop is still there) but does not log the same alert again
    again = _watch(store_url, tmp_path)
    assert again.returncode == 3 and json.loads(again.stdout)["repeats"] and not json.loads(again.stdout)["alerts"]
    with store.read() as conn:
        assert [a.id for a in adb.list_alerts(conn)] == [logged.id]
    store.close()


def test_aa_traffic_raises_no_alert(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    traffic(store, drift=False, seed=1)
    human = _cli(sqlite_url, "watch", "--once", "--now", NOW.isoformat(), cwd=tmp_path)
    assert human.returncode == 0, human.stdout + human.stderr
    assert "no alerts" in human.stdout and "thumbs_up_rate" in human.stdout
    with store.read() as conn:
        assert adb.list_alerts(conn) == []


def test_webhook_receives_alert_json(tmp_path: Path, sqlite_url: str, httpserver: HTTPServer) -> None:
    traffic(open_store(sqlite_url), drift=True)
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
    result = _cli(
        sqlite_url, "watch", "--once", "--now", NOW.isoformat(), "--webhook", httpserver.url_for("/hook"), cwd=tmp_path
    )
    assert result.returncode == 3, result.stderr
    assert "ALERT thumbs_up_rate" in result.stdout and "support@2" in result.stdout
    ((request, _),) = httpserver.log
    body = json.loads(request.get_data())
    assert body["alert"]["metric"] == "thumbs_up_rate" and "support@2" in body["text"]
    assert len(body["alert"]["evidence"]["example_trace_ids"]) == 5
    listed = json.loads(_cli(sqlite_url, "alerts", "--json", cwd=tmp_path).stdout)
    assert [a["id"] for a in listed] == [body["alert"]["id"]]


def test_webhook_down_still_logs_alert_and_reports(tmp_path: Path, sqlite_url: str, httpserver: HTTPServer) -> None:
    store = open_store(sqlite_url)
    traffic(store, drift=True)
    httpserver.expect_request("/down", method="POST").respond_with_data("busy", status=503)
    result = _cli(
        sqlite_url,
        "watch",
        "--once",
        "--now",
        NOW.isoformat(),
        "--json",
        "--webhook",
        httpserver.url_for("/down"),
        cwd=tmp_path,
    )
    assert result.returncode == 3
    hook = json.loads(result.stdout)["webhooks"][0]
    assert hook["ok"] is False and hook["attempts"] == 3 and "HTTP 503" in hook["error"]
    assert len(httpserver.log) == 3  # retried
    with store.read() as conn:
        assert [a.metric for a in adb.list_alerts(conn)] == ["thumbs_up_rate"]
    # nothing listening at all: connection refused, reported on stderr in the human output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with store.write() as conn:
        conn.execute(schema.alerts.delete())  # so this run logs (and posts) a new alert
    refused = _cli(
        sqlite_url,
        "watch",
        "--once",
        "--now",
        NOW.isoformat(),
        "--webhook",
        f"http://127.0.0.1:{port}/hook",
        cwd=tmp_path,
    )
    assert refused.returncode == 3
    assert "webhook failed" in refused.stderr and "after 3 attempts" in refused.stderr
    with store.read() as conn:
        assert len(adb.list_alerts(conn)) == 1


def test_compare_cli_json_and_table(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    d = Data()
    ab_traffic(
        d,
        np.random.default_rng(2),
        6000,
        {"A": 0.70, "B": 0.65},
        start=NOW - timedelta(days=1),
        span=timedelta(hours=20),
    )
    d.save(store)
    out = _cli(sqlite_url, "compare", "--by", "variant", "--baseline", "A", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = {r["configuration"]: r for r in report["rows"]}
    assert rows["B"]["verdict"] == "worse" and rows["A"]["verdict"] == "baseline"
    assert report["aggregates"]["A"]["n"] == 6000 and report["metric"] == "thumbs_up_rate"
    human = _cli(sqlite_url, "compare", "--by", "variant", "--since", "2026-02-01", cwd=tmp_path)
    assert human.returncode == 0 and "worse" in human.stdout and "Wilson" in human.stdout


def test_prompt_decisions_cli(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    reg = PromptRegistry(store)
    for v in (1, 2, 3):
        reg.register("support", f"v{v}: {{q}}")
    d = Data()
    ab_traffic(d, np.random.default_rng(5), 300, {"A": 0.7}, start=NOW - timedelta(days=1), span=timedelta(hours=5))
    ab_traffic(
        d,
        np.random.default_rng(6),
        300,
        {"A": 0.6},
        start=NOW - timedelta(days=1),
        span=timedelta(hours=5),
        prompt=("support", 2),
    )
    d.save(store)
    ok = _cli(
        sqlite_url,
        "prompts",
        "promote",
        "support@1",
        "--why",
        "thumbs up holds",
        "--actor",
        "alice",
        "--json",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    event = json.loads(ok.stdout)
    assert event["actor"] == "alice" and event["reason"] == "thumbs up holds"
    assert {r["configuration"] for r in event["evidence"]["comparison"]["rows"]} == {"support@1", "support@2"}
    assert reg.get("support").version == 1
    assert _cli(sqlite_url, "prompts", "rollout", "support@3", "--share", "0.1", cwd=tmp_path).returncode == 0
    versions = [reg.get("support", session_id=f"s{i}").version for i in range(300)]
    assert set(versions) == {1, 3}
    back = _cli(sqlite_url, "prompts", "rollback", "support", "--why", "canary looked bad", cwd=tmp_path)
    assert back.returncode == 0 and "rolled back to support@1" in back.stdout
    assert {reg.get("support", session_id=f"s{i}").version for i in range(300)} == {1}
    with store.read() as conn:
        log = adb.list_prompt_events(conn, "support")
    assert [(e.action, e.prompt_version, e.share) for e in log] == [
        ("promote", 1, None),
        ("rollout", 3, 0.1),
        ("rollback", 1, None),
    ]


BAD_INPUT = [
    (("compare", "--metric", "happiness"), 2, "error: unknown metric 'happiness'; use one of thumbs_up_rate"),
    (("compare", "--by", "team"), 2, "error: unknown --by 'team'"),
    (("compare", "--by", "variant", "--baseline", "Z"), 4, "error: no configuration 'Z' with thumbs_up_rate data"),
    (("watch", "--once", "--window", "1 hour"), 2, "error: bad duration '1 hour'"),
    (("watch", "--once", "--false-alarm", "2"), 2, "error: --false-alarm must be in (0, 1)"),
    (("watch", "--once"), 2, "error: no traces in the window"),
    (("prompts", "promote", "support@1"), 2, "error: --why is required"),
    (("prompts", "promote", "support@9", "--why", "x"), 4, "error: no prompt 'support@9'"),
    (("prompts", "rollout", "support@2", "--share", "0.1"), 2, "error: nothing is promoted for 'support'"),
    (("prompts", "rollback", "support", "--why", "x"), 2, "error: prompt 'support' has no earlier promoted"),
]


def test_bad_input_one_line(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    PromptRegistry(store).register("support", "v1 {q}")
    PromptRegistry(store).register("support", "v2 {q}")
    d = Data()
    d.feedback_row(d.trace(NOW - timedelta(days=30)), "thumbs", 1.0)  # old data only: the window is empty
    d.save(store)
    store.close()
    with ThreadPoolExecutor(4) as pool:  # independent read-only runs; subprocess start-up dominates
        results = list(pool.map(lambda case: _cli(sqlite_url, *case[0], cwd=tmp_path), BAD_INPUT))
    for (args, code, message), result in zip(BAD_INPUT, results, strict=True):
        assert result.returncode == code, (args, result.stdout + result.stderr)
        assert result.stderr.startswith(message), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    with open_store(sqlite_url).read() as conn:
        assert adb.list_prompt_events(conn) == [] and adb.list_alerts(conn) == []  # nothing half-recorded


def test_help_has_examples(tmp_path: Path) -> None:
    for command, example in (
        (("compare",), "workbench compare --by variant"),
        (("watch",), "workbench watch --once"),
        (("prompts", "rollout"), "--share 0.1"),
    ):
        result = run_cli(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0 and example in result.stdout


def test_watch_input_drift_against_golden_set(tmp_path: Path, sqlite_url: str) -> None:
    from workbench.golden import build_version

    usual = [
        "how do I reset my password",
        "my account is locked after failed logins",
        "change the email on my account",
        "password reset link expired",
        "enable two factor login",
        "delete my account and data",
        "update billing card on my account",
        "login code never arrives",
    ]
    odd = [
        "write a sonnet about the ocean at dawn",
        "explain quantum chromodynamics to a child",
        "best sourdough starter hydration ratio",
        "translate this poem into latin verse",
    ]
    build_version(
        tmp_path, "support-faq", [{"input": [{"role": "user", "content": q}]} for q in usual], tool_version="test"
    )
    rng = np.random.default_rng(3)
    d = Data()
    for _ in range(400):
        d.trace(
            NOW - timedelta(hours=1) - timedelta(seconds=float(rng.random() * 6 * 86400)),
            text=f"{usual[rng.integers(len(usual))]} please",
        )
    for i in range(120):
        pool = odd if i % 2 else usual
        d.trace(NOW - timedelta(seconds=float(rng.random() * 3500)), text=f"{pool[rng.integers(len(pool))]} please")
    d.save(open_store(sqlite_url))
    result = _cli(
        sqlite_url,
        "watch",
        "--once",
        "--now",
        NOW.isoformat(),
        "--json",
        "--golden",
        "support-faq",
        "--golden-root",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    (alert,) = report["alerts"]
    assert alert["metric"] == "input_drift:support-faq@v1" and alert["configuration"]["label"] == "all"
    assert alert["evidence"]["recent"]["successes"] >= 50 and alert["evidence"]["p_adjusted"] < 0.01
