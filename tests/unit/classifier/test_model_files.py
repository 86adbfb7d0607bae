"""Model files: format 1 (before the encoder) still loads, unknown formats are refused."""

from __future__ import annotations

import csv
from pathlib import Path

import joblib
import pytest

from services.classifier.core.models import MODEL_FORMAT, load_model, train


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    data = tmp_path / "history.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "sentiment"])
        writer.writerows(
            [
                ["thanks, great help", "positive"],
                ["love it", "positive"],
                ["still no refund", "negative"],
                ["broken again", "negative"],
                ["what time do you open", "neutral"],
                ["is there a store in Lyon", "neutral"],
            ]
        )
    return train(data, tmp_path / "model.joblib")


def test_a_file_written_before_the_encoder_existed_still_loads(model_file: Path) -> None:
    document = joblib.load(model_file)
    assert document["format"] == MODEL_FORMAT and "encoder" not in document
    document["format"] = 1
    joblib.dump(document, model_file)
    model = load_model(model_file)
    assert model.encoder is None
    assert set(model.predict_proba(["thanks"])[0]) == {"negative", "neutral", "positive"}


def test_an_unknown_format_is_refused(model_file: Path) -> None:
    document = joblib.load(model_file)
    document["format"] = 99
    joblib.dump(document, model_file)
    with pytest.raises(ValueError, match="not a model file"):
        load_model(model_file)
