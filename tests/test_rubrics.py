"""Rubric files: validation with file/field/line errors, prompt rendering, strict answer parsing."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from workbench.errors import JudgeError, NotFoundError, RubricError, ValidationError
from workbench.judge import (
    PAIRWISE_A,
    PAIRWISE_B,
    PAIRWISE_TIE,
    get_rubric,
    load_rubric,
    load_rubrics,
    parse_answer,
    swap_preference,
)
from workbench.judge.calibration import PREF_A, PREF_B, PREF_TIE
from workbench.judge.rubrics import PACKAGED_DIR, default_rubric_dirs

ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIR = ROOT / "rubrics"
SHIPPED = ("factual_consistency", "helpfulness", "pairwise_preference", "reaction")


@pytest.fixture(scope="module")
def rubrics():
    return load_rubrics([PROJECT_DIR])


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (how a person would find the field)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


# --------------------------------------------------------------------------- shipped rubrics


def test_shipped_rubrics_load_with_expected_scales(rubrics):
    assert tuple(rubrics) == SHIPPED
    assert rubrics["helpfulness"].scale.kind == "likert"
    assert rubrics["helpfulness"].scale.values == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert rubrics["factual_consistency"].scale.kind == "binary"
    assert rubrics["pairwise_preference"].scale.kind == "pairwise"
    assert rubrics["pairwise_preference"].mode == "pairwise"
    assert rubrics["helpfulness"].mode == "pointwise"


def test_packaged_copies_are_byte_identical():
    for name in SHIPPED:
        project, packaged = PROJECT_DIR / f"{name}.yaml", PACKAGED_DIR / f"{name}.yaml"
        assert filecmp.cmp(project, packaged, shallow=False), f"{packaged} differs from {project}"
    assert sorted(p.name for p in PACKAGED_DIR.glob("*.yaml")) == sorted(p.name for p in PROJECT_DIR.glob("*.yaml"))


def test_packaged_rubrics_load_without_project_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./rubrics here: only the packaged ones
    assert default_rubric_dirs() == [PACKAGED_DIR]
    assert tuple(load_rubrics()) == SHIPPED


def test_project_dir_shadows_packaged(tmp_path, monkeypatch):
    (tmp_path / "rubrics").mkdir()
    text = (PROJECT_DIR / "helpfulness.yaml").read_text().replace("version: 1", "version: 7")
    (tmp_path / "rubrics" / "helpfulness.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    found = load_rubrics()
    assert found["helpfulness"].version == 7
    assert found["pairwise_preference"].version == 1  # still from the package


def test_unknown_rubric_id_is_not_found(rubrics):
    with pytest.raises(NotFoundError, match=r"unknown rubric 'helpfullness' \(available: factual_consistency"):
        get_rubric("helpfullness", rubrics=rubrics)
    assert get_rubric("helpfulness", [PROJECT_DIR]).id == "helpfulness"


def test_missing_directory_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_rubrics([tmp_path / "nope"])


def test_fingerprint_changes_with_content(rubrics, tmp_path):
    text = (PROJECT_DIR / "helpfulness.yaml").read_text()
    edited = tmp_path / "helpfulness.yaml"
    edited.write_text(text.replace("Rate how helpful", "Rate how useful"))
    assert load_rubric(edited).fingerprint != rubrics["helpfulness"].fingerprint
    edited.write_text(text)
    assert load_rubric(edited).fingerprint == rubrics["helpfulness"].fingerprint


# --------------------------------------------------------------------------- bad rubric files

BASE = (PROJECT_DIR / "helpfulness.yaml").read_text()

BAD_CASES = [
    # (name, edit, field named in the error, line locator in the edited text, message fragment)
    ("max_below_min", ("  max: 5\n", "  max: 0\n"), "scale.max", "  max: 0", "greater than min"),
    ("labels_gap", ("    5: Very", "    6: Very"), "scale.labels", "  labels:", "exactly the keys 1..5"),
    ("json_without_field", ("  field: score\n", ""), "parse.field", "parse:", "needs 'field'"),
    ("unknown_placeholder", ("{input}", "{inptu}"), "prompt_template", "prompt_template:", "inptu"),
    ("no_output_placeholder", ("{output}", "output"), "prompt_template", "prompt_template:", "{output}"),
    ("extra_field", ("version: 1\n", "version: 1\ncolour: red\n"), "colour", "colour:", "Extra inputs"),
    ("missing_version", ("version: 1\n", ""), "version", "id: helpfulness", "Field required"),
    ("bad_kind", ("kind: likert", "kind: stars"), "scale.kind", "kind: stars", "stars"),
    ("criteria_item", ("criteria:\n", "criteria:\n  - [a, b]\n"), "criteria.0", "  - [a, b]", "valid string"),
    (
        "bad_regex",
        ("  method: json\n  field: score\n", "  method: regex\n  pattern: '(a'\n"),
        "parse.pattern",
        "pattern: '(a'",
        "regular expression",
    ),
    ("id_not_file_name", ("id: helpfulness", "id: helpful"), "id", "id: helpful", "file name"),
    ("version_zero", ("version: 1\n", "version: 0\n"), "version", "version: 0", "greater than or equal"),
]


@pytest.mark.parametrize(("name", "edit", "field", "locator", "fragment"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_rubric_names_file_field_and_line(tmp_path, name, edit, field, locator, fragment):
    old, new = edit
    assert old in BASE
    text = BASE.replace(old, new, 1)
    path = tmp_path / "helpfulness.yaml"
    path.write_text(text)
    with pytest.raises(RubricError) as info:
        load_rubric(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line_of(text, locator)}: field '{field}'"), message
    assert fragment in message


def test_invalid_yaml_and_duplicate_keys_report_line(tmp_path):
    path = tmp_path / "helpfulness.yaml"
    text = BASE.replace("  min: 1\n", "  min: [1\n")
    path.write_text(text)
    with pytest.raises(RubricError, match=rf"^{path}:\d+: invalid YAML"):
        load_rubric(path)
    text = BASE.replace("version: 1\n", "version: 1\nversion: 2\n")
    path.write_text(text)
    with pytest.raises(RubricError, match=rf"^{path}:{line_of(text, 'version: 2')}: duplicate key 'version'"):
        load_rubric(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(RubricError, match=rf"^{path}:1: a rubric must be a YAML mapping"):
        load_rubric(path)
    path.write_text("")
    with pytest.raises(RubricError, match="must be a YAML mapping"):
        load_rubric(path)


def test_duplicate_id_in_one_directory(tmp_path):
    (tmp_path / "helpfulness.yaml").write_text(BASE)
    (tmp_path / "helpfulness.yml").write_text(BASE)
    with pytest.raises(RubricError, match="also defined in"):
        load_rubrics([tmp_path])


def test_choices_must_be_on_scale(tmp_path):
    text = (PROJECT_DIR / "factual_consistency.yaml").read_text().replace("inconsistent: 0", "inconsistent: 3")
    path = tmp_path / "factual_consistency.yaml"
    path.write_text(text)
    with pytest.raises(RubricError, match=r"field 'parse': choice 'inconsistent' maps to 3"):
        load_rubric(path)


def test_pairwise_template_needs_both_outputs(tmp_path):
    text = (PROJECT_DIR / "pairwise_preference.yaml").read_text().replace("{output_b}", "B")
    path = tmp_path / "pairwise_preference.yaml"
    path.write_text(text)
    with pytest.raises(
        RubricError,
        match=r"field 'prompt_template': a pairwise rubric's template must contain "
        r"\{output_b\}",
    ):
        load_rubric(path)


# --------------------------------------------------------------------------- rendering


def test_render_fills_placeholders_and_keeps_json_braces(rubrics):
    rubric = rubrics["helpfulness"]
    text = rubric.render(input="What is 2+2?", output="4")
    assert "[User request]\nWhat is 2+2?" in text
    assert "[Assistant answer]\n4" in text
    assert "- Is factually correct" in text  # {criteria}
    assert "5: Very helpful" in text  # {scale}
    assert '{"reasoning": "<one or two sentences>", "score": <integer 1-5>}' in text
    assert "{input}" not in text and "{output}" not in text
    messages = rubric.messages(input="q", output="a")
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == rubric.system_prompt


def test_render_pairwise_and_escaped_braces(rubrics):
    rubric = rubrics["pairwise_preference"]
    text = rubric.render(input="Say hi", output_a="hi", output_b="hello there")
    assert "[Output A]\nhi\n" in text and "[Output B]\nhello there\n" in text
    assert [m["role"] for m in rubric.messages(input="i", output_a="a", output_b="b")] == ["user"]
    escaped = rubric.model_copy(update={"prompt_template": "{{output_a}} {output_a} {output_b}"})
    assert escaped.render(output_a="X", output_b="Y") == "{output_a} X Y"


def test_render_does_not_expand_placeholders_inside_values(rubrics):
    text = rubrics["helpfulness"].render(input="explain {output} and {{x}}", output="ANSWER")
    assert "explain {output} and {{x}}" in text
    assert text.count("ANSWER") == 1


def test_render_missing_or_unknown_value_is_an_error(rubrics):
    rubric = rubrics["helpfulness"]
    with pytest.raises(ValidationError, match=r"rubric helpfulness: prompt placeholder \{output\} has no value"):
        rubric.render(input="q")
    with pytest.raises(ValidationError, match=r"unknown prompt value\(s\) \['outptu'\]"):
        rubric.render(input="q", output="a", outptu="x")


# --------------------------------------------------------------------------- parsing answers


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ('{"reasoning": "fine", "score": 4}', 4.0),
        ('Sure.\n```json\n{"reasoning": "ok", "score": 5}\n```', 5.0),
        ('{"score": "3"}', 3.0),
        ('{"score": 2.0}', 2.0),
        ('{"score": 4} and again {"score": 4}', 4.0),  # repeated, same value: fine
    ],
)
def test_helpfulness_parses(rubrics, answer, score):
    parsed = parse_answer(rubrics["helpfulness"], answer)
    assert parsed.ok and parsed.score == score
    assert parsed.label == rubrics["helpfulness"].scale.labels[int(score)]
    assert parsed.require() == score


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty answer"),
        ("I'd give it a four.", "no JSON object with field 'score'"),
        ('{"score": 7}', "not on the likert scale"),
        ('{"score": 3.5}', "not on the likert scale"),
        ('{"score": true}', "not on the likert scale"),
        ('{"score": "four"}', "not on the likert scale"),
        ('{"score": null}', "not on the likert scale"),
        ('{"score": 3} ... actually {"score": 4}', "ambiguous answer: 2 different scores"),
        ('{"reasoning": "no score here"}', "no JSON object with field 'score'"),
    ],
)
def test_helpfulness_unparsed_is_never_a_default(rubrics, answer, reason):
    parsed = parse_answer(rubrics["helpfulness"], answer)
    assert parsed.status == "unparsed" and parsed.score is None and parsed.label is None
    assert reason in (parsed.error or "")
    assert parsed.raw == answer
    with pytest.raises(JudgeError, match="could not be parsed"):
        parsed.require()


def test_rationale_is_kept(rubrics):
    parsed = parse_answer(rubrics["helpfulness"], '{"reasoning": "Answers it.", "score": 5}')
    assert parsed.rationale == "Answers it."


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ("All claims are in the source.\nVerdict: CONSISTENT", 1.0),
        ("The date is wrong.\nVerdict: inconsistent", 0.0),
        ("Verdict: **INCONSISTENT**", 0.0),
    ],
)
def test_factual_consistency_regex_with_choices(rubrics, answer, score):
    assert parse_answer(rubrics["factual_consistency"], answer).score == score


@pytest.mark.parametrize(
    "answer",
    [
        "Looks consistent to me.",
        "Verdict: CONSISTENT\nVerdict: INCONSISTENT",
        "Verdict: mostly",
    ],
)
def test_factual_consistency_unparsed(rubrics, answer):
    assert parse_answer(rubrics["factual_consistency"], answer).status == "unparsed"


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ('{"reasoning": "A follows it", "winner": "A"}', PAIRWISE_A),
        ('{"winner": "b"}', PAIRWISE_B),
        ('{"winner": "tie"}', PAIRWISE_TIE),
        ('{"winner": 2}', PAIRWISE_B),
    ],
)
def test_pairwise_parses(rubrics, answer, score):
    assert parse_answer(rubrics["pairwise_preference"], answer).score == score


@pytest.mark.parametrize("answer", ['{"winner": "C"}', '{"winner": 3}', '{"winner": "A"} {"winner": "B"}'])
def test_pairwise_unparsed(rubrics, answer):
    assert parse_answer(rubrics["pairwise_preference"], answer).status == "unparsed"


def test_pairwise_without_ties_rejects_tie(rubrics):
    base = rubrics["pairwise_preference"]
    strict = base.model_validate(
        {
            **base.model_dump(),
            "scale": {"kind": "pairwise", "allow_tie": False, "labels": {"a": "A wins", "b": "B wins"}},
        }
    )
    assert parse_answer(strict, '{"winner": "tie"}').status == "unparsed"
    assert parse_answer(strict, '{"winner": "a"}').score == PAIRWISE_A


def test_swap_preference_and_shared_coding():
    assert swap_preference(PAIRWISE_A) == PAIRWISE_B
    assert swap_preference(PAIRWISE_B) == PAIRWISE_A
    assert swap_preference(PAIRWISE_TIE) == PAIRWISE_TIE
    # the parser and the calibration statistics must speak the same coding
    assert (PAIRWISE_A, PAIRWISE_B, PAIRWISE_TIE) == (PREF_A, PREF_B, PREF_TIE)
