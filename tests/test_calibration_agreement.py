"""Agreement statistics: worked examples by hand, and scipy/sklearn/krippendorff as oracles on real data."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from workbench.errors import StatisticsError
from workbench.judge.calibration import agreement, align_to_human, common_categories
from workbench.judge.calibration import resampled as rs

DATA = Path(__file__).parent / "data"
DIMENSIONS = ("overall", "naturalness", "coherence", "engagingness", "groundedness", "understandability")


@pytest.fixture(scope="module")
def unieval():
    rows = [json.loads(line) for line in (DATA / "unieval_topical_chat.jsonl").read_text().splitlines()]
    assert len(rows) == 360
    return {
        dim: (np.array([r["predict_scores"][dim] for r in rows]), np.array([r["scores"][dim] for r in rows]))
        for dim in DIMENSIONS
    }


# --------------------------------------------------------------------------- worked by hand


def test_worked_three_items():
    # x = 1,2,3 ; y = 1,3,2.  Pearson: cov 1 / sqrt(2*2) = 0.5; Spearman the same (already ranks);
    # Kendall: pairs (1,2) and (1,3) concordant, (2,3) discordant -> (2-1)/3.
    # Quadratic kappa: observed weighted disagreement (0+1+1)/3 = 2/3; expected with uniform
    # marginals sum_ij (i-j)^2 / 9 = 12/9 -> 1 - (2/3)/(4/3) = 0.5.
    # Ordinal alpha: n_c = 2 each, d(1,2) = d(2,3) = 4, d(1,3) = 16; o23 = o32 = 2 ->
    # 1 - 5 * 16 / (2 * (16 + 16 + 64)) = 7/12.
    result = agreement([1, 2, 3], [1, 3, 2], n_bootstrap=200)
    assert result.n == 3
    assert result.pearson.estimate == pytest.approx(0.5)
    assert result.spearman.estimate == pytest.approx(0.5)
    assert result.kendall.estimate == pytest.approx(1 / 3)
    assert result.kappa.estimate == pytest.approx(0.5)
    assert result.kappa_weights == "quadratic"
    assert result.alignment == "identity"
    assert result.alpha_level == "ordinal"
    assert result.krippendorff_alpha.estimate == pytest.approx(7 / 12)


def test_worked_interval_alpha():
    # pooled values 1,2,3,1,3,2: mean 2, sum of squares 4; sum (a-b)^2 = 2; N = 6:
    # alpha = 1 - (N-1) * 2 / (N * 4) = 1 - 10/24 = 7/12 (here equal to the ordinal value by coincidence).
    one_row = np.arange(3)[None, :]
    a, b = np.array([1.0, 2, 3]), np.array([1.0, 3, 2])
    assert rs.alpha_interval(a, b, one_row)[0] == pytest.approx(7 / 12)
    # a = 1,2,3,4 ; b = 2,2,3,5 -> pooled mean 22/8 = 2.75, SS = 11.5; sum (a-b)^2 = 1+0+0+1 = 2, N = 8:
    # alpha = 1 - 7 * 2 / (8 * 11.5) = 1 - 14/92
    a, b = np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 3, 5])
    expected = 1 - 14 / 92
    assert rs.alpha_interval(a, b, np.arange(4)[None, :])[0] == pytest.approx(expected)
    assert krippendorff.alpha(reliability_data=np.vstack([a, b]), level_of_measurement="interval") == pytest.approx(
        expected
    )


def test_worked_binary():
    # judge 0,0,1,1 vs human 0,1,1,1: tn=1 fp=0 fn=1 tp=2. accuracy 3/4, precision 1, recall 2/3,
    # F1 = 4/5. kappa: po = 3/4, pe = .5*.25 + .5*.75 = .5 -> 0.5.
    result = agreement([0, 0, 1, 1], [0, 1, 1, 1], binary=True, n_bootstrap=200)
    assert result.binary is not None
    assert result.binary.confusion_matrix == ((1, 0), (1, 2))
    assert result.binary.accuracy.estimate == pytest.approx(0.75)
    assert result.binary.precision.estimate == pytest.approx(1.0)
    assert result.binary.recall.estimate == pytest.approx(2 / 3)
    assert result.binary.f1.estimate == pytest.approx(0.8)
    assert result.kappa.estimate == pytest.approx(0.5)
    assert result.kappa_weights is None and result.alpha_level == "nominal"
    assert result.binary.threshold_source == "binary_judge" and result.alignment == "identity"


def test_binary_with_continuous_judge_thresholds():
    judge = [0.1, 0.3, 0.35, 0.8, 0.9, 0.2]
    human = [0, 0, 1, 1, 1, 0]
    given = agreement(judge, human, binary=True, threshold=0.5, n_bootstrap=100)
    assert given.binary.threshold == 0.5 and given.binary.threshold_source == "given"
    assert given.binary.confusion_matrix == ((3, 0), (1, 2))
    tuned = agreement(judge, human, binary=True, n_bootstrap=100)
    assert tuned.binary.threshold_source == "youden_j_in_sample" and tuned.alignment == "threshold"
    assert tuned.binary.threshold == pytest.approx(0.35)  # catches every positive, no false positive
    assert tuned.binary.confusion_matrix == ((3, 0), (0, 3))


def test_alignment_rules():
    human = np.array([1.0, 2, 3, 4, 5, 3])
    same = align_to_human(np.array([5.0, 4, 3, 2, 1, 3]), human, categorical=True)
    assert same[1] == "identity"
    rounded, how = align_to_human(np.array([1.2, 2.6, 3.4, 4.49, 4.9, 1.0]), human, categorical=True)
    assert how == "round" and rounded.tolist() == [1, 3, 3, 4, 5, 1]
    # another scale: the judge's k-th smallest gets the human's k-th smallest; ties share a rank
    matched, how = align_to_human(np.array([0.1, 0.9, 0.5, 0.3, 0.7, 0.5]), human, categorical=True)
    assert how == "quantile"
    assert matched.tolist() == [1, 5, 3, 2, 4, 3]


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    x = rng.normal(size=80)
    y = np.clip(np.round(3 + x + rng.normal(scale=0.8, size=80)), 1, 5)
    first = agreement(x, y, n_bootstrap=500, seed=7)
    again = agreement(x, y, n_bootstrap=500, seed=7)
    other = agreement(x, y, n_bootstrap=500, seed=8)
    assert first == again
    assert first.pearson.ci_low != other.pearson.ci_low
    for est in (first.pearson, first.spearman, first.kendall, first.kappa, first.krippendorff_alpha):
        assert est.ci_low < est.estimate < est.ci_high
    assert first.to_dict()["pearson"] == {
        "estimate": first.pearson.estimate,
        "ci_low": first.pearson.ci_low,
        "ci_high": first.pearson.ci_high,
    }


# --------------------------------------------------------------------------- real data with oracles


@pytest.mark.parametrize("dim", DIMENSIONS)
def test_unieval_against_scipy_sklearn_krippendorff(unieval, dim):
    judge, human = unieval[dim]
    result = agreement(judge, human, n_bootstrap=300)
    assert result.n == 360 and result.scale == "ordinal"
    assert result.pearson.estimate == pytest.approx(stats.pearsonr(judge, human).statistic, abs=1e-12)
    assert result.spearman.estimate == pytest.approx(stats.spearmanr(judge, human).statistic, abs=1e-12)
    assert result.kendall.estimate == pytest.approx(stats.kendalltau(judge, human, variant="b").statistic, abs=1e-12)
    jc, hc, values, how = common_categories(judge, human, scale="ordinal")
    assert how == result.alignment
    assert result.kappa.estimate == pytest.approx(metrics.cohen_kappa_score(jc, hc, weights="quadratic"))
    oracle_alpha = krippendorff.alpha(
        reliability_data=np.vstack([values[jc], values[hc]]), level_of_measurement="ordinal"
    )
    assert result.krippendorff_alpha.estimate == pytest.approx(oracle_alpha)
    # UniEval is informative on every dimension; the interval must exclude 0
    assert result.spearman.ci_low > 0.2


def test_unieval_alignment_per_dimension(unieval):
    # predictions are in [0, 1]: on the 0-1 dimensions they are rounded to the human steps of 1/3,
    # on the 1-3 and 1-5 dimensions they are matched by quantile.
    hows = {dim: common_categories(*unieval[dim], scale="ordinal")[3] for dim in DIMENSIONS}
    assert hows == {
        "overall": "quantile",
        "naturalness": "quantile",
        "coherence": "quantile",
        "engagingness": "quantile",
        "groundedness": "round",
        "understandability": "round",
    }


def test_unieval_continuous_mode(unieval):
    judge, human = unieval["overall"]
    result = agreement(judge, human, ordinal=False, n_bootstrap=300)
    assert result.scale == "continuous" and result.alpha_level == "interval"
    aligned, how = align_to_human(judge, human, categorical=False)
    assert how == "quantile" and sorted(aligned) == sorted(human)
    oracle = krippendorff.alpha(reliability_data=np.vstack([aligned, human]), level_of_measurement="interval")
    assert result.krippendorff_alpha.estimate == pytest.approx(oracle)
    # same scale, continuous judge: alpha on the raw scores (closed form; library on a subset above)
    noisy = np.clip(human + np.linspace(-0.3, 0.3, human.size), 1, 5)
    raw = agreement(noisy, human, ordinal=False, n_bootstrap=50)
    assert raw.alignment == "identity"
    assert raw.krippendorff_alpha.estimate == pytest.approx(rs.alpha_interval(noisy, human, np.arange(360)[None])[0])
    assert 0.8 < raw.krippendorff_alpha.estimate < 1
    jc, hc, _, _ = common_categories(judge, human, scale="continuous")
    assert jc.max() <= 4 and hc.max() <= 4  # quintile bins
    assert result.kappa.estimate == pytest.approx(metrics.cohen_kappa_score(jc, hc, weights="quadratic"))


def test_llmbar_binary_against_sklearn():
    rows = [json.loads(line) for line in (DATA / "llmbar_natural.jsonl").read_text().splitlines()]
    # "does GPT-4 prefer output 2" as a binary judgement vs the human label
    judge = np.array([r["gpt4_pref"] == 2 for r in rows], dtype=float)
    human = np.array([r["label"] == 2 for r in rows], dtype=float)
    result = agreement(judge, human, binary=True, n_bootstrap=300)
    assert result.binary.accuracy.estimate == pytest.approx(metrics.accuracy_score(human, judge))
    assert result.binary.precision.estimate == pytest.approx(metrics.precision_score(human, judge))
    assert result.binary.recall.estimate == pytest.approx(metrics.recall_score(human, judge))
    assert result.binary.f1.estimate == pytest.approx(metrics.f1_score(human, judge))
    assert result.kappa.estimate == pytest.approx(metrics.cohen_kappa_score(human, judge))
    assert np.array(result.binary.confusion_matrix).tolist() == metrics.confusion_matrix(human, judge).tolist()
    assert result.krippendorff_alpha.estimate == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack([judge, human]), level_of_measurement="nominal")
    )


# --------------------------------------------------------------------------- vectorised bootstrap vs libraries


def test_resampled_statistics_match_libraries_on_each_resample(unieval):
    judge, human = unieval["overall"]
    jc, hc, values, _ = common_categories(judge, human, scale="ordinal")
    k = values.size
    rows = np.random.default_rng(0).integers(0, judge.size, size=(12, judge.size))
    pearson, spearman, kendall = (
        rs.pearson(judge, human, rows),
        rs.spearman(judge, human, rows),
        rs.kendall(judge, human, rows),
    )
    tables = rs.confusion(jc, hc, k, rows)
    kappa = rs.kappa_from_confusion(tables, "quadratic")
    alpha = rs.alpha_from_confusion(tables, values, "ordinal")
    for b, row in enumerate(rows):
        x, y = judge[row], human[row]
        assert pearson[b] == pytest.approx(stats.pearsonr(x, y).statistic)
        assert spearman[b] == pytest.approx(stats.spearmanr(x, y).statistic)
        assert kendall[b] == pytest.approx(stats.kendalltau(x, y, variant="b").statistic)
        assert kappa[b] == pytest.approx(
            metrics.cohen_kappa_score(jc[row], hc[row], weights="quadratic", labels=np.arange(k))
        )
        assert alpha[b] == pytest.approx(
            krippendorff.alpha(
                reliability_data=np.vstack([values[jc[row]], values[hc[row]]]),
                level_of_measurement="ordinal",
                value_domain=values,
            )
        )


def test_interval_alpha_closed_form_matches_krippendorff(unieval):
    # continuous scores: the library is slow here (values x values matrix), so a 60-item subset
    judge, human = unieval["engagingness"]
    judge, human = judge[:60], human[:60]
    rows = np.random.default_rng(4).integers(0, 60, size=(3, 60))
    out = rs.alpha_interval(judge, human, rows)
    for b, row in enumerate(rows):
        assert out[b] == pytest.approx(
            krippendorff.alpha(reliability_data=np.vstack([judge[row], human[row]]), level_of_measurement="interval")
        )


def test_kendall_large_n_path_matches_scipy():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 7, 1600).astype(float), rng.normal(size=1600)
    rows = rng.integers(0, 1600, size=(2, 1600))
    out = rs.kendall(x, y, rows)
    for b, row in enumerate(rows):
        assert out[b] == pytest.approx(stats.kendalltau(x[row], y[row]).statistic)


def test_nominal_and_linear_kappa_match_sklearn():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    table = rs.confusion(a, b, 4, np.arange(50)[None, :])
    assert rs.kappa_from_confusion(table, None)[0] == pytest.approx(metrics.cohen_kappa_score(a, b))
    assert rs.kappa_from_confusion(table, "linear")[0] == pytest.approx(
        metrics.cohen_kappa_score(a, b, weights="linear")
    )
    values = np.arange(4.0)
    assert rs.alpha_from_confusion(table, values, "nominal")[0] == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack([a, b]), level_of_measurement="nominal")
    )
    assert rs.alpha_from_confusion(table, values, "interval")[0] == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack([a, b]), level_of_measurement="interval")
    )


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("judge", "human", "message"),
    [
        ([1, 2], [1, 2], "need at least 3 labelled pairs, got 2"),
        ([1, 2, 3], [1, 2], r"judge scores and human scores differ in length \(3 vs 2\)"),
        ([1, 2, 3], [3, 3, 3], r"human scores are constant \(all 3\)"),
        ([2, 2, 2], [1, 2, 3], r"judge scores are constant \(all 2\)"),
        ([1, "x", 3], [1, 2, 3], "judge scores: item 1 is 'x', not a number"),
        ([1, None, 3], [1, 2, 3], "judge scores: item 1 is None, not a number"),
        ([1, 2, 3], [1, float("nan"), 3], "human scores: item 1 is nan, not a finite number"),
        ([[1, 2], [3, 4], [5, 6]], [1, 2, 3], "expected a flat sequence"),
        ("123", [1, 2, 3], "got a string"),
    ],
)
def test_bad_input_is_one_clear_line(judge, human, message):
    with pytest.raises(StatisticsError, match=message) as info:
        agreement(judge, human, n_bootstrap=10)
    assert "\n" not in str(info.value)


def test_binary_needs_zero_one_labels_and_ordinal_needs_few_categories():
    with pytest.raises(StatisticsError, match="binary human labels must be 0 or 1; item 2 is 2"):
        agreement([0, 1, 1], [0, 1, 2], binary=True, n_bootstrap=10)
    with pytest.raises(StatisticsError, match="25 distinct values"):
        agreement(np.arange(25.0), np.arange(25.0) ** 1.5, n_bootstrap=10)
    with pytest.raises(StatisticsError, match="confidence must be between 0 and 1"):
        agreement([1, 2, 3], [1, 3, 2], confidence=95)
