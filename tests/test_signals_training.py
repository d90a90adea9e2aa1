"""The training script reproduces the shipped weights' metrics from the frozen train split (fixed seed),
and the shipped weights carry the train split's hash, so they cannot silently come from other data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ConfigError
from workbench.feedback.signals import embeddings_available
from workbench.feedback.signals.learned import Model, load_model
from workbench.feedback.signals.train import main, train

TRAIN = Path(__file__).parent / "data" / "implicit_eval" / "train.jsonl"


@pytest.mark.parametrize(
    "kind",
    [
        "learned",
        pytest.param(
            "embedding",
            marks=pytest.mark.skipif(
                not embeddings_available(), reason="the embeddings extra (MiniLM) is not installed"
            ),
        ),
    ],
)
def test_training_reproduces_the_shipped_weights(kind: str) -> None:
    shipped = load_model(kind)
    assert shipped.meta["train_sha256"] == hashlib.sha256(TRAIN.read_bytes()).hexdigest()
    encoder = None
    if kind == "embedding":
        from workbench.feedback.signals.embeddings import load_encoder

        encoder = load_encoder()
    again = train(TRAIN, kind, encoder)
    assert again.cv == shipped.meta["cv"]  # the cross-validated precision/recall/threshold per signal
    for signal, coef in shipped.coef.items():
        assert np.allclose(again.model.coef[signal], coef, atol=1e-4), signal
        assert again.model.threshold[signal] == shipped.threshold[signal]


def test_weights_round_trip_and_refuse_other_feature_versions(tmp_path: Path) -> None:
    shipped = load_model("learned")
    copy = Model.from_bytes(shipped.to_bytes())
    assert copy.threshold == shipped.threshold and all(
        np.array_equal(copy.coef[s], shipped.coef[s]) for s in shipped.coef
    )
    stale = Model(
        shipped.kind, shipped.coef, shipped.intercept, shipped.threshold, {**shipped.meta, "features_version": -1}
    )
    with pytest.raises(ConfigError, match=r"retrain with python -m workbench\.feedback\.signals\.train"):
        Model.from_bytes(stale.to_bytes())


def test_training_cli_says_when_the_split_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--train", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]) == 2
    assert "no train split" in capsys.readouterr().err and not list(tmp_path.iterdir())
