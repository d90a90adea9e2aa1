"""The triage app (Textual): work the candidate queue from the keyboard. The only package importing textual."""

from .app import TriageApp, default_actor, run_triage

__all__ = ["TriageApp", "default_actor", "run_triage"]
