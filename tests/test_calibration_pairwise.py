"""Pairwise judge calibration: LLMBar (GPT-4 vs human labels) with sklearn/krippendorff oracles, worked bias."""

from __future__ import annotations

import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from workbench.errors import StatisticsError
from workbench.judge.calibration import (
    PREF_A,
    PREF_B,
    PREF_TIE,
    as_preferences,
    calibrate_pairwise,
    ratings_to_preferences,
)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def llmbar():
    rows = [json.loads(line) for line in (DATA / "llmbar_natural.jsonl").read_text().splitlines()]
    assert len(rows) == 100
    return rows


def column(rows, name):
    return np.array([row[name] for row in rows], dtype=float)


def test_llmbar_agreement_kappa_against_sklearn(llmbar):
    judge, human = column(llmbar, "gpt4_pref"), column(llmbar, "label")
    report = calibrate_pairwise(judge, human, n_bootstrap=500)
    assert report.n == 100
    assert report.agreement.estimate == pytest.approx(accuracy_score(human, judge))
    assert report.kappa.estimate == pytest.approx(cohen_kappa_score(human, judge))
    assert report.krippendorff_alpha.estimate == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack([judge, human]), level_of_measurement="nominal")
    )
    assert report.agreement.ci_low < report.agreement.estimate < report.agreement.ci_high
    assert report.kappa.ci_low > 0.5  # GPT-4 is a good judge on LLMBar-Natural
    assert report.judge_ties == 0 and report.human_ties == 0
    # the estimand: share of human preferences for output 2
    assert report.classical.estimate == pytest.approx(np.mean(human == 2))


def test_llmbar_position_bias(llmbar):
    judge, swapped, human = (column(llmbar, "gpt4_pref"), column(llmbar, "gpt4_pref_swapped"), column(llmbar, "label"))
    report = calibrate_pairwise(judge, human, judge_swapped=swapped, n_bootstrap=500)
    bias = report.position_bias
    assert bias is not None and bias.n == 100
    assert bias.consistency.estimate == pytest.approx(np.mean(judge == swapped))
    first_choices = np.sum(judge == 1) + np.sum(swapped == 2)
    assert bias.first_position_share.estimate == pytest.approx(first_choices / 200)
    inc_first = int(np.sum((judge == 1) & (swapped == 2)))
    inc_second = int(np.sum((judge == 2) & (swapped == 1)))
    assert (bias.inconsistent_first, bias.inconsistent_second) == (inc_first, inc_second)
    assert bias.p_value == pytest.approx(binomtest(inc_first, inc_first + inc_second).pvalue)
    assert bias.agreement_swapped.estimate == pytest.approx(accuracy_score(human, swapped))


def test_llmbar_ratings_to_preferences_with_ties(llmbar):
    r1, r2, human = column(llmbar, "gpt4_rating_1"), column(llmbar, "gpt4_rating_2"), column(llmbar, "label")
    prefs = ratings_to_preferences(r1, r2)
    assert np.array_equal(prefs == PREF_TIE, r1 == r2)
    assert np.array_equal(prefs == PREF_A, r1 > r2)
    report = calibrate_pairwise(prefs, human, n_bootstrap=300)
    assert report.judge_ties == int(np.sum(r1 == r2)) > 0
    # ties are a third category, never agreeing with a human who had to choose
    assert report.agreement.estimate == pytest.approx(np.mean(prefs == human))
    assert report.kappa.estimate == pytest.approx(cohen_kappa_score(prefs.astype(str), human.astype(str)))
    assert report.krippendorff_alpha.estimate == pytest.approx(
        krippendorff.alpha(reliability_data=np.vstack([prefs, human]), level_of_measurement="nominal")
    )


def test_llmbar_length_bias(llmbar):
    judge, human = column(llmbar, "gpt4_pref"), column(llmbar, "label")
    la = np.array([len(r["output_1"]) for r in llmbar], dtype=float)
    lb = np.array([len(r["output_2"]) for r in llmbar], dtype=float)
    report = calibrate_pairwise(judge, human, length_a=la, length_b=lb, n_bootstrap=300)
    bias = report.length_bias
    longer = np.where(la > lb, 1.0, np.where(lb > la, 2.0, PREF_TIE))
    used = longer != PREF_TIE
    assert bias.n == int(used.sum())
    assert bias.judge_prefers_longer.estimate == pytest.approx(np.mean(judge[used] == longer[used]))
    assert bias.human_prefers_longer.estimate == pytest.approx(np.mean(human[used] == longer[used]))
    assert bias.difference.estimate == pytest.approx(
        bias.judge_prefers_longer.estimate - bias.human_prefers_longer.estimate
    )


