"""Attribution on a real store (SQLite and PostgreSQL): the SQL aggregates equal a plain Python count of
the same rows, compare finds a 5-point drop, PPI from SQL sums equals the calibration package's PPI,
and the prompt decision log drives ``wb.prompts.get`` (promote, rollback, staged rollout)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import stats

from workbench.attribution import decisions
from workbench.attribution.service import (
    compare_configurations,
    config_label,
    parse_metric,
    ppi_estimate,
)
from workbench.errors import NotFoundError, StatisticsError, ValidationError
from workbench.judge.calibration import ppi_mean
from workbench.prompts import PromptRegistry, rollout_position
from workbench.store import Store, open_store, schema
from workbench.store import attribution as adb
from workbench.store.traces import insert_traces

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_TRACE_COLUMNS = [c.name for c in schema.traces.columns]
_FEEDBACK_COLUMNS = [c.name for c in schema.feedback.columns]


# ---------------------------------------------------------------- data builders (shared with test_compare_cli)


class Data:
    """Builds trace, feedback and judge rows with increasing ids (so "latest vote" is well defined)."""

    def __init__(self) -> None:
        self.traces: list[dict[str, Any]] = []
        self.feedback: list[dict[str, Any]] = []
        self.judge: list[dict[str, Any]] = []
        self._seq = 0

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:025d}"

    def trace(
        self,
        at: datetime,
        *,
        prompt: tuple[str | None, int | None] = ("support", 1),
        variant: str | None = "A",
        model: str | None = "gpt-4o-2024-08-06",
        fingerprint: str | None = "fp_1",
        requested: str = "gpt-4o",
        session: str | None = None,
        text: str = "how do I reset my password?",
    ) -> str:
        row = dict.fromkeys(_TRACE_COLUMNS)
        row.update(
            id=self._id("t"),
            created_at=at,
            operation="chat",
            session_id=session,
            user_id="u-1",
            prompt_name=prompt[0],
            prompt_version=prompt[1],
            variant=variant,
            model_requested=requested,
            model_resolved=model,
            system_fingerprint=fingerprint,
            params={},
            tags=[],
            metadata={},
            input=[{"role": "user", "content": text}],
            output_text="ok",
            stream=False,
            status="ok",
        )
        self.traces.append(row)
        return row["id"]

    def feedback_row(
        self,
        trace_id: str,
        signal: str,
        value: float | None,
        *,
        user: str | None = "u-1",
        kind: str = "explicit",
        at: datetime | None = None,
    ) -> str:
        row = dict.fromkeys(_FEEDBACK_COLUMNS)
        row.update(
            id=self._id("f"),
            trace_id=trace_id,
            kind=kind,
            signal=signal,
            value=value,
            strength=1.0,
            source=f"user:{user}" if user else ("repeat_ask@1" if kind == "implicit" else "api"),
            user_id=user,
            evidence={},
            metadata={},
            created_at=at or NOW,
        )
        self.feedback.append(row)
        return row["id"]

    def judge_row(
        self, trace_id: str, rubric: str, score: float | None, *, status: str = "ok", other: str | None = None
    ) -> None:
        self.judge.append(
            {
                "id": self._id("j"),
                "trace_id": trace_id,
                "rubric_id": rubric,
                "rubric_version": 1,
                "judge_model": "judge-m",
                "judge_model_version": None,
                "score": score,
                "raw_answer": None,
                "parse_status": status,
                "parse_error": None,
                "order": None,
                "other_trace_id": other,
                "prompt_tokens": None,
                "completion_tokens": None,
                "cost": None,
                "cache_key": self._id("k"),
                "created_at": NOW,
            }
        )

    def save(self, store: Store) -> None:
        with store.write() as conn:
            for i in range(0, len(self.traces), 5000):
                insert_traces(conn, self.traces[i : i + 5000])
            for table, rows in ((schema.feedback, self.feedback), (schema.judge_scores, self.judge)):
                for i in range(0, len(rows), 5000):
                    if rows[i : i + 5000]:
                        conn.execute(table.insert(), rows[i : i + 5000])
        self.traces, self.feedback, self.judge = [], [], []


def ab_traffic(
    data: Data,
    rng: np.random.Generator,
    n_per_arm: int,
    rates: dict[str, float],
    *,
    start: datetime,
    span: timedelta,
    prompt: tuple[str, int] = ("support", 1),
) -> None:
    """Variants with given thumbs-up rates, one vote per trace, spread uniformly over ``span``."""
    for variant, p in rates.items():
        offsets = np.sort(rng.random(n_per_arm)) * span.total_seconds()
        ups = rng.random(n_per_arm) < p
        for off, up in zip(offsets, ups, strict=True):
            tid = data.trace(start + timedelta(seconds=float(off)), variant=variant, prompt=prompt)
            data.feedback_row(tid, "thumbs", 1.0 if up else 0.0)


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    yield s
    s.close()


def mixed_data(seed: int = 3) -> Data:
    """Several configurations, changed votes, anonymous voters, duplicate implicit flags, odd judge rows."""
    rng = np.random.default_rng(seed)
    d = Data()
    prompts = [("support", 1), ("support", 2), (None, None)]
    models = [("gpt-4o-2024-08-06", "fp_1"), ("gpt-4o-2024-08-06", "fp_2"), (None, None)]
    for i in range(500):
        at = NOW - timedelta(hours=72) + timedelta(seconds=float(rng.random() * 72 * 3600))
        p, m = prompts[i % 3], models[rng.integers(3)]
        tid = d.trace(
            at,
            prompt=p,
            variant=["A", "B", None][rng.integers(3)],
            model=m[0],
            fingerprint=m[1],
            requested=["gpt-4o", "gpt-4o-2024-08-06"][rng.integers(2)],
        )  # two aliases, one model
        for user in rng.choice(["u-1", "u-2", None], size=rng.integers(0, 3), replace=False):
            user = None if user is None else str(user)
            for _ in range(rng.integers(1, 3)):  # a second row is a changed vote: only the latest counts
                d.feedback_row(tid, "thumbs", float(rng.random() < 0.6), user=user)
            if rng.random() < 0.5:
                d.feedback_row(tid, "rating", float(rng.integers(1, 6)), user=user)
        if rng.random() < 0.05:
            d.feedback_row(tid, "thumbs", None, user="u-9")  # no value: not a vote
        for signal in ("repeat_ask", "abandon"):
            for _ in range(int(rng.random() < 0.2) * rng.integers(1, 3)):
                d.feedback_row(tid, signal, -1.0, user=None, kind="implicit")
        if rng.random() < 0.7:
            d.judge_row(tid, "helpful", float(rng.integers(1, 6)))
            if rng.random() < 0.3:
                d.judge_row(tid, "helpful", float(rng.integers(1, 6)))  # two judge runs: their mean
            if rng.random() < 0.2:
                d.judge_row(tid, "helpful", None, status="unparsed")
            if rng.random() < 0.1:
                d.judge_row(tid, "helpful", 1.0, other=tid)  # pairwise rows are not pointwise scores
            d.judge_row(tid, "other-rubric", 5.0)
    return d


def _key(row: dict[str, Any], by: str) -> tuple[Any, ...]:
    if by == "prompt_version":
        return (row["prompt_name"], row["prompt_version"])
    if by == "model_version":
        return (row["model_resolved"] or row["model_requested"], row["system_fingerprint"])
    if by == "variant":
        return (row["variant"],)
    return ()


def python_aggregates(
    d: Data, by: str, split_at: datetime | None = None, seconds: float | None = None
) -> dict[str, dict[tuple[Any, ...], list[float]]]:
    """The oracle: the same numbers by plain loops over the rows."""
    traces = {t["id"]: t for t in d.traces}

    def group(tid: str) -> tuple[Any, ...]:
        t = traces[tid]
        if split_at is None:
            return (*_key(t, by), None)
        if t["created_at"] < split_at:
            return (*_key(t, by), -1)
        return (*_key(t, by), math.floor((t["created_at"] - split_at).total_seconds() / seconds) if seconds else 0)

    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for f in d.feedback:
        k = (f["trace_id"], f["signal"], f["user_id"] or f["source"])
        if k not in latest or f["id"] > latest[k]["id"]:
            latest[k] = f
    out: dict[str, dict[tuple[Any, ...], list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0, 0.0]))
    ratings: dict[str, list[float]] = defaultdict(list)
    for (tid, signal, _), f in latest.items():
        if f["value"] is None:
            continue  # a row without a value is not a vote
        if signal == "thumbs":
            agg = out["thumbs"][group(tid)]
            agg[0] += 1
            agg[1] += f["value"] > 0
        elif signal == "rating":
            agg = out["rating"][group(tid)]
            agg[0] += 1
            agg[1] += f["value"]
            agg[2] += f["value"] ** 2
            ratings[tid].append(f["value"])
    for signal in ("repeat_ask", "abandon"):
        flagged = {f["trace_id"] for f in d.feedback if f["signal"] == signal and f["kind"] == "implicit"}
        for tid in traces:
            agg = out[signal][group(tid)]
            agg[0] += 1
            agg[1] += tid in flagged
    scores: dict[str, list[float]] = defaultdict(list)
    for j in d.judge:
        if (
            j["rubric_id"] == "helpful"
            and j["parse_status"] == "ok"
            and j["score"] is not None
            and not j["other_trace_id"]
        ):
            scores[j["trace_id"]].append(j["score"])
    for tid, s in scores.items():
        f = float(np.mean(s))
        agg = out["judge"][group(tid)]
        agg[0] += 1
        agg[1] += f
        agg[2] += f * f
        if ratings.get(tid):
            y = float(np.mean(ratings[tid]))
            agg.extend([0.0] * (8 - len(agg)))
            agg[3] += 1
            agg[4] += y - f
            agg[5] += (y - f) ** 2
            agg[6] += f
            agg[7] += f * f
    return out


def _as_dict(rows: list[Any], judge: bool = False) -> dict[tuple[Any, ...], list[float]]:
    if judge:
        return {
            (*r.key, r.bucket): [r.n, r.f_total, r.f_sq, r.n_labeled, r.resid_total, r.resid_sq, r.lf_total, r.lf_sq]
            for r in rows
        }
    return {(*r.key, r.bucket): [r.n, r.total, r.total_sq] for r in rows}


def _check_equal(sql: dict[tuple[Any, ...], list[float]], py: dict[tuple[Any, ...], list[float]]) -> None:
    assert set(sql) == set(py)
    for k in py:
        want = py[k] + [0.0] * (len(sql[k]) - len(py[k]))
        assert sql[k][0] == want[0], k  # counts are exact
        assert sql[k] == pytest.approx(want, rel=1e-9, abs=1e-9), k


# ---------------------------------------------------------------- SQL aggregates == Python count


@pytest.mark.parametrize("by", adb.BY)
def test_sql_aggregates_equal_python_count(store: Store, by: str) -> None:
    d = mixed_data()
    py = python_aggregates(d, by)
    split_at, seconds = NOW - timedelta(hours=20), 3 * 3600.0
    py_buckets = python_aggregates(d, by, split_at, seconds)
    d.save(store)
    with store.read() as conn:
        _check_equal(_as_dict(adb.vote_groups(conn, by)), py["thumbs"])
        _check_equal(_as_dict(adb.mean_groups(conn, by)), py["rating"])
        for signal in ("repeat_ask", "abandon"):
            _check_equal(_as_dict(adb.rate_groups(conn, by, signal=signal)), py[signal])
        _check_equal(_as_dict(adb.judge_groups(conn, by, rubric_id="helpful"), judge=True), py["judge"])
        # Time buckets: -1 before split_at, then one per `seconds` (the same floor as the oracle).
        opts = {"since": NOW - timedelta(hours=72), "until": NOW, "split_at": split_at, "bucket_seconds": seconds}
        _check_equal(_as_dict(adb.vote_groups(conn, by, **opts)), py_buckets["thumbs"])
        _check_equal(_as_dict(adb.rate_groups(conn, by, signal="abandon", **opts)), py_buckets["abandon"])
        _check_equal(_as_dict(adb.judge_groups(conn, by, rubric_id="helpful", **opts), judge=True), py_buckets["judge"])


def test_since_until_and_prompt_filters(store: Store) -> None:
    d = mixed_data(seed=8)
    cut = NOW - timedelta(hours=30)
    kept = Data()
    kept.traces = [t for t in d.traces if t["created_at"] >= cut and t["prompt_name"] == "support"]
    ids = {t["id"] for t in kept.traces}
    kept.feedback = [f for f in d.feedback if f["trace_id"] in ids]
    kept.judge = [j for j in d.judge if j["trace_id"] in ids]
    py = python_aggregates(kept, "prompt_version")
    d.save(store)
    with store.read() as conn:
        got = adb.vote_groups(conn, "prompt_version", since=cut, until=NOW + timedelta(1), prompt_name="support")
        _check_equal(_as_dict(got), py["thumbs"])
        assert adb.vote_groups(conn, "variant", since=NOW + timedelta(hours=1)) == []


def test_ppi_from_sql_sums_equals_calibration_ppi(store: Store) -> None:
    """Oracle: workbench.judge.calibration.ppi_mean (lam=1 is plain PPI) on the raw per-trace values."""
    rng = np.random.default_rng(4)
    d = Data()
    y_l, f_l, f_u = [], [], []
    for i in range(300):
        tid = d.trace(NOW - timedelta(minutes=i), variant="A")
        truth = float(rng.integers(1, 6))
        f = float(np.clip(truth + rng.normal(0.7, 0.8), 1, 5))  # a lenient judge: PPI removes the bias
        d.judge_row(tid, "helpful", f)
        if i % 5 == 0:
            d.feedback_row(tid, "rating", truth)
            y_l.append(truth)
            f_l.append(f)
        else:
            f_u.append(f)
    d.save(store)
    with store.read() as conn:
        (row,) = adb.judge_groups(conn, "variant", rubric_id="helpful")
    est = ppi_estimate(row)
    oracle = ppi_mean(y_l, f_l, f_u, lam=1.0).ppi
    assert est is not None and est.n == 300
    assert est.estimate == pytest.approx(oracle.estimate, rel=1e-9)
    assert est.se == pytest.approx(oracle.se, rel=1e-9)
    report = compare_configurations(store, "variant", "judge:helpful")
    assert report.comparison.metric_kind == "estimate" and "PPI" in report.notes[0]
    assert report.comparison.rows[0].value == pytest.approx(oracle.estimate)


# ---------------------------------------------------------------- compare verdicts from SQL


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compare_finds_five_point_drop(store: Store, seed: int) -> None:
    # 6000 per arm gives 99.99% power for 70% vs 65% (n_per_arm_rates(0.65, 0.70, power=0.9999) = 5875),
    # so a miss on any of these seeds would point at the SQL path, not at chance.
    rng = np.random.default_rng(seed)
    d = Data()
    ab_traffic(d, rng, 6000, {"A": 0.70, "B": 0.65}, start=NOW - timedelta(days=2), span=timedelta(days=2))
    py = python_aggregates(d, "variant")["thumbs"]
    d.save(store)
    report = compare_configurations(store, "variant", "thumbs_up_rate", baseline="A")
    b = report.comparison.row("B")
    assert (report.aggregates["B"].n, report.aggregates["B"].successes) == (py[("B", None)][0], py[("B", None)][1])
    # independent oracle for the test itself: scipy's two-proportion chi-square (= pooled z test squared)
    table = [[py[(v, None)][1], py[(v, None)][0] - py[(v, None)][1]] for v in ("B", "A")]
    assert b.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, rel=1e-6)
    assert b.verdict == "worse" and report.comparison.winner is None
    assert b.diff_ci is not None and b.diff_ci.high < 0


def test_compare_says_too_little_data_and_how_much_more(store: Store) -> None:
    rng = np.random.default_rng(7)
    d = Data()
    ab_traffic(d, rng, 150, {"A": 0.70, "B": 0.66}, start=NOW - timedelta(days=1), span=timedelta(hours=20))
    d.save(store)
    report = compare_configurations(store, "variant", "thumbs_up_rate", baseline="A")
    b = report.comparison.row("B")
    assert b.verdict == "too little data" and b.additional_per_arm and b.additional_per_arm > 500
    assert "more observations per arm" in report.comparison.summary


def test_model_version_splits_on_fingerprint(store: Store) -> None:
    """A silent provider update (same model name, new system_fingerprint) is its own configuration."""
    d = Data()
    for i in range(40):
        tid = d.trace(NOW - timedelta(hours=i), fingerprint="fp_old" if i >= 20 else "fp_new")
        d.feedback_row(tid, "thumbs", 1.0 if i % 3 else 0.0)
    err = d.trace(NOW, model=None, fingerprint=None)  # an error trace has no resolved model
    d.feedback_row(err, "thumbs", 0.0)
    d.save(store)
    report = compare_configurations(store, "model_version", "thumbs_up_rate")
    assert sorted(report.aggregates) == ["gpt-4o", "gpt-4o-2024-08-06/fp_new", "gpt-4o-2024-08-06/fp_old"]
    assert {report.aggregates[k].n for k in report.aggregates} == {20, 1}


def test_compare_bad_input(store: Store) -> None:
    with pytest.raises(ValidationError, match="unknown metric 'happiness'"):
        compare_configurations(store, "variant", "happiness")
    with pytest.raises(ValidationError, match="unknown --by 'team'"):
        compare_configurations(store, "team", "thumbs_up_rate")
    with pytest.raises(StatisticsError, match="no thumbs_up_rate data"):
        compare_configurations(store, "variant", "thumbs_up_rate")
    d = Data()
    d.feedback_row(d.trace(NOW), "thumbs", 1.0)
    d.save(store)
    with pytest.raises(NotFoundError, match=r"no configuration 'Z'.*known: A"):
        compare_configurations(store, "variant", "thumbs_up_rate", baseline="Z")
    with pytest.raises(StatisticsError, match="no judge:nope data"):
        compare_configurations(store, "variant", "judge:nope")


def test_labels_and_metric_names() -> None:
    assert config_label("prompt_version", ("support", 2)) == "support@2"
    assert config_label("prompt_version", (None, None)) == "(no prompt)"
    assert config_label("model_version", ("m", None)) == "m"
    assert config_label("variant", (None,)) == "(none)"
    assert parse_metric("repeat_ask_rate").higher_is_better is False
    assert parse_metric("judge:tone").rubric == "tone"
    with pytest.raises(ValidationError):
        parse_metric("judge:")


# ---------------------------------------------------------------- decision log and wb.prompts.get


def _prompts(store: Store, n: int = 3) -> PromptRegistry:
    reg = PromptRegistry(store)
    for v in range(1, n + 1):
        reg.register("support", f"Answer, version {v}: {{question}}")
    return reg


def test_promote_rollback_follow_get(store: Store) -> None:
    reg = _prompts(store)
    assert reg.get("support").version == 3  # nothing promoted: the latest
    d = Data()
    rng = np.random.default_rng(0)
    for v, p in ((1, 0.6), (2, 0.7)):
        for i in range(200):
            tid = d.trace(NOW - timedelta(minutes=i), prompt=("support", v))
            d.feedback_row(tid, "thumbs", float(rng.random() < p))
    d.save(store)
    event = decisions.promote(store, "support@2", why="better thumbs", actor="alice")
    assert reg.get("support").version == 2 and reg.get("support", session_id="s-9").version == 2
    assert reg.get("support", 1).version == 1 and reg.get("support@3").version == 3  # explicit versions win
    comparison = event.evidence["comparison"]
    assert comparison["metric"] == "thumbs_up_rate" and comparison["by"] == "prompt_version"
    assert {r["configuration"] for r in comparison["rows"]} == {"support@1", "support@2"}
    assert event.evidence["before"] == {"promoted": None, "rollout": None, "share": None}
    decisions.promote(store, "support@3", why="new wording", actor="bob")
    assert reg.get("support").version == 3
    back = decisions.rollback(store, "support", why="v3 complaints", actor="carol")
    assert back.prompt_version == 2 and reg.get("support").version == 2
    decisions.rollback(store, "support", to=1, why="go to the start")
    assert reg.get("support").version == 1
    log = decisions.history(store, "support")
    assert [(e.action, e.prompt_version, e.actor, e.reason) for e in log[:3]] == [
        ("promote", 2, "alice", "better thumbs"),
        ("promote", 3, "bob", "new wording"),
        ("rollback", 2, "carol", "v3 complaints"),
    ]
    assert all(e.created_at.tzinfo is not None for e in log)


def test_staged_rollout_share_is_stable_per_session(store: Store) -> None:
    reg = _prompts(store, 2)
    decisions.promote(store, "support@1", why="baseline", actor="a")
    event = decisions.rollout(store, "support@2", share=0.1, actor="a")
    assert event.share == 0.1 and event.evidence["comparison"] is None  # no traffic yet: says why
    assert "no thumbs_up_rate data" in event.evidence["comparison_note"]
    # the share over many session ids is ~10% (binomial band holding 99.9%) ...
    sessions = [f"session-{i}" for i in range(20000)]
    inside = {s for s in sessions if rollout_position("support", 2, s) < 0.1}
    lo, hi = stats.binom.ppf(0.0005, len(sessions), 0.1), stats.binom.isf(0.0005, len(sessions), 0.1)
    assert lo <= len(inside) <= hi
    # ... and get() hands out exactly that split, the same answer every time for a session
    sample = sessions[:400]
    first = {s: reg.get("support", session_id=s).version for s in sample}
    assert first == {s: 2 if s in inside else 1 for s in sample}
    assert all(reg.get("support", session_id=s).version == v for s, v in list(first.items())[:100])
    assert reg.get("support").version == 1  # no session id: the promoted version
    # raising the share keeps the sessions already in the rollout
    decisions.rollout(store, "support@2", share=0.5, actor="a")
    wider = {s for s in sample if reg.get("support", session_id=s).version == 2}
    assert inside & set(sample) <= wider and len(wider) > 2 * len(inside & set(sample))
    decisions.rollback(store, "support", why="canary failed")  # ends the rollout, promoted stays
    assert all(reg.get("support", session_id=s).version == 1 for s in sample[:100])
    decisions.rollout(store, "support@2", share=1.0, why="all in")
    decisions.promote(store, "support@2", why="done")
    assert reg.get("support", session_id="x").version == 2 and adb_state(store).rollout is None


def adb_state(store: Store) -> adb.PromptState:
    with store.read() as conn:
        return adb.prompt_state(conn, "support")


def test_decision_bad_input(store: Store) -> None:
    _prompts(store, 2)
    with pytest.raises(ValidationError, match="--why is required"):
        decisions.promote(store, "support@1", why=" ")
    with pytest.raises(ValidationError, match="give a version"):
        decisions.promote(store, "support", why="x")
    with pytest.raises(NotFoundError, match="no prompt 'support@9'"):
        decisions.promote(store, "support@9", why="x")
    with pytest.raises(NotFoundError, match="no prompt named 'nope'"):
        decisions.promote(store, "nope@1", why="x")
    with pytest.raises(ValidationError, match="nothing is promoted"):
        decisions.rollout(store, "support@2", share=0.1)
    decisions.promote(store, "support@1", why="x")
    with pytest.raises(ValidationError, match="--share must be a fraction"):
        decisions.rollout(store, "support@2", share=1.5)
    with pytest.raises(ValidationError, match="already the promoted"):
        decisions.rollout(store, "support@1", share=0.2)
    with pytest.raises(ValidationError, match="no earlier promoted version"):
        decisions.rollback(store, "support", why="x")
    with pytest.raises(NotFoundError, match="no prompt 'support@7'"):
        decisions.rollback(store, "support", to=7, why="x")
    assert [e.action for e in decisions.history(store, "support")] == ["promote"]  # nothing half-recorded
