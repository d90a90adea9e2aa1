"""Isotonic mapping judge -> human scale, its cross-validated error, and the recommended threshold."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_curve

from workbench.errors import StatisticsError, ValidationError
from workbench.judge.calibration import ScoreMapping, crossfit, fit_isotonic, fit_mapping, recommend_threshold

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def overall():
    rows = [json.loads(line) for line in (DATA / "unieval_topical_chat.jsonl").read_text().splitlines()]
    return (np.array([r["predict_scores"]["overall"] for r in rows]), np.array([r["scores"]["overall"] for r in rows]))


def test_worked_isotonic():
    # PAVA on y = 1,3,2,4 pools the violating pair (3,2) into 2.5: fitted 1, 2.5, 2.5, 4
    mapping = fit_isotonic([1, 2, 3, 4], [1, 3, 2, 4])
    assert mapping.increasing
    assert mapping.apply([1, 2, 3, 4]).tolist() == [1, 2.5, 2.5, 4]
    assert mapping.apply([0, 3.5, 10]).tolist() == [1, 3.25, 4]  # flat outside, linear between


def test_inverted_judge_gets_decreasing_map():
    mapping = fit_isotonic([4, 3, 2, 1], [1, 2, 2, 5])
    assert not mapping.increasing
    assert mapping.apply([1, 4]).tolist() == [5, 1]


def test_mapping_equals_sklearn_predict_and_roundtrips(overall):
    judge, human = overall
    mapping = fit_isotonic(judge, human)
    model = IsotonicRegression(out_of_bounds="clip").fit(judge, human)
    new = np.linspace(-0.2, 1.2, 57)
    assert np.allclose(mapping.apply(new), model.predict(new))
    stored = json.loads(json.dumps(mapping.to_dict()))
    again = ScoreMapping.from_dict(stored)
    assert again == mapping
    assert np.array_equal(again.apply(new), mapping.apply(new))
    # monotone and on the human scale
    out = mapping.apply(np.sort(judge))
    assert np.all(np.diff(out) >= 0) and out.min() >= human.min() and out.max() <= human.max()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "linear", "x": [0], "y": [0], "increasing": True}, "method 'isotonic'"),
        ({"method": "isotonic", "x": [0, 1], "y": [0], "increasing": True}, "same, non-zero length"),
        ({"method": "isotonic", "x": [1, 0], "y": [0, 1], "increasing": True}, "strictly increasing"),
        ({"method": "isotonic", "x": [0, 1], "y": [1, 0], "increasing": True}, "non-decreasing"),
        ({"method": "isotonic", "x": [0, "a"], "y": [0, 1], "increasing": True}, "mapping.x: item 1"),
        ({"method": "isotonic", "x": [0, 1], "y": [0, 1], "increasing": "yes"}, "mapping.increasing"),
        ([1, 2], "expected an object"),
    ],
)
def test_bad_stored_mapping(data, message):
    with pytest.raises(ValidationError, match=message):
        ScoreMapping.from_dict(data)


def test_crossfit_never_sees_the_item_it_predicts():
    # a judge that is pure noise: in-sample isotonic fits the noise, out-of-fold cannot
    rng = np.random.default_rng(0)
    judge, human = rng.normal(size=200), rng.integers(1, 6, 200).astype(float)
    out_of_fold, _ = crossfit(judge, human, folds=5, seed=0)
    in_sample = fit_isotonic(judge, human).apply(judge)
    assert np.mean(np.abs(in_sample - human)) < np.mean(np.abs(out_of_fold - human))


def test_crossfit_unlabeled_is_fold_average():
    judge, human = np.array([1.0, 2, 3, 4, 5, 6]), np.array([1.0, 1, 2, 2, 3, 3])
    _, unl = crossfit(judge, human, folds=3, seed=0, unlabeled=[0.0, 3.5, 9.0])
    assert unl.shape == (3,)
    assert np.all(np.diff(unl) >= 0) and unl[0] >= 1 and unl[-1] <= 3


def test_cv_errors_on_unieval(overall):
    judge, human = overall
    report = fit_mapping(judge, human, folds=5, seed=0)
    assert report.metric == "mae" and report.folds == 5
    assert report.before_method == "minmax_rescaled"  # 0-1 judge vs 1-5 ratings
    assert report.after < report.before < report.baseline
    d = report.to_dict()
    assert d["cv_error"] == {"before": report.before, "after": report.after, "baseline": report.baseline}
    assert d["x"] == list(report.mapping.x) and d["method"] == "isotonic"
    assert report.threshold is None


def test_worked_cv_error_by_hand():
    # judge 1,3,3,4 vs human 1,2,3,4; 4 folds = leave-one-out.
    # before = mean |judge - human| = (0 + 1 + 0 + 0)/4 = 0.25.
    # baseline (mean of the other three): |1-3|, |2-8/3|, |3-7/3|, |4-2| -> (2 + 2/3 + 2/3 + 2)/4 = 4/3.
    # after: leaving out x=1 the fit is {3: 2.5, 4: 4}, clipped to 2.5 -> 1.5; leaving out (3,2) the
    # fit at 3 is 3 -> 1; leaving out (3,3) it is 2 -> 1; leaving out x=4 the fit is {1: 1, 3: 2.5},
    # clipped to 2.5 -> 1.5. Mean 5/4.
    report = fit_mapping([1, 3, 3, 4], [1, 2, 3, 4], folds=4, seed=0)
    assert report.before_method == "as_is"
    assert report.before == pytest.approx(0.25)
    assert report.baseline == pytest.approx(4 / 3)
    assert report.after == pytest.approx(1.25)


def test_worked_youden_threshold():
    # sklearn's ROC example: thresholds 0.8, 0.4, 0.35, 0.1 give J = .5, 0, .5, 0: the tie goes to
    # the stricter 0.8
    threshold = recommend_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert threshold.value == pytest.approx(0.8)
    assert threshold.youden_j == pytest.approx(0.5)
    assert (threshold.tpr, threshold.fpr) == (0.5, 0.0)


def test_threshold_matches_roc_argmax(overall):
    judge, human = overall
    good = (human >= 4).astype(float)
    threshold = recommend_threshold(judge, good)
    fpr, tpr, _ = roc_curve(good, judge)
    assert threshold.youden_j == pytest.approx(np.max(tpr - fpr))
    assert np.mean(judge[good == 1] >= threshold.value) == pytest.approx(threshold.tpr)
    report = fit_mapping(judge, human, positive_at=4)
    assert report.threshold == threshold and report.threshold_positive == "human >= 4"


def test_binary_mapping_uses_brier():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=300)
    labels = (rng.uniform(size=300) < p).astype(float)
    report = fit_mapping(p**3, labels, binary=True)  # a miscalibrated but informative judge
    assert report.metric == "brier" and report.before_method == "as_is"
    assert report.after < report.before
    assert report.after < report.baseline
    assert report.threshold is not None and report.threshold_positive == "human == 1"


def test_bad_mapping_input():
    with pytest.raises(StatisticsError, match="need at least 3 labelled pairs"):
        fit_mapping([1, 2], [1, 2])
    with pytest.raises(StatisticsError, match="folds must be at least 2"):
        fit_mapping([1, 2, 3], [1, 2, 3], folds=1)
    with pytest.raises(StatisticsError, match="binary mapping needs human labels of 0 or 1"):
        fit_mapping([1, 2, 3], [0, 1, 2], binary=True)
    with pytest.raises(StatisticsError, match="no human rating is at or above 9"):
        fit_mapping([1, 2, 3], [1, 2, 3], positive_at=9)
    with pytest.raises(StatisticsError, match="human scores are constant"):
        fit_isotonic([1, 2, 3], [2, 2, 2])
