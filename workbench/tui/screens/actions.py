"""Decision actions shared by the queue and the detail view (accept, reject, skip, edit, labels, notes, undo)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import NotFoundError
from ...models import Candidate
from ...store.candidates import candidate_detail, get_candidate
from ..decisions import Outcome, describe_error
from .dialogs import TextDialog

if TYPE_CHECKING:
    from ..app import TriageApp

__all__ = ["STATUS_OF", "TriageActions"]

STATUS_OF = {"accept": "accepted", "reject": "rejected", "skip": "skipped"}


class TriageActions:
    """Mixin for a Screen: subclasses say which candidates an action targets and how to show the result."""

    app: TriageApp

    def target_ids(self) -> list[str]:
        raise NotImplementedError

    def current_id(self) -> str | None:
        raise NotImplementedError

    def after_decision(self, action: str, outcome: Outcome, ids: list[str]) -> None:
        raise NotImplementedError

    # ---- helpers
    def _load_candidate(self, candidate_id: str) -> Candidate | None:
        try:
            with self.app.store.read() as conn:
                return get_candidate(conn, candidate_id)
        except NotFoundError:
            self.app.report_missing([candidate_id])
        except Exception as exc:
            self.app.report_error(describe_error(exc))
        return None

    def _decide(self, ids: list[str], action: str, after: dict[str, Any]) -> Outcome:
        outcome = self.app.desk.decide(ids, action, after)
        self.app.report(action, outcome, ids)
        self.after_decision(action, outcome, ids)
        return outcome

    # ---- actions
    def action_decide(self, action: str) -> None:
        ids = self.target_ids()
        if ids:
            self._decide(ids, action, {"status": STATUS_OF[action]})

    def action_undo(self) -> None:
        outcome = self.app.desk.undo()
        if outcome.error:
            self.app.report_error(outcome.error)
        elif not outcome.recorded and not outcome.missing:
            self.app.notify("Nothing to undo in this session.", timeout=3)
        else:
            self.app.report_missing(outcome.missing)
        self.after_decision("undo", outcome, list(outcome.recorded))

    def action_edit(self) -> None:
        cid = self.current_id()
        if cid is None:
            return
        try:
            with self.app.store.read() as conn:
                detail = candidate_detail(conn, cid, limit=20)
        except NotFoundError:
            self.app.report_missing([cid])
            self.after_decision("edit", Outcome(missing=[cid]), [cid])
            return
        except Exception as exc:
            self.app.report_error(describe_error(exc))
            return
        cand = detail.candidate
        corrections = [f.text for f in detail.feedback if f.signal == "correction" and f.text]
        text = cand.expected_output or (corrections[-1] if corrections else None) or cand.output_text or ""
        source = (
            "the saved expected output"
            if cand.expected_output
            else "the user's correction"
            if corrections
            else "the model's output"
        )
        self.app.push_screen(
            TextDialog(f"Expected output for {cid} (prefilled with {source})", text),
            lambda value: self._save(cid, "edit", "expected_output", value, cand.expected_output),
        )

    def action_labels(self) -> None:
        cid = self.current_id()
        cand = self._load_candidate(cid) if cid else None
        if cid is None or cand is None:
            return
        self.app.push_screen(
            TextDialog(
                f"Labels for {cid}",
                ", ".join(cand.labels),
                multiline=False,
                hint="comma-separated · enter save · esc cancel",
            ),
            lambda value: self._save(cid, "label", "labels", _labels(value), cand.labels),
        )

    def action_notes(self) -> None:
        cid = self.current_id()
        cand = self._load_candidate(cid) if cid else None
        if cid is None or cand is None:
            return
        self.app.push_screen(
            TextDialog(f"Notes for {cid}", cand.notes or ""),
            lambda value: self._save(cid, "note", "notes", value, cand.notes),
        )

    def _save(self, cid: str, action: str, name: str, value: Any, old: Any) -> None:
        if value is None or value == old:
            return  # cancelled or unchanged: no decision
        if isinstance(value, str) and name != "labels":
            value = value if value.strip() else None
        self._decide([cid], action, {name: value})


def _labels(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
