"""The judge on the store: pick what to judge, run the runner with the store as its cache, calibrate.

What gets judged (``judge run``): successful traces with an output, filtered by ``--prompt``, that
have no ok/unparsed score yet for this rubric version and judge model (failed calls are retried).

Pairs for pairwise rubrics: traces that answer *the same input* - the same conversation, system and
developer messages left out (they carry prompt versions and clocks), as the regenerate detector
defines it. Within each such group, oldest first, every trace is paired with the one before it (A =
older, B = newer): regenerations, and the same question answered by two prompt or model versions.
Pairs with identical output text are skipped (nothing to compare). We chose this over golden items
(expected vs original output) because those pairs have a known winner by construction, so they
would measure nothing about the judge's agreement with users.

Calibration from the store (``judge calibrate --rubric``): each trace's latest parsed score joined
with its users' ratings (each user's latest ``rating``; ``thumbs`` 1/0 for binary rubrics), averaged
per trace; scored traces nobody rated are the unlabelled set for PPI. Groups: ``prompt_version``
(``name@version``), ``model_version`` (resolved model + system fingerprint) or ``variant``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import orjson

from workbench.errors import NotFoundError, StatisticsError, ValidationError
from workbench.ids import new_id
from workbench.judge.calibration import (
    DEFAULT_BOOTSTRAP,
    MIN_PAIRS,
    Rows,
    calibrate,
    calibrate_pairwise,
    extract_keys,
    extract_numbers,
    extract_preferences,
    get_path,
    parse_jsonl,
    ratings_to_preferences,
)
from workbench.judge.rubrics import BinaryScale, Rubric
from workbench.judge.runner import JudgeConfig, JudgeItem, JudgeRun, JudgeRunner, Progress
from workbench.models import Calibration, JudgeScore, Trace, utcnow
from workbench.prompts import parse_prompt_ref
from workbench.store import Store
from workbench.store import judge as judge_rows

__all__ = [
    "GROUP_BY",
    "StoreCache",
    "StoreCalibration",
    "calibrate_file",
    "calibrate_store",
    "conversation_text",
    "group_key",
    "pairs_to_judge",
    "run_judge",
    "same_input_key",
    "traces_to_judge",
]

GroupBy = Literal["prompt_version", "model_version", "variant"]
GROUP_BY: tuple[str, ...] = ("prompt_version", "model_version", "variant")
_SYSTEM_ROLES = frozenset({"system", "developer"})


class StoreCache:
    """The store as the runner's cache: look-ups by cache key, saves in one transaction per batch."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def lookup(self, keys: Sequence[str]) -> dict[str, JudgeScore]:
        with self.store.read() as conn:
            return judge_rows.lookup_cache(conn, keys)

    def save(self, scores: Sequence[JudgeScore]) -> None:
        with self.store.write() as conn:
            judge_rows.insert_scores(conn, scores)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return "" if content is None else str(content)


