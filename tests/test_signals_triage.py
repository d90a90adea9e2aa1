"""The triage detail says which detector produced each implicit signal and on what evidence: the
detector's name@version, a learned detector's probability against its threshold and what drove it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from workbench.models import Feedback
from workbench.tui.app import TriageApp
from workbench.tui.screens.detail import DetailScreen, _why_flagged

from .tui_sample import fixed_now, sample_store, settle


def _fb(signal: str, source: str, evidence: dict[str, Any]) -> Feedback:
    return Feedback(
        id=f"f-{signal}",
        trace_id="t",
        kind="implicit",
        signal=signal,
        value=-1.0,
        strength=0.8,
        source=source,
        evidence=evidence,
        idempotency_key=f"k-{signal}",
    )


def test_why_lines_name_the_detector_and_its_evidence() -> None:
    text: Text = _why_flagged(
        [
            _fb(
                "pushback",
                "pushback.learned@1",
                {
                    "detector": "learned",
                    "probability": 0.83,
                    "threshold": 0.45,
                    "why": {"reply wording": 1.9, "reply_has_contrast": 0.6},
                },
            ),
            _fb("abandon", "abandon@2", {"refusal": True, "detector": "lexical"}),
        ]
    )
    lines = text.plain.splitlines()
    assert lines[0] == "pushback by pushback.learned@1 (p 0.83 >= 0.45): reply wording +1.9, reply_has_contrast +0.6"
    assert lines[1] == "abandon by abandon@2: refusal True"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    st = sample_store(tmp_path)
    yield st
    st.close()


async def test_detail_screen_shows_why_a_candidate_is_there(store: Any) -> None:
    app = TriageApp(store, actor="tester", now=fixed_now)
    async with app.run_test(size=(140, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        assert "repeat_ask by repeat_ask@1" in screen.section_text("Why it is here")
