"""The training script reproduces the shipped weights' metrics from the training files (the frozen train split
plus the extra training sessions, fixed seed), and the shipped weights carry every file's hash, so they cannot
silently come from other data (and never from the test split)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from workbench.errors import ConfigError
from workbench.feedback.signals import embeddings_available
from workbench.feedback.signals.learned import Model, load_model
from workbench.feedback.signals.train import default_train_files, main, train

DATA = Path(__file__).parent / "data" / "implicit_eval"
TRAIN = default_train_files(DATA / "train.jsonl")


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
    files = [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in TRAIN]
    assert [{k: f[k] for k in ("file", "sha256")} for f in shipped.meta["train_files"]] == files
    test_hash = hashlib.sha256((DATA / "test.jsonl").read_bytes()).hexdigest()
    assert all(f["sha256"] != test_hash for f in files) and len(files) >= 1
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
    # weights from before abandonment read cut-off answers: one feature fewer, refused rather than misread
    older = Model(
        shipped.kind,
        {**shipped.coef, "abandon": shipped.coef["abandon"][:-1]},
        shipped.intercept,
        shipped.threshold,
        {**shipped.meta, "abandon_features": [f for f in shipped.meta["abandon_features"] if f != "unterminated"]},
    )
    with pytest.raises(ConfigError, match=r"trained on abandonment features .* retrain with"):
        Model.from_bytes(older.to_bytes())


def test_training_cli_says_when_the_split_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--train", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)]) == 2
    assert "no train split" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_training_takes_several_files_and_refuses_a_session_twice(tmp_path: Path) -> None:
    first = (DATA / "train.jsonl").read_text(encoding="utf-8").splitlines()
    a, b = tmp_path / "train.jsonl", tmp_path / "train_extra_x.jsonl"
    a.write_text("\n".join(first[:60]) + "\n", encoding="utf-8")
    b.write_text("\n".join(first[60:120]) + "\n", encoding="utf-8")
    assert default_train_files(a) == [a, b]
    trained = train([a, b])
    assert [f["file"] for f in trained.model.meta["train_files"]] == ["train.jsonl", "train_extra_x.jsonl"]
    assert trained.model.meta["train_sessions"] == 120
    b.write_text("\n".join(first[50:70]) + "\n", encoding="utf-8")  # sessions 50-59 are in both files
    assert main(["--train", str(a), "--train", str(b), "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "weights_learned.npz").exists()