def conversation_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What the judge sees as ``{input}``: a lone user message as is, else ``[role]`` blocks in order."""
    if len(messages) == 1 and messages[0].get("role") == "user":
        return _content_text(messages[0].get("content"))
    return "\n\n".join(f"[{m.get('role', 'user')}]\n{_content_text(m.get('content'))}" for m in messages)


def same_input_key(trace: Trace) -> str:
    """Hash of the conversation without system/developer messages (what "the same input" means)."""
    kept = [m for m in trace.input if m.get("role") not in _SYSTEM_ROLES]
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _prompt_filter(prompt: str | None) -> tuple[str | None, int | None]:
    return parse_prompt_ref(prompt) if prompt is not None else (None, None)


def traces_to_judge(
    store: Store, rubric: Rubric, judge_model: str, *, prompt: str | None = None, limit: int | None = None
) -> list[JudgeItem]:
    name, version = _prompt_filter(prompt)
    with store.read() as conn:
        found = judge_rows.traces_to_judge(
            conn,
            rubric_id=rubric.id,
            rubric_version=rubric.version,
            judge_model=judge_model,
            prompt_name=name,
            prompt_version=version,
            limit=limit,
        )
    return [JudgeItem(t.id, conversation_text(t.input), t.output_text or "") for t in found]


def pairs_to_judge(
    store: Store, rubric: Rubric, judge_model: str, *, prompt: str | None = None, limit: int | None = None
) -> list[JudgeItem]:
    """Consecutive traces with the same input not yet judged in both orders (see module docstring)."""
    name, version = _prompt_filter(prompt)
    with store.read() as conn:
        found = judge_rows.trace_outputs(conn, prompt_name=name, prompt_version=version)
        judged = judge_rows.judged_pair_keys(
            conn, rubric_id=rubric.id, rubric_version=rubric.version, judge_model=judge_model
        )
    groups: dict[str, list[Trace]] = {}
    for trace in found:
        groups.setdefault(same_input_key(trace), []).append(trace)
    items = []
    for members in groups.values():
        for a, b in pairwise(members):
            if a.output_text == b.output_text or (a.id, b.id) in judged:
                continue
            asked = [m for m in b.input if m.get("role") not in _SYSTEM_ROLES]
            items.append(
                JudgeItem(
                    a.id, conversation_text(asked), a.output_text or "", other_trace_id=b.id, output_b=b.output_text
                )
            )
    items.sort(key=lambda item: (item.trace_id, item.other_trace_id or ""))
    return items[:limit] if limit is not None else items


def run_judge(
    store: Store,
    rubric: Rubric,
    config: JudgeConfig,
    *,
    prompt: str | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> JudgeRun:
    """Judge what :func:`traces_to_judge` / :func:`pairs_to_judge` selects; every verdict is stored."""
    choose = pairs_to_judge if rubric.mode == "pairwise" else traces_to_judge
    items = choose(store, rubric, config.model, prompt=prompt, limit=limit)
    return JudgeRunner(rubric, config, cache=StoreCache(store), progress=progress).run_sync(items)


def group_key(row: judge_rows.JudgedTrace, by: GroupBy) -> str | None:
    if by == "prompt_version":
        return f"{row.prompt_name}@{row.prompt_version}" if row.prompt_name else None
    if by == "model_version":
        if row.model_resolved and row.system_fingerprint:
            return f"{row.model_resolved}+{row.system_fingerprint}"
        return row.model_resolved
    return row.variant


@dataclass(frozen=True)
class StoreCalibration:
    report: dict[str, Any]
    calibrations: list[Calibration]


def _pick_judge_model(store: Store, rubric: Rubric, judge_model: str | None) -> str:
    with store.read() as conn:
        models = judge_rows.judge_models(conn, rubric_id=rubric.id, rubric_version=rubric.version)
    if judge_model is not None:
        if judge_model not in models:
            raise NotFoundError(
                f"no parsed scores from judge {judge_model!r} for rubric {rubric.id} "
                f"v{rubric.version} (judges with scores: {', '.join(models) or 'none'})"
            )
        return judge_model
    if not models:
        raise NotFoundError(
            f"no parsed judge scores for rubric {rubric.id} v{rubric.version}; "
            f"run `workbench judge run --rubric {rubric.id}` first"
        )
    if len(models) > 1:
        raise ValidationError(
            f"rubric {rubric.id} v{rubric.version} has scores from several judges "
            f"({', '.join(models)}); pick one with --model"
        )
    return models[0]


def calibrate_store(
    store: Store,
    rubric: Rubric,
    *,
    by: str | None = None,
    judge_model: str | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> StoreCalibration:
    """Calibrate the rubric's judge scores against user ratings and store the calibration rows."""
    if by is not None and by not in GROUP_BY:
        raise ValidationError(f"--by must be one of {', '.join(GROUP_BY)}, not {by!r}")
    model = _pick_judge_model(store, rubric, judge_model)
    signal = "thumbs" if isinstance(rubric.scale, BinaryScale) else "rating"
    where = f"rubric {rubric.id} v{rubric.version}, judge {model}"
    scope = {"rubric_id": rubric.id, "rubric_version": rubric.version, "judge_model": model, "signal": signal}
    try:
        if rubric.mode == "pairwise":
            if by is not None:
                raise ValidationError("--by is not supported for pairwise rubrics (a pair may span groups)")
            report = _pairwise_from_store(store, rubric, model, signal, n_bootstrap, seed)
        else:
            report = _pointwise_from_store(store, rubric, model, signal, by, n_bootstrap, seed)
    except StatisticsError as exc:
        raise StatisticsError(f"{where}: {exc}") from None
    report = {**scope, "by": by, **report}
    now = utcnow()
    rows = [
        Calibration(
            id=new_id(),
            rubric_id=rubric.id,
            rubric_version=rubric.version,
            judge_model=model,
            group_key={},
            n=report["n"],
            metrics=report,
            mapping=report.get("mapping") or {},
            created_at=now,
        )
    ]
    for group in report.get("groups") or []:
        if "pearson" not in group:
            continue  # too small or degenerate: the warning is in the overall row
        rows.append(
            Calibration(
                id=new_id(),
                rubric_id=rubric.id,
                rubric_version=rubric.version,
                judge_model=model,
                group_key={by: group["key"]},
                n=group["n"],
                metrics={**scope, "by": by, **group},
                mapping=group.get("mapping") or {},
                created_at=now,
            )
        )
    with store.write() as conn:
        for row in rows:
            judge_rows.insert_calibration(conn, row)
    return StoreCalibration(report, rows)