def test_worked_position_and_length_bias():
    # original 1,1,2,2,1 ; swapped 1,2,2,1,1 ; human 1,1,2,1,2
    # consistent: items 1,3,5 -> 0.6; item 2 picked the first position both times, item 4 the second.
    # first-position choices: original==1 (items 1,2,5) + swapped==2 (items 2,3) = 5 of 10.
    # swapped vs human: 1==1, 2!=1, 2==2, 1==1, 1!=2 -> 0.6. combined (inconsistent -> tie): 1,tie,2,tie,1
    # vs human -> items 1,3 -> 0.4.
    report = calibrate_pairwise(
        [1, 1, 2, 2, 1],
        [1, 1, 2, 1, 2],
        judge_swapped=[1, 2, 2, 1, 1],
        length_a=[10, 5, 3, 8, 2],
        length_b=[5, 10, 3, 1, 9],
        n_bootstrap=200,
    )
    bias = report.position_bias
    assert bias.consistency.estimate == pytest.approx(0.6)
    assert (bias.inconsistent_first, bias.inconsistent_second, bias.inconsistent_tie) == (1, 1, 0)
    assert bias.first_position_share.estimate == pytest.approx(0.5)
    assert bias.p_value == pytest.approx(1.0)
    assert bias.agreement_swapped.estimate == pytest.approx(0.6)
    assert bias.agreement_combined.estimate == pytest.approx(0.4)
    # longer output: A, B, (equal), A, B. Judge picks the longer in item 1 only (1/4), humans in
    # items 1, 4, 5 (3/4): difference -0.5; discordant 0 vs 2 -> exact p = 0.5
    length = report.length_bias
    assert length.n == 4
    assert length.judge_prefers_longer.estimate == pytest.approx(0.25)
    assert length.human_prefers_longer.estimate == pytest.approx(0.75)
    assert length.difference.estimate == pytest.approx(-0.5)
    assert length.p_value == pytest.approx(0.5)


def test_worked_agreement_and_kappa():
    # judge A,A,B,B vs human A,B,B,B: agreement 3/4, kappa 0.5 (same table as the binary worked example)
    report = calibrate_pairwise(["a", "a", "b", "b"], ["A", "B", "B", "B"], n_bootstrap=100)
    assert report.agreement.estimate == pytest.approx(0.75)
    assert report.kappa.estimate == pytest.approx(0.5)


def test_unlabeled_pairs_give_win_rate_ppi():
    rng = np.random.default_rng(5)
    truth_b = rng.uniform(size=3000) < 0.65
    judge = np.where(rng.uniform(size=3000) < 0.85, truth_b, ~truth_b) + 1.0
    human = truth_b + 1.0
    report = calibrate_pairwise(judge[:200], human[:200], unlabeled=judge[200:], n_bootstrap=200)
    d = report.to_dict()
    assert d["ppi"]["estimate"] == pytest.approx(report.ppi.ppi_plus.estimate)
    assert d["ppi"]["ci_low"] <= np.mean(truth_b) <= d["ppi"]["ci_high"]
    assert d["ppi"]["ci_high"] - d["ppi"]["ci_low"] < d["classical"]["ci_high"] - d["classical"]["ci_low"]
    assert d["mapping"]["metric"] == "brier"


def test_constant_judge_reports_undefined_correlations():
    report = calibrate_pairwise([1, 1, 1, 1], [1, 2, 2, 1], unlabeled=[1, 1, 1], n_bootstrap=50)
    assert report.pearson.estimate is None and report.mapping is None
    assert report.kappa.estimate == pytest.approx(0.0)
    assert report.ppi.lam == 0.0
    json.dumps(report.to_dict(), allow_nan=False)


def test_as_preferences_codes():
    assert as_preferences([1, 2, "a", "B", "tie", 0, 1.5, "2"], "p").tolist() == [
        PREF_A,
        PREF_B,
        PREF_A,
        PREF_B,
        PREF_TIE,
        PREF_TIE,
        PREF_TIE,
        PREF_B,
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"judge": [1, 2], "human": [1, 2]}, "need at least 3 labelled pairs, got 2"),
        ({"judge": [1, 2, 3], "human": [1, 2, 1]}, "judge preferences: item 2 is 3, not a preference"),
        ({"judge": [1, 2, "c"], "human": [1, 2, 1]}, "item 2 is 'c'"),
        ({"judge": [1, 2, True], "human": [1, 2, 1]}, "item 2 is True"),
        ({"judge": [1, 2, 1], "human": [1, 2]}, r"differ in length \(3 vs 2\)"),
        ({"judge": [1, 2, 1], "human": [2, 2, 2]}, "human preferences are constant"),
        ({"judge": [1, 2, 1], "human": [1, 2, 2], "judge_swapped": [1, 2]}, "swapped-order preferences differ"),
        ({"judge": [1, 2, 1], "human": [1, 2, 2], "length_a": [1, 2, 3]}, "needs both length_a and length_b"),
        ({"judge": [1, 2, 1], "human": [1, 2, 2], "length_a": [1, 2, 3], "length_b": [1, 2]}, "lengths differ"),
    ],
)
def test_bad_pairwise_input(kwargs, message):
    with pytest.raises(StatisticsError, match=message):
        calibrate_pairwise(**kwargs, n_bootstrap=10)
