"""The prompt registry apps use: ``wb.prompts.register(name, template)`` and ``get(name, version)``.

``get(name)`` follows the decision log (``workbench prompts promote / rollback / rollout``): the
promoted version if there is one, else the latest; during a staged rollout, ``get(name,
session_id=...)`` hands the rollout version to its share of sessions, always the same sessions.
"""

from __future__ import annotations

import hashlib

from .errors import NotFoundError, ValidationError
from .models import Prompt
from .store import Store
from .store import attribution as decision_rows
from .store import prompts as prompt_rows

__all__ = ["PromptRegistry", "parse_prompt_ref", "rollout_position"]


def parse_prompt_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name@version`` -> (name, version or None)."""
    name, sep, version = ref.partition("@")
    if not name:
        raise ValidationError(f"prompt reference {ref!r} has no name; use NAME or NAME@VERSION")
    if not sep:
        return name, None
    if not version.isdigit():
        raise ValidationError(f"prompt reference {ref!r}: version must be a whole number, e.g. {name}@2")
    return name, int(version)


def rollout_position(name: str, version: int, session_id: str) -> float:
    """A session's fixed place in [0, 1) for a rollout: in the rollout when below its share.

    Hashing name, version and session (not the share) means raising the share from 10% to 50%
    keeps the first 10% of sessions and adds more, and each new rollout picks fresh sessions.
    """
    digest = hashlib.sha256(f"{name}@{version}\x00{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


class PromptRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store

    def register(self, name: str, template: str) -> Prompt:
        """Same content -> same version; changed content -> the next version."""
        if not isinstance(template, str):
            raise ValidationError(f"prompt template must be a str, not {type(template).__name__}")
        with self._store.write() as conn:
            return prompt_rows.register_prompt(conn, name, template)

    def get(self, name: str, version: int | None = None, *, session_id: str | None = None) -> Prompt:
        """A version by number; without one, the version the decision log says to serve.

        That is the promoted version (the latest registered if none was ever promoted), or, with a
        ``session_id`` during a staged rollout, the rollout version for that share of sessions.
        """
        if version is None and "@" in name:
            name, version = parse_prompt_ref(name)
        if session_id is not None and not isinstance(session_id, str):
            raise ValidationError(f"session_id must be a string, not {type(session_id).__name__}")
        with self._store.read() as conn:
            if version is None:
                state = decision_rows.prompt_state(conn, name)
                if (
                    state.rollout is not None
                    and session_id is not None
                    and state.share is not None
                    and (rollout_position(name, state.rollout, session_id) < state.share)
                ):
                    version = state.rollout
                else:
                    version = state.promoted
            return prompt_rows.get_prompt(conn, name, version)

    def versions(self, name: str) -> list[Prompt]:
        with self._store.read() as conn:
            found = prompt_rows.list_prompts(conn, name)
        if not found:
            raise NotFoundError(f"no prompt named {name!r}")
        return found

    def list(self) -> list[Prompt]:
        with self._store.read() as conn:
            return prompt_rows.list_prompts(conn)