def _pointwise_from_store(
    store: Store, rubric: Rubric, model: str, signal: str, by: str | None, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    with store.read() as conn:
        rows = judge_rows.judged_traces(
            conn, rubric_id=rubric.id, rubric_version=rubric.version, judge_model=model, signal=signal
        )
    labelled = [r for r in rows if r.human is not None]
    unlabelled = [r for r in rows if r.human is None]
    if len(labelled) < MIN_PAIRS:
        raise StatisticsError(_missing_labels(store, rubric, model, signal, len(labelled), len(rows)))
    use_u = len(unlabelled) >= 2
    groups = [group_key(r, by) for r in labelled] if by else None  # type: ignore[arg-type]
    u_groups = [group_key(r, by) for r in unlabelled] if by and use_u else None  # type: ignore[arg-type]
    report = calibrate(
        [r.judge_score for r in labelled],
        [r.human for r in labelled],
        unlabeled=[r.judge_score for r in unlabelled] if use_u else None,
        groups=groups,
        unlabeled_groups=u_groups,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return report.to_dict()


def _missing_labels(store: Store, rubric: Rubric, model: str, signal: str, labelled: int, judged: int) -> str:
    """Too few user labels to calibrate: say which kind the rubric needs and how to record it. A likert
    rubric is compared with ratings, a binary one with thumbs; a store full of the other kind (the demo
    has thumbs only) otherwise fails with a bare count."""
    other = "thumbs" if signal == "rating" else "rating"
    with store.read() as conn:
        rows = judge_rows.judged_traces(
            conn, rubric_id=rubric.id, rubric_version=rubric.version, judge_model=model, signal=other
        )
    with_other = sum(r.human is not None for r in rows)
    scale: Any = rubric.scale
    if signal == "rating":
        kind = f"likert {scale.min}-{scale.max}" if scale.kind == "likert" else scale.kind
        need = (
            f"{rubric.id} ({kind}) is calibrated against user ratings and {labelled} of {judged} "
            f"judged traces have one ({with_other} have thumbs, which only binary rubrics use)"
        )
        how = "wb.feedback.rating(trace_id, 4, scale=(1, 5)) or `workbench feedback add TRACE_ID --rating 4`"
    else:
        need = (
            f"{rubric.id} (binary) is calibrated against thumbs and {labelled} of {judged} judged traces "
            f"have any ({with_other} have ratings, which binary rubrics do not use)"
        )
        how = "wb.feedback.thumbs(trace_id, up=True) or `workbench feedback add TRACE_ID --thumbs up`"
    return f"need at least {MIN_PAIRS} labelled pairs, got {labelled}: {need}; record them with {how}"


def _pairwise_from_store(
    store: Store, rubric: Rubric, model: str, signal: str, n_bootstrap: int, seed: int
) -> dict[str, Any]:
    with store.read() as conn:
        pairs = judge_rows.judged_pairs(
            conn, rubric_id=rubric.id, rubric_version=rubric.version, judge_model=model, signal=signal
        )
    pairs = [p for p in pairs if p.score_ab is not None]
    labelled = [p for p in pairs if p.human_a is not None and p.human_b is not None]
    unlabelled = [p.score_ab for p in pairs if p.human_a is None or p.human_b is None]
    human = ratings_to_preferences([p.human_a for p in labelled], [p.human_b for p in labelled])
    swapped = [p.score_ba for p in labelled]
    report = calibrate_pairwise(
        [p.score_ab for p in labelled],
        human,
        judge_swapped=swapped if labelled and None not in swapped else None,
        unlabeled=unlabelled if len(unlabelled) >= 2 else None,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )
    return report.to_dict()


# ----------------------------------------------------------------------------- files


def _read_rows(path: str | Path) -> Rows:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{path}: not UTF-8 text") from None
    return parse_jsonl(text, str(path))


def _lengths(rows: Rows, path: str) -> list[int]:
    out = []
    for index, row in enumerate(rows.items):
        value = get_path(row, path)
        if not isinstance(value, str):
            raise ValidationError(f"{rows.source}:{rows.lines[index]}: field '{path}' is not text")
        out.append(len(value))
    return out


def calibrate_file(
    path: str | Path,
    *,
    judge_field: str,
    human_field: str,
    group_field: str | None = None,
    unlabeled: str | Path | None = None,
    pairwise: bool = False,
    swapped_field: str | None = None,
    text_fields: tuple[str, str] | None = None,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[str, Any]:
    """Calibrate (judge, human) fields of a JSONL file; unlabelled judge scores from a second file."""
    rows = _read_rows(path)
    u_rows = _read_rows(unlabeled) if unlabeled is not None else None
    if pairwise:
        if group_field is not None:
            raise ValidationError("--group-field is not supported with --pairwise")
        judge = extract_preferences(rows, judge_field)
        human = extract_preferences(rows, human_field)
        swapped = extract_preferences(rows, swapped_field) if swapped_field else None
        la, lb = (_lengths(rows, text_fields[0]), _lengths(rows, text_fields[1])) if text_fields else (None, None)
        u = extract_preferences(u_rows, judge_field) if u_rows is not None else None
        return calibrate_pairwise(
            judge,
            human,
            judge_swapped=swapped,
            length_a=la,
            length_b=lb,
            unlabeled=u,
            n_bootstrap=n_bootstrap,
            seed=seed,
        ).to_dict()
    if swapped_field or text_fields:
        raise ValidationError("--swapped-field and --texts need --pairwise")
    judge = extract_numbers(rows, judge_field)
    human = extract_numbers(rows, human_field)
    groups = extract_keys(rows, group_field) if group_field else None
    u = extract_numbers(u_rows, judge_field) if u_rows is not None else None
    u_groups = extract_keys(u_rows, group_field) if u_rows is not None and group_field else None
    return calibrate(
        judge, human, unlabeled=u, groups=groups, unlabeled_groups=u_groups, n_bootstrap=n_bootstrap, seed=seed
    ).to_dict()
