"""The prompt registry apps use: ``wb.prompts.register(name, template)`` and ``get(name, version)``."""

from __future__ import annotations

from .errors import NotFoundError, ValidationError
from .models import Prompt
from .store import Store
from .store import prompts as prompt_rows

__all__ = ["PromptRegistry", "parse_prompt_ref"]


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


class PromptRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store

    def register(self, name: str, template: str) -> Prompt:
        """Same content -> same version; changed content -> the next version."""
        if not isinstance(template, str):
            raise ValidationError(f"prompt template must be a str, not {type(template).__name__}")
        with self._store.write() as conn:
            return prompt_rows.register_prompt(conn, name, template)

    def get(self, name: str, version: int | None = None) -> Prompt:
        """A version by number; without one, the latest registered version."""
        if version is None and "@" in name:
            name, version = parse_prompt_ref(name)
        with self._store.read() as conn:
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
