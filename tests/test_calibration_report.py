"""calibrate(): the top-level report, per-group breakdown, and pulling fields out of JSONL rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from workbench.errors import StatisticsError, ValidationError
from workbench.judge.calibration import (
    MIN_GROUP_N,
    calibrate,
    detect_scale,
    extract_keys,
    extract_numbers,
    extract_preferences,
    get_path,
    group_label,
    parse_jsonl,
)

DATA = Path(__file__).parent / "data"
REQUIRED = {"n", "pearson", "spearman", "kendall", "kappa", "krippendorff_alpha", "mapping", "ppi", "classical"}


@pytest.fixture(scope="module")
def unieval_text():
    return (DATA / "unieval_topical_chat.jsonl").read_text()


@pytest.fixture(scope="module")
def unieval_rows(unieval_text):
    return parse_jsonl(unieval_text, "unieval_topical_chat.jsonl")


def test_calibrate_from_jsonl_rows_end_to_end(unieval_rows):
    rows = unieval_rows
    judge = extract_numbers(rows, "predict_scores.overall")
    human = extract_numbers(rows, "scores.overall")
    systems = extract_keys(rows, "system_id")
    order = np.random.default_rng(0).permutation(len(rows))
    lab, unl = order[:120], order[120:]
    report = calibrate(
        judge[lab],
        human[lab],
        unlabeled=judge[unl],
        groups=[systems[i] for i in lab],
        unlabeled_groups=[systems[i] for i in unl],
        n_bootstrap=300,
    )
    d = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert set(d) >= REQUIRED
    assert d["n"] == 120 and d["n_unlabeled"] == 240 and d["scale"] == "ordinal"
    for key in ("ppi", "classical"):
        assert {"estimate", "ci_low", "ci_high"} <= set(d[key])
        assert d[key]["ci_low"] < d[key]["estimate"] < d[key]["ci_high"]
    for key in ("pearson", "spearman", "kendall", "kappa", "krippendorff_alpha"):
        assert set(d[key]) == {"estimate", "ci_low", "ci_high"}
    assert d["pearson"]["estimate"] == pytest.approx(stats.pearsonr(judge[lab], human[lab]).statistic)
    assert d["classical"]["estimate"] == pytest.approx(human[lab].mean())
    assert d["ppi"]["method"] == "ppi++"
    assert d["mapping"]["method"] == "isotonic" and len(d["mapping"]["x"]) == len(d["mapping"]["y"])
    # per group: six systems, all of them below 30 rated items here, so every one carries a warning
    assert [g["group"] for g in d["groups"]] == sorted(set(systems))
    assert sum(g["n"] for g in d["groups"]) == 120
    assert sum(g["n_unlabeled"] for g in d["groups"]) == 240
    for group in d["groups"]:
        assert group["n"] < MIN_GROUP_N and f"< {MIN_GROUP_N} labelled pairs" in group["warning"]
        assert group["ppi"] is not None


def test_calibrate_without_unlabeled(unieval_rows):
    judge = extract_numbers(unieval_rows, "predict_scores.coherence")
    human = extract_numbers(unieval_rows, "scores.coherence")
    report = calibrate(judge, human, n_bootstrap=200)
    d = report.to_dict()
    assert d["ppi"] is None and d["n_unlabeled"] == 0
    assert any("PPI not computed" in note for note in d["notes"])
    assert any("different scales" in note for note in d["notes"])
    assert d["kappa"]["estimate"] == report.agreement.kappa.estimate


def test_calibrate_binary_on_llmbar_rating_difference():
    rows = parse_jsonl((DATA / "llmbar_natural.jsonl").read_text())
    margin = extract_numbers(rows, "gpt4_rating_2") - extract_numbers(rows, "gpt4_rating_1")
    second_better = (extract_preferences(rows, "label") == 2).astype(float)
    assert detect_scale(second_better) == "binary"
    report = calibrate(margin, second_better, n_bootstrap=300)
    d = report.to_dict()
    assert d["scale"] == "binary" and d["mapping"]["metric"] == "brier"
    assert d["binary"]["threshold_source"] == "youden_j_in_sample"
    assert d["mapping"]["threshold"]["value"] == d["binary"]["threshold"]
    assert any("optimistic" in note for note in d["notes"])
    predicted = margin >= d["binary"]["threshold"]
    assert d["binary"]["accuracy"]["estimate"] == pytest.approx(np.mean(predicted == second_better))


def test_scale_detection_and_override():
    assert detect_scale([0, 1, 1, 0]) == "binary"
    assert detect_scale([1, 2, 5, 3]) == "ordinal"
    assert detect_scale(np.linspace(0, 1, 50)) == "continuous"
    rng = np.random.default_rng(0)
    human = rng.normal(size=60)
    report = calibrate(human + rng.normal(size=60), human, n_bootstrap=100)
    assert report.agreement.scale == "continuous" and report.agreement.alpha_level == "interval"
    with pytest.raises(StatisticsError, match="scale must be auto, ordinal, continuous or binary"):
        calibrate([1, 2, 3], [1, 3, 2], scale="nominal")  # type: ignore[arg-type]


def test_groups_with_mapping_keys_small_and_degenerate_groups():
    rng = np.random.default_rng(3)
    judge = rng.normal(size=45)
    human = np.clip(np.round(3 + judge + rng.normal(scale=0.7, size=45)), 1, 5)
    human[40:43] = 4.0  # group "v3" is constant
    keys = (
        [{"prompt_version": 1, "model_version": "m"}] * 38
        + [{"prompt_version": 2, "model_version": "m"}] * 2
        + [{"prompt_version": 3, "model_version": "m"}] * 3
        + [{"prompt_version": 4, "model_version": "m"}] * 2
    )
    report = calibrate(judge, human, groups=keys, n_bootstrap=100)
    groups = {g.label: g for g in report.groups}
    assert set(groups) == {f"prompt_version={v}, model_version=m" for v in (1, 2, 3, 4)}
    big = groups["prompt_version=1, model_version=m"]
    assert big.n == 38 and big.warning is None and big.report is not None
    assert big.key == {"prompt_version": 1, "model_version": "m"}
    tiny = groups["prompt_version=2, model_version=m"]
    assert tiny.report is None and "too few to say anything" in tiny.warning
    flat = groups["prompt_version=3, model_version=m"]
    assert flat.report is None and "human scores are constant" in flat.warning
    json.dumps(report.to_dict(), allow_nan=False)


def test_group_label():
    assert group_label({"prompt_version": 3, "variant": "b"}) == "prompt_version=3, variant=b"
    assert group_label(("p", 2)) == "p, 2"
    assert group_label(None) == "(none)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": ["a", "b"]}, r"one group key per labelled pair \(2 keys for 4 pairs\)"),
        ({"unlabeled": [1, 2], "groups": list("aabb"), "unlabeled_groups": ["a"]}, "one key per unlabelled score"),
        ({"unlabeled_groups": ["a"]}, "unlabeled groups given without groups"),
        ({"unlabeled": [1, "x"]}, "unlabeled judge scores: item 1 is 'x'"),
    ],
)
def test_bad_calibrate_input(kwargs, message):
    with pytest.raises(StatisticsError, match=message):
        calibrate([1, 2, 3, 4], [1, 2, 2, 4], n_bootstrap=10, **kwargs)


@pytest.mark.parametrize(
    ("judge", "human", "message"),
    [
        ([1, 2], [1, 2], "need at least 3 labelled pairs, got 2"),
        ([1, 2, 3], [5, 5, 5], "human scores are constant"),
        ([1, 2, "high"], [1, 2, 3], "judge scores: item 2 is 'high', not a number"),
    ],
)
def test_calibrate_rejects_degenerate_input(judge, human, message):
    with pytest.raises(StatisticsError, match=message):
        calibrate(judge, human, n_bootstrap=10)


# --------------------------------------------------------------------------- field extraction


def test_parse_jsonl_keeps_line_numbers():
    rows = parse_jsonl('{"a": 1}\n\n{"a": {"b": [5, 6]}}\n', "f.jsonl")
    assert len(rows) == 2 and rows.lines == (1, 3)
    assert get_path(rows.items[1], "a.b.1") == 6
    with pytest.raises(ValidationError, match=r"^f.jsonl:2: not valid JSON"):
        parse_jsonl('{"a": 1}\n{"a": \n', "f.jsonl")
    with pytest.raises(ValidationError, match=r"^f.jsonl:1: expected a JSON object, got list"):
        parse_jsonl("[1, 2]\n", "f.jsonl")


def test_extract_numbers_errors_name_line_and_field():
    rows = parse_jsonl('{"s": {"h": 4}}\n\n{"s": {"h": "3.5"}}\n{"s": {"h": true}}\n{"s": {}}\n', "r.jsonl")
    with pytest.raises(ValidationError, match=r"^r.jsonl:5: field 's.h' is missing$"):
        extract_numbers(rows, "s.h")
    assert np.isnan(extract_numbers(rows, "s.h", allow_missing=True)[3])
    assert extract_numbers(rows, "s.h", allow_missing=True)[:3].tolist() == [4.0, 3.5, 1.0]
    bad = parse_jsonl('{"h": 1}\n{"h": "good"}\n{"h": null}\n', "b.jsonl")
    with pytest.raises(ValidationError, match=r"^b.jsonl:2: field 'h' is 'good', not a number$"):
        extract_numbers(bad, "h")
    with pytest.raises(ValidationError, match=r"^b.jsonl:3: field 'h' is null$"):
        extract_numbers(parse_jsonl('{"h": 1}\n{"h": 2}\n{"h": null}\n', "b.jsonl"), "h")
    with pytest.raises(ValidationError, match=r"^<rows>:2: field 'h' is 'NaN', not a number$"):
        extract_numbers([{"h": 1}, {"h": "NaN"}], "h")


def test_extract_preferences_and_keys():
    rows = [{"p": 1}, {"p": "B"}, {"p": "tie"}, {"p": 2.0}, {"p": "a"}]
    assert extract_preferences(rows, "p").tolist() == [1.0, 2.0, 1.5, 2.0, 1.0]
    with pytest.raises(ValidationError, match=r"^<rows>:2: field 'p' is 'left', not a preference"):
        extract_preferences([{"p": 1}, {"p": "left"}], "p")
    with pytest.raises(ValidationError, match=r"^<rows>:1: field 'p' is missing"):
        extract_preferences([{"q": 1}], "p")
    assert extract_keys([{"m": {"v": 3}}, {"m": {"v": None}}], "m.v") == [3, None]
    with pytest.raises(ValidationError, match=r"^<rows>:1: field 'm' is an object or list"):
        extract_keys([{"m": {"v": 3}}], "m")
    with pytest.raises(ValidationError, match=r"^<rows>:2: field 'm.v' is missing"):
        extract_keys([{"m": {"v": 3}}, {"m": {}}], "m.v")


def test_group_only_in_unlabelled_data_is_reported_not_crashing():
    from workbench.judge.calibration import calibrate

    report = calibrate(
        [1, 2, 3, 4, 5], [1, 2, 3, 5, 4], unlabeled=[1] * 7, groups=["a"] * 5, unlabeled_groups=["b"] * 7
    ).to_dict()
    by_label = {g["label"] if isinstance(g, dict) and "label" in g else str(g): g for g in report["groups"]}
    assert len(report["groups"]) == 2, by_label
