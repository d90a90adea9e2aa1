"""Every threshold and window of the implicit-signal detectors, in one validated place.

Windows are seconds (plain numbers travel well through TOML/JSON/CLI flags). Strengths are the
``strength`` stored on the finding, in [0, 1]: how much a single occurrence should move a candidate's
priority. Similarities are in [0, 1]. Invalid values raise ``workbench.errors.ValidationError`` whose
one-line message names the field, e.g. ``signal config: repeat_ask.window_s: ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from workbench.errors import ValidationError

__all__ = [
    "AbandonConfig",
    "PositiveConfig",
    "PushbackConfig",
    "RegenerateConfig",
    "RepeatAskConfig",
    "SignalConfig",
]


def _one_line(exc: PydanticValidationError, prefix: str) -> str:
    """First pydantic error as ``signal config: field.path: message (got value)``."""
    err = exc.errors()[0]
    inner = err.get("ctx", {}).get("error")
    if isinstance(inner, ValidationError):  # a nested section already produced the one-liner
        return str(inner)
    loc = ".".join(str(part) for part in (*([prefix] if prefix else []), *err["loc"]))
    msg = err["msg"].removeprefix("Value error, ")
    extra = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
    more = f" [+{len(exc.errors()) - 1} more]" if len(exc.errors()) > 1 else ""
    return f"signal config: {loc or '<root>'}: {msg}{extra}{more}"


class _Config(BaseModel):
    """Frozen (one config object can be shared by worker threads) and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _section: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise ValidationError(_one_line(exc, self._section)) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().model_validate(obj, **kwargs)
        except PydanticValidationError as exc:
            raise ValidationError(_one_line(exc, cls._section)) from None


class RepeatAskConfig(_Config):
    """The user asks substantially the same thing again soon after an answer."""

    _section: ClassVar[str] = "repeat_ask"
    enabled: bool = True
    threshold: float | None = Field(
        None, ge=0, le=1, description="learned families: probability at which it fires (None: the trained one)"
    )
    window_s: float = Field(600.0, gt=0, description="max seconds between the answer's turn and the re-ask")
    lookback: int = Field(3, ge=1, le=50, description="how many earlier turns a re-ask is compared with")
    min_coverage: float = Field(0.6, ge=0, le=1, description="share of the first question's terms re-asked")
    min_coverage_reask: float = Field(
        0.4, ge=0, le=1, description="the same, when the turn says so ('again', 'I asked', 'let me rephrase')"
    )
    max_novel_ratio: float = Field(
        0.15, ge=0, le=1, description="new content terms allowed, per term of the first question"
    )
    use_embeddings: bool = Field(
        False, description="also accept paraphrases by MiniLM cosine (needs the `embeddings` extra)"
    )
    embedding_threshold: float = Field(0.92, ge=0, le=1, description="cosine at which a paraphrase repeats")


class RegenerateConfig(_Config):
    """The same input is sent again (the app's regenerate button, or a client retry by the user)."""

    _section: ClassVar[str] = "regenerate"
    enabled: bool = True
    window_s: float = Field(1800.0, gt=0, description="max seconds between the two identical inputs")
    lookback: int = Field(3, ge=1, le=50)
    ignore_system: bool = Field(
        True, description="compare conversations without system/developer messages (they may carry a clock)"
    )
    metadata_keys: tuple[str, ...] = Field(
        ("regenerate", "regenerated"), description="trace metadata keys an app sets on a regenerated call"
    )
    strength_reported: float = Field(1.0, ge=0, le=1)
    strength_identical: float = Field(0.9, ge=0, le=1)


class AbandonConfig(_Config):
    """The session ended after an answer that failed. Silence only says the session ended (after
    ``window_s``); the learned families then need evidence that the last answer failed (see
    ``signals/learned.py``). The lexical family's ``strength`` applies to its silence-only rule."""

    _section: ClassVar[str] = "abandon"
    enabled: bool = True
    threshold: float | None = Field(
        None, ge=0, le=1, description="learned families: probability at which it fires (None: the trained one)"
    )
    window_s: float = Field(1800.0, gt=0, description="silence after an answer that counts as leaving")
    strength: float = Field(0.3, ge=0, le=1)
    min_turns: int = Field(1, ge=1, description="only sessions with at least this many turns")


