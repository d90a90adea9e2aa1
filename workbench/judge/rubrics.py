"""Rubrics: what a judge is asked, on which scale, and how its answer is read back.

A rubric lives in ``rubrics/<id>.yaml``. It is validated by pydantic; a bad file is reported with
file, field and line (taken from the YAML node marks) so the author can fix it without guessing.
The runner renders the judge prompt with :meth:`Rubric.messages` and reads the answer with
:func:`workbench.judge.answers.parse_answer`.

Score encoding (what ``JudgeScore.score`` holds): likert -> the integer rating; binary -> 0 or 1;
pairwise -> 1.0 (first output, ``{output_a}``), 2.0 (second, ``{output_b}``), 1.5 (tie), so that
``score - 1`` is the share won by the second output.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from workbench.errors import NotFoundError, RubricError, ValidationError

__all__ = [
    "PAIRWISE_A",
    "PAIRWISE_B",
    "PAIRWISE_TIE",
    "PLACEHOLDERS",
    "BinaryScale",
    "LikertScale",
    "PairwiseScale",
    "ParseSpec",
    "Rubric",
    "default_rubric_dirs",
    "get_rubric",
    "load_rubric",
    "load_rubrics",
    "scale_value",
]

PAIRWISE_A, PAIRWISE_B, PAIRWISE_TIE = 1.0, 2.0, 1.5
PLACEHOLDERS = frozenset({"input", "output", "output_a", "output_b", "reference", "context", "criteria", "scale"})
_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PAIRWISE_WORDS = {"a": PAIRWISE_A, "b": PAIRWISE_B, "tie": PAIRWISE_TIE}
_INT_RE = re.compile(r"^[+-]?\d+(?:\.0*)?$")
PACKAGED_DIR = Path(__file__).parent / "rubrics"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LikertScale(_Strict):
    """Integer ratings min..max, every point labelled (an unlabelled point is a rubric bug)."""

    kind: Literal["likert"]
    min: int = 1
    max: int = 5
    labels: dict[int, str]

    @field_validator("max")
    @classmethod
    def _max_above_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min")
        if low is not None and value <= low:
            raise ValueError(f"max ({value}) must be greater than min ({low})")
        return value

    @field_validator("labels")
    @classmethod
    def _labels_cover_scale(cls, value: dict[int, str], info: ValidationInfo) -> dict[int, str]:
        low, high = info.data.get("min"), info.data.get("max")
        if low is not None and high is not None and set(value) != set(range(low, high + 1)):
            raise ValueError(f"labels must have exactly the keys {low}..{high}, got {sorted(value)}")
        return value

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(float(v) for v in range(self.min, self.max + 1))


class BinaryScale(_Strict):
    """0/1 verdicts; labels say what 0 and 1 mean."""

    kind: Literal["binary"]
    labels: dict[int, str]

    @field_validator("labels")
    @classmethod
    def _zero_one(cls, value: dict[int, str]) -> dict[int, str]:
        if set(value) != {0, 1}:
            raise ValueError(f"labels must have exactly the keys 0 and 1, got {sorted(value)}")
        return value

    @property
    def values(self) -> tuple[float, ...]:
        return (0.0, 1.0)


class PairwiseScale(_Strict):
    """A choice between ``{output_a}`` and ``{output_b}`` (optionally a tie)."""

    kind: Literal["pairwise"]
    allow_tie: bool = True
    labels: dict[Literal["a", "b", "tie"], str]

    @field_validator("labels")
    @classmethod
    def _ab_labels(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        want = {"a", "b", "tie"} if info.data.get("allow_tie", True) else {"a", "b"}
        if set(value) != want:
            raise ValueError(f"labels must have exactly the keys {sorted(want)}, got {sorted(value)}")
        return value

    @property
    def values(self) -> tuple[float, ...]:
        return (PAIRWISE_A, PAIRWISE_TIE, PAIRWISE_B) if self.allow_tie else (PAIRWISE_A, PAIRWISE_B)


Scale = Annotated[LikertScale | BinaryScale | PairwiseScale, Field(discriminator="kind")]


class ParseSpec(_Strict):
    """How to read the answer: a regex capture (group ``score`` or the only group) or a JSON field."""

    method: Literal["regex", "json"]
    pattern: str | None = Field(default=None, validate_default=True)
    field: str | None = Field(default=None, validate_default=True)
    rationale_field: str | None = None
    choices: dict[str, float | str] = Field(default_factory=dict)
    ignore_case: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            if info.data.get("method") == "regex":
                raise ValueError("method 'regex' needs 'pattern' (a regex capturing the score)")
            return value
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        if "score" not in compiled.groupindex and compiled.groups != 1:
            raise ValueError("pattern needs a named group (?P<score>...) or exactly one capture group")
        return value

    @field_validator("field")
    @classmethod
    def _method_fields(cls, value: str | None, info: ValidationInfo) -> str | None:
        method = info.data.get("method")
        if method == "json" and not value:
            raise ValueError("method 'json' needs 'field' (dotted path of the score in the JSON answer)")
        return value

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern or "", re.IGNORECASE if self.ignore_case else 0)


class Rubric(_Strict):
    """One judge rubric (see module docstring for the score encoding)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    scale: Scale
    criteria: list[str] = Field(min_length=1)
    system_prompt: str | None = None
    prompt_template: str = Field(min_length=1)
    parse: ParseSpec

    @field_validator("prompt_template")
    @classmethod
    def _placeholders(cls, value: str, info: ValidationInfo) -> str:
        used = {m.group(1) for m in _PLACEHOLDER_RE.finditer(value) if m.group(1)}
        unknown = used - PLACEHOLDERS
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(PLACEHOLDERS)}")
        scale = info.data.get("scale")
        if scale is None:
            return value
        need, forbid = (
            ({"output_a", "output_b"}, {"output"})
            if scale.kind == "pairwise"
            else ({"output"}, {"output_a", "output_b"})
        )
        if need - used:
            missing = ", ".join("{" + name + "}" for name in sorted(need - used))
            raise ValueError(f"a {scale.kind} rubric's template must contain {missing}")
        if forbid & used:
            raise ValueError(f"a {scale.kind} rubric's template must not contain {sorted(forbid & used)}")
        return value

    @field_validator("parse")
    @classmethod
    def _choices_on_scale(cls, value: ParseSpec, info: ValidationInfo) -> ParseSpec:
        scale = info.data.get("scale")
        if scale is None:
            return value
        for token, target in value.choices.items():
            if scale_value(scale, target) is None:
                raise ValueError(f"choice {token!r} maps to {target!r}, not on the {scale.kind} scale")
        return value

    @property
    def mode(self) -> Literal["pointwise", "pairwise"]:
        return "pairwise" if self.scale.kind == "pairwise" else "pointwise"

    @property
    def fingerprint(self) -> str:
        """Hash of the whole rubric, so a cache notices an edit made without a version bump."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label_for(self, score: float) -> str | None:
        scale = self.scale
        if isinstance(scale, PairwiseScale):
            word = {PAIRWISE_A: "a", PAIRWISE_B: "b", PAIRWISE_TIE: "tie"}.get(score)
            return scale.labels.get(word) if word else None  # type: ignore[arg-type]
        return scale.labels.get(int(score)) if float(score).is_integer() else None

    def render(self, **values: str | None) -> str:
        """The user message: placeholders filled, ``{{``/``}}`` unescaped; a missing value is an error."""
        unknown = set(values) - PLACEHOLDERS
        if unknown:
            raise ValidationError(f"rubric {self.id}: unknown prompt value(s) {sorted(unknown)}")
        filled: dict[str, str | None] = {
            "criteria": "\n".join(f"- {c}" for c in self.criteria),
            "scale": self._scale_text(),
            **values,
        }

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return match.group(0)[0]
            if filled.get(name) is None:
                raise ValidationError(f"rubric {self.id}: prompt placeholder {{{name}}} has no value")
            return str(filled[name])

        return _PLACEHOLDER_RE.sub(fill, self.prompt_template)

    def messages(self, **values: str | None) -> list[dict[str, str]]:
        """Chat messages for an OpenAI-compatible endpoint."""
        user = {"role": "user", "content": self.render(**values)}
        return [{"role": "system", "content": self.system_prompt}, user] if self.system_prompt else [user]

    def _scale_text(self) -> str:
        scale = self.scale
        if isinstance(scale, PairwiseScale):
            return "\n".join(f"{k.upper() if k != 'tie' else 'tie'}: {v}" for k, v in scale.labels.items())
        return "\n".join(f"{k}: {v}" for k, v in sorted(scale.labels.items()))


def scale_value(scale: LikertScale | BinaryScale | PairwiseScale, raw: Any) -> float | None:
    """The scale value ``raw`` denotes, or None (bools are not numbers except on a binary scale)."""
    if isinstance(scale, PairwiseScale):
        if isinstance(raw, str) and raw.strip().casefold() in _PAIRWISE_WORDS:
            value = _PAIRWISE_WORDS[raw.strip().casefold()]
        elif isinstance(raw, int | float) and not isinstance(raw, bool):
            value = float(raw)
        elif isinstance(raw, str) and raw.strip() in {"1", "2", "1.5"}:
            value = float(raw.strip())
        else:
            return None
        return value if value in scale.values else None
    if isinstance(raw, bool):
        return float(raw) if isinstance(scale, BinaryScale) else None
    if isinstance(raw, str):
        raw = raw.strip()
        if not _INT_RE.match(raw):
            return None
        raw = float(raw)
    if not isinstance(raw, int | float) or not float(raw).is_integer():
        return None
    return float(raw) if float(raw) in scale.values else None


# ----------------------------------------------------------------------------- loading


def _line_and_field(root: yaml.Node, loc: tuple[Any, ...]) -> tuple[int, str]:
    """Follow a pydantic error location through the YAML node tree to the offending line."""
    node, line, parts = root, root.start_mark.line + 1, []
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if str(k.value) == str(part)), None)
            if match is None:
                if part in {"likert", "binary", "pairwise"} or str(part).startswith(("[", "function")):
                    continue  # discriminator tag or pydantic's own marker, not a YAML key
                parts.append(str(part))  # missing field: report the enclosing mapping's line
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            continue
        parts.append(str(part))
    return line, ".".join(parts) or "(rubric)"


def _check_duplicate_keys(node: yaml.Node, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if str(key.value) in seen:
                raise RubricError(f"{path}:{key.start_mark.line + 1}: duplicate key {key.value!r}")
            seen.add(str(key.value))
            _check_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(item, path)


def load_rubric(path: str | Path) -> Rubric:
    """Load and validate one rubric file; every problem is a RubricError naming file, field and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"{path}: cannot read rubric: {exc}") from None
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None or not isinstance(root, yaml.MappingNode):
            line = root.start_mark.line + 1 if root is not None else 1
            raise RubricError(f"{path}:{line}: a rubric must be a YAML mapping of fields")
        _check_duplicate_keys(root, path)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RubricError(f"{path}:{line}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RubricError(f"{path}:1: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    try:
        rubric = Rubric.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"]) + (("kind",) if first["type"] == "union_tag_invalid" else ())
        line, field = _line_and_field(root, loc)
        message = str(first["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RubricError(f"{path}:{line}: field '{field}': {message}{more}") from None
    if rubric.id != path.stem:
        line, _ = _line_and_field(root, ("id",))
        raise RubricError(f"{path}:{line}: field 'id': {rubric.id!r} must match the file name {path.stem!r}")
    return rubric


def default_rubric_dirs() -> list[Path]:
    """``./rubrics`` (project rubrics, if present) before the rubrics shipped inside the package."""
    local = Path.cwd() / "rubrics"
    if local.is_dir() and local.resolve() != PACKAGED_DIR.resolve():
        return [local, PACKAGED_DIR]
    return [PACKAGED_DIR]


def load_rubrics(dirs: Iterable[str | Path] | str | Path | None = None) -> dict[str, Rubric]:
    """All ``*.yaml``/``*.yml`` rubrics in ``dirs``, keyed by id; an earlier directory shadows a later one."""
    if dirs is None:
        dirs = default_rubric_dirs()
    elif isinstance(dirs, str | Path):
        dirs = [dirs]
    found: dict[str, Rubric] = {}
    for directory in dirs:
        directory = Path(directory)
        if not directory.is_dir():
            raise NotFoundError(f"rubric directory {directory} does not exist")
        here: dict[str, Path] = {}
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            rubric = load_rubric(path)
            if rubric.id in here:
                raise RubricError(f"{path}:1: field 'id': {rubric.id!r} is also defined in {here[rubric.id]}")
            here[rubric.id] = path
            found.setdefault(rubric.id, rubric)
    return dict(sorted(found.items()))


def get_rubric(
    rubric_id: str, dirs: Iterable[str | Path] | str | Path | None = None, rubrics: Mapping[str, Rubric] | None = None
) -> Rubric:
    """The rubric with this id, or NotFoundError listing the ids that exist."""
    available = rubrics if rubrics is not None else load_rubrics(dirs)
    if rubric_id not in available:
        known = ", ".join(available) or "none"
        raise NotFoundError(f"unknown rubric {rubric_id!r} (available: {known})")
    return available[rubric_id]
