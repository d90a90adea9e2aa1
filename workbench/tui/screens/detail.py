"""One candidate in full: conversation, output, every signal with its evidence, judge scores, the user's
correction, the expected output, the cluster's member traces, and the decision history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Static

from ...errors import NotFoundError
from ...store.candidates import CandidateDetail, candidate_detail
from .. import keymap
from ..decisions import Outcome, describe_error
from ..format import content_text, last_user_text, one_line, render_messages
from ..widgets.detail_view import DetailView
from ..widgets.keybar import KeyBar
from ..widgets.queue_list import STATUS_STYLE
from .actions import TriageActions

if TYPE_CHECKING:
    from ..app import TriageApp

__all__ = ["DetailScreen"]


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _table(*columns: str) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", expand=True)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


class DetailScreen(TriageActions, Screen[None]):
    BINDINGS = keymap.DETAIL
    app: TriageApp

    def __init__(self, candidate_id: str) -> None:
        super().__init__(id="detail-screen")
        self.candidate_id = candidate_id
        self.detail: CandidateDetail | None = None
        self.gone = False

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title")
        yield Static(id="detail-banner")
        yield DetailView(id="detail-body")
        yield KeyBar()

    def on_mount(self) -> None:
        self.show(self.candidate_id)
        self.query_one(DetailView).focus()

    # ---------------------------------------------------------------- loading and rendering
    def show(self, candidate_id: str) -> None:
        self.candidate_id = candidate_id
        try:
            with self.app.store.read() as conn:
                self.detail = candidate_detail(conn, candidate_id)
            self.gone = False
        except NotFoundError:
            self._mark_gone()
            return
        except Exception as exc:
            self.app.report_error(f"could not load {candidate_id}: {describe_error(exc)}")
            return
        banner = self.query_one("#detail-banner")
        if banner.display:
            banner.display = False
        self._fill()

    def _mark_gone(self) -> None:
        self.gone = True
        banner = self.query_one("#detail-banner", Static)
        banner.update(
            Text(
                f"Candidate {self.candidate_id} no longer exists in the store (deleted, purged or "
                "rebuilt). Nothing more can be recorded for it; your earlier decisions are kept. "
                "Press esc to go back.",
                style="bold",
            )
        )
        banner.display = True

    def section_text(self, title_prefix: str) -> str:
        """The plain text of the section whose title starts with ``title_prefix`` (for tests)."""
        view = self.query_one(DetailView)
        for title, body in view.sections:
            if title.startswith(title_prefix):
                lines = self.app.console.render_lines(body, self.app.console.options.update_width(view._width or 120))
                return "\n".join("".join(seg.text for seg in line) for line in lines)
        raise KeyError(title_prefix)

    def _fill(self) -> None:
        assert self.detail is not None
        d = self.detail
        c = d.candidate
        title = Text.assemble(
            (f"{c.id}  ", "bold"),
            (c.status, STATUS_STYLE.get(c.status, "") or "bold"),
            f"  priority {c.priority:.2f} · {c.primary_signal or 'no signal'} · {c.users} user(s) · "
            f"{c.count} trace(s) · {c.prompt_name or '(no prompt)'}"
            f"{'@' + str(c.prompt_version) if c.prompt_name else ''} · {c.model_resolved or '(no model)'}",
        )
        self.query_one("#detail-title", Static).update(title, layout=False)
        sections: list[tuple[str, RenderableType]] = []
        meta = Text()
        meta.append("signals  ", style="bold")
        meta.append(", ".join(f"{k} {v:g}" for k, v in sorted(c.signals.items())) or "none")
        meta.append("\nlabels   ", style="bold")
        meta.append(", ".join(c.labels) or "none")
        meta.append("\nnotes    ", style="bold")
        meta.append(c.notes or "none")
        meta.append(
            f"\ncluster  {c.cluster_key} · created {_when(c.created_at)} · updated {_when(c.updated_at)}", style="dim"
        )
        sections.append(("Candidate", meta))
        why = _why_flagged(d.feedback)
        if why.plain:
            sections.append(("Why it is here (detector and evidence)", why))
        sections.append(("Input messages", render_messages(c.input)))
        sections.append(("Output", Text(c.output_text or "(no output)")))

        expected = Text()
        corrections = [f for f in d.feedback if f.signal == "correction" and f.text]
        for fb in corrections:
            expected.append(f"correction by {fb.user_id or fb.source} ({_when(fb.created_at)}):\n", style="bold")
            expected.append(f"{fb.text}\n\n")
        expected.append("expected output: ", style="bold")
        expected.append(
            c.expected_output or "(none yet; press e to write one)", style="" if c.expected_output else "dim"
        )
        sections.append(("Correction and expected output", expected))

        fb_table = _table("when", "kind", "signal", "value", "strength", "source", "user", "text / evidence")
        for fb in d.feedback:
            extra = " ".join(
                x
                for x in (
                    one_line(fb.text, 200) if fb.text else "",
                    orjson.dumps(fb.evidence).decode() if fb.evidence else "",
                )
                if x
            )
            fb_table.add_row(
                _when(fb.created_at),
                fb.kind,
                fb.signal,
                "" if fb.value is None else f"{fb.value:g}",
                f"{fb.strength:.2f}",
                fb.source,
                fb.user_id or "",
                one_line(extra, 400),
            )
        sections.append(
            (f"Feedback and signals ({len(d.feedback)})", fb_table if d.feedback else Text("none", style="dim"))
        )

        if d.judge_scores:
            judge = _table("rubric", "judge", "score", "parse", "trace", "answer")
            for s in d.judge_scores:
                judge.add_row(
                    f"{s.rubric_id}@{s.rubric_version}",
                    s.judge_model,
                    "" if s.score is None else f"{s.score:g}",
                    s.parse_status,
                    s.trace_id,
                    one_line(s.raw_answer or s.parse_error, 120),
                )
            sections.append((f"Judge scores ({len(d.judge_scores)})", judge))
        else:
            sections.append(("Judge scores", Text("no judge scores for these traces", style="dim")))

        members = _table("trace", "when", "user", "session", "asked", "answered")
        for t in d.members:
            members.add_row(
                t.id,
                _when(t.created_at),
                t.user_id or "",
                t.session_id or "",
                one_line(last_user_text(t.input), 80),
                one_line(content_text(t.output_text), 80),
            )
        missing = max(0, len(dict.fromkeys([c.representative_trace_id, *c.member_trace_ids])) - len(d.members))
        note = f" · {missing} not shown or not in the store" if missing else ""
        sections.append(
            (
                f"Traces in this cluster ({len(d.members)}{note})",
                members if d.members else Text("no member traces in the store", style="dim"),
            )
        )

        history = _table("when", "who", "action", "change")
        for dec in d.decisions:
            change = ", ".join(
                f"{k}: {one_line(str(dec.before.get(k)), 30)} → {one_line(str(v), 30)}"
                for k, v in dec.after.items()
                if k != "undoes"
            )
            history.add_row(_when(dec.created_at), dec.actor, dec.action, change)
        sections.append(
            (f"Decisions ({len(d.decisions)})", history if d.decisions else Text("no decisions yet", style="dim"))
        )
        self.query_one(DetailView).set_sections(sections)

    # ---------------------------------------------------------------- TriageActions hooks
    def target_ids(self) -> list[str]:
        return [] if self.gone else [self.candidate_id]

    def current_id(self) -> str | None:
        return None if self.gone else self.candidate_id

    def after_decision(self, action: str, outcome: Outcome, ids: list[str]) -> None:
        queue = self.app.queue_screen
        if queue is not None:
            queue.apply_outcome(outcome)
            queue._render_status()
        if self.candidate_id in outcome.missing:
            self._mark_gone()
            return
        if outcome.error or not outcome.recorded:
            return
        if action in ("accept", "reject", "skip"):
            following = queue.neighbor(self.candidate_id, 1) if queue is not None else None
            self.show(following or self.candidate_id)
        elif action == "undo":
            self.show(next(iter(outcome.recorded)))
        else:
            self.show(self.candidate_id)

    # ---------------------------------------------------------------- navigation
    def action_step(self, step: int) -> None:
        queue = self.app.queue_screen
        following = queue.neighbor(self.candidate_id, step) if queue is not None else None
        if following is None:
            self.app.notify("No more loaded candidates that way.", timeout=2)
            return
        self.show(following)

    def action_scroll(self, step: int) -> None:
        body = self.query_one(DetailView)
        body.scroll_to(y=body.scroll_y + 3 * step, animate=False)

    def action_back(self) -> None:
        queue = self.app.queue_screen
        if queue is not None and not self.gone:
            queue.focus_candidate(self.candidate_id)
        self.app.pop_screen()


def _why_flagged(feedback: Sequence[Any]) -> Text:
    """One line per implicit signal: which detector (name@version) found it and what drove the verdict
    (the learned detectors' probability, threshold and largest contributions; the rules' evidence)."""
    out = Text()
    for fb in feedback:
        if fb.kind != "implicit":
            continue
        ev = fb.evidence or {}
        out.append(f"{fb.signal} ", style="bold")
        out.append(f"by {fb.source}")
        if "probability" in ev:
            out.append(f" (p {ev['probability']:.2f} >= {ev.get('threshold', 0.0):.2f})")
        drivers = (
            ev.get("why")
            or ev.get("evidence")
            or {k: ev[k] for k in ("phrase", "reason", "refusal", "after_negative_signal", "similarity") if k in ev}
        )
        if drivers:
            out.append(
                ": " + ", ".join(f"{k} {v:+g}" if isinstance(v, float) else f"{k} {v}" for k, v in drivers.items()),
                style="dim",
            )
        out.append("\n")
    out.rstrip()
    return out