class PushbackConfig(_Config):
    """The next user turn rejects the answer or pastes an edited version of it (a correction)."""

    _section: ClassVar[str] = "pushback"
    enabled: bool = True
    threshold: float | None = Field(
        None, ge=0, le=1, description="learned families: probability at which it fires (None: the trained one)"
    )
    window_s: float = Field(3600.0, gt=0, description="max seconds between the answer and the reply")
    phrase_strength: float = Field(0.8, ge=0, le=1, description="explicit rejection ('that's wrong')")
    doubt_strength: float = Field(0.5, ge=0, le=1, description="doubt ('are you sure?')")
    edit_strength: float = Field(0.9, ge=0, le=1, description="the user pasted an edited answer")
    edit_min_similarity: float = Field(0.75, ge=0, le=1, description="paste at least this close to the answer")
    edit_max_similarity: float = Field(
        0.995, ge=0, le=1, description="...but below this (an unchanged paste is a quote, not an edit)"
    )
    edit_min_chars: int = Field(40, ge=1, description="answers shorter than this are not checked for edits")

    @model_validator(mode="after")
    def _edit_band(self) -> PushbackConfig:
        if self.edit_min_similarity >= self.edit_max_similarity:
            raise ValueError(
                f"edit_min_similarity ({self.edit_min_similarity}) must be below "
                f"edit_max_similarity ({self.edit_max_similarity})"
            )
        return self


class PositiveConfig(_Config):
    """Thanks in the next turn, an app-reported copy/accept, or (opt-in) continuing without rephrasing."""

    _section: ClassVar[str] = "positive"
    enabled: bool = True
    threshold: float | None = Field(
        None, ge=0, le=1, description="learned families: probability at which it fires (None: the trained one)"
    )
    window_s: float = Field(1800.0, gt=0, description="max seconds between the answer and the thanks")
    thanks_strength: float = Field(0.6, ge=0, le=1)
    metadata_keys: tuple[str, ...] = Field(
        ("copied", "accepted", "applied"), description="trace metadata keys an app sets when the answer was used"
    )
    metadata_strength: float = Field(0.7, ge=0, le=1)
    infer_continuation: bool = Field(
        False,
        description="a plain next question counts as weak approval; off by default because it marks "
        "almost every turn and multiplies stored feedback rows",
    )
    continuation_strength: float = Field(0.2, ge=0, le=1)


class SignalConfig(_Config):
    """All detector settings. ``SignalConfig()`` is the documented default."""

    detector: Literal["learned", "embedding", "llm", "lexical"] = Field(
        "learned", description="which family judges replies and abandonment (regenerate is always the same rule)"
    )
    repeat_ask: RepeatAskConfig = Field(default_factory=RepeatAskConfig)
    regenerate: RegenerateConfig = Field(default_factory=RegenerateConfig)
    abandon: AbandonConfig = Field(default_factory=AbandonConfig)
    pushback: PushbackConfig = Field(default_factory=PushbackConfig)
    positive: PositiveConfig = Field(default_factory=PositiveConfig)
    same_user_only: bool = Field(
        True, description="turns by different user ids in one session never signal about each other"
    )
    skip_errors: bool = Field(True, description="failed calls (status=error) are never the subject of a signal")
    max_chars: int = Field(4000, ge=100, description="user text and answers are compared up to this length")

    def thresholds(self) -> dict[str, float]:
        """Per-signal probability thresholds set in this config (the rest come with the weights)."""
        out = {}
        for name in ("repeat_ask", "pushback", "positive", "abandon"):
            value = getattr(self, name).threshold
            if value is not None:
                out[name] = float(value)
        return out

    def with_overrides(self, overrides: Mapping[str, Any]) -> SignalConfig:
        """A copy with dotted overrides applied, e.g. ``{"repeat_ask.window_s": 300}`` (CLI ``--set``)."""
        data = self.model_dump()
        for dotted, value in overrides.items():
            node = data
            parts = dotted.split(".")
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ValidationError(f"signal config: {dotted}: unknown setting")
                node = node[part]
            if parts[-1] not in node:
                raise ValidationError(f"signal config: {dotted}: unknown setting")
            node[parts[-1]] = value
        return SignalConfig.model_validate(data)
