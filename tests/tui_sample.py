"""A small, fully deterministic store for the triage app tests and snapshots (fixed ids and times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.models import Candidate
from workbench.store import Store, open_store
from workbench.store.candidates import upsert_candidates
from workbench.store.schema import feedback, judge_scores
from workbench.store.traces import insert_traces

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINI = "gpt-4o-mini-2024-07-18"
FOUR = "gpt-4o-2024-08-06"

QUESTIONS = [
    "How do I reset my password?",
    "Can I get a refund for an annual plan?",
    "Why was my card declined?",
    "How do I export my data to CSV?",
    "The app crashes when I upload a photo",
    "How do I change the email on my account?",
    "Is there a student discount?",
    "How do I delete my account?",
    "Where can I download my invoices?",
    "Does the API support streaming?",
    "How do I add a team member?",
    "Can I pause my subscription?",
]


def _code(model: str) -> str:
    return "m" if model == MINI else "f"


async def settle(pilot: Any) -> None:
    """Wait until a key's handlers, any store queries they started, and the repaint are done."""
    for _ in range(20):
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            break
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def fixed_now() -> datetime:
    return NOW


def _trace(tid: str, at: datetime, version: int, model: str, question: str, answer: str, user: str) -> dict[str, Any]:
    return {
        "id": tid,
        "created_at": at,
        "operation": "chat",
        "stream": False,
        "status": "ok",
        "session_id": f"s-{user}",
        "user_id": user,
        "prompt_name": "support-answer",
        "prompt_version": version,
        "model_requested": model.rsplit("-", 3)[0],
        "model_resolved": model,
        "params": {},
        "tags": [],
        "metadata": {},
        "input": [{"role": "system", "content": "Answer politely."}, {"role": "user", "content": question}],
        "output_text": answer,
    }


def _fb(
    fid: str,
    tid: str,
    kind: str,
    signal: str,
    at: datetime,
    *,
    value: float | None = None,
    text: str | None = None,
    user: str | None = None,
    evidence: dict[str, Any] | None = None,
    strength: float = 1.0,
    source: str = "app",
) -> dict[str, Any]:
    return {
        "id": fid,
        "trace_id": tid,
        "kind": kind,
        "signal": signal,
        "value": value,
        "text": text,
        "strength": strength,
        "source": source,
        "user_id": user,
        "evidence": evidence or {},
        "metadata": {},
        "idempotency_key": fid,
        "created_at": at,
    }


def populate(store: Store, *, overview: bool = True) -> None:
    """Traces for two prompt versions (v2 clearly worse on thumbs), feedback, judge scores, 12 candidates."""
    traces, fbs = [], []
    start = NOW - timedelta(days=10)
    for version, model, ups in ((1, MINI, 34), (2, MINI, 12), (2, FOUR, 30)):
        for i in range(60 if overview else 12):
            tid = f"t{version}{_code(model)}{i:03d}"
            q = QUESTIONS[i % len(QUESTIONS)]
            day = version + (model == FOUR)  # gpt-4o came after gpt-4o-mini on v2
            traces.append(
                _trace(
                    tid,
                    start + timedelta(hours=i, days=day),
                    version,
                    model,
                    q,
                    f"Sure: {q.lower()} is done in Settings.",
                    f"u{i % 7}",
                )
            )
            if i < 40 and overview:
                fbs.append(
                    _fb(
                        f"f-th-{tid}",
                        tid,
                        "explicit",
                        "thumbs",
                        start + timedelta(hours=i + 1, days=version),
                        value=1.0 if i < ups else 0.0,
                        user=f"u{i % 7}",
                    )
                )
            if i % 9 == 0:
                fbs.append(
                    _fb(
                        f"f-ra-{tid}",
                        tid,
                        "implicit",
                        "repeat_ask",
                        start + timedelta(hours=i + 2),
                        strength=0.8,
                        source="repeat_ask@1",
                        evidence={"trace_ids": [tid], "similarity": 0.91},
                    )
                )
    cands = []
    for n in range(12):
        version, model = (2, MINI) if n % 3 else (1, MINI)
        members = [f"t{version}{_code(model)}{n:03d}", f"t{version}{_code(model)}{n + 12:03d}"]
        signal = ("thumbs", "repeat_ask", "correction", "pushback")[n % 4]
        cands.append(
            Candidate(
                id=f"cand-{n:02d}",
                cluster_key=f"cluster-{n:02d}",
                representative_trace_id=members[0],
                member_trace_ids=members,
                feedback_ids=[f"f-th-{members[0]}"],
                count=len(members),
                input=[{"role": "system", "content": "Answer politely."}, {"role": "user", "content": QUESTIONS[n]}],
                output_text=f"Sure: {QUESTIONS[n].lower()} is done in Settings.",
                signals={signal: 1.0},
                primary_signal=signal,
                users=1 + n % 4,
                priority=round(0.95 - n * 0.07, 2),
                prompt_name="support-answer",
                prompt_version=version,
                model_resolved=model,
                created_at=NOW - timedelta(hours=3 + 7 * n),
                updated_at=NOW - timedelta(hours=3 + 7 * n),
            )
        )
    # candidate 2 carries a user's correction; candidate 0 has a judge score
    fbs.append(
        _fb(
            "f-corr-2",
            cands[2].representative_trace_id,
            "explicit",
            "correction",
            NOW - timedelta(hours=20),
            text="Refunds for annual plans are pro-rated within 30 days.",
            user="u2",
        )
    )
    with store.write() as conn:
        insert_traces(conn, traces)
        conn.execute(feedback.insert(), fbs)
        conn.execute(
            judge_scores.insert(),
            [
                {
                    "id": "js-0",
                    "trace_id": cands[0].representative_trace_id,
                    "rubric_id": "helpfulness",
                    "rubric_version": 1,
                    "judge_model": "gpt-4o-2024-08-06",
                    "score": 2.0,
                    "raw_answer": "Score: 2. Vague.",
                    "parse_status": "ok",
                    "cache_key": "ck-0",
                    "created_at": NOW - timedelta(hours=1),
                }
            ],
        )
        upsert_candidates(conn, cands)


def sample_store(path: Path, **kwargs: Any) -> Store:
    store = open_store(path / "wb.db")
    populate(store, **kwargs)
    return store
