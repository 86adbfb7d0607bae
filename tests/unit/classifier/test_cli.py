from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.classifier.cli import classifier_app, classify_stream
from services.classifier.core import Classifier

from .conftest import DATA


def test_classify_stream_writes_one_line_per_good_input(
    capfd: pytest.CaptureFixture[str],
) -> None:
    source = io.BytesIO(
        b'{"id": "a", "text": "My order never arrived, I want a refund"}\n'
        b"not json\n"
        b'{"id": 7, "text": "Gracias, todo perfecto", "channel": "instagram",'
        b' "author": {"handle": "ana", "followers": 12}}\n'
        b'{"id": "no-text"}\n'
        b"\n"
    )
    sink = io.BytesIO()
    assert classify_stream(Classifier.default(), source, sink) == 2
    lines = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    assert [line["id"] for line in lines] == ["a", 7]
    assert lines[0]["is_complaint"] is True
    assert lines[0]["priority"] == "P2"
    assert lines[1]["language"] == "es"
    assert lines[1]["sentiment"]["label"] == "positive"
    assert set(lines[0]) == {
        "id", "language", "sentiment", "intents", "is_complaint", "crisis_risk", "priority",
        "reasons",
    }  # fmt: skip
    errors = [orjson.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert [error["line"] for error in errors] == [2, 4]


def test_train_and_evaluate_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    data = DATA / "complaints_multisector_en.csv"
    model = tmp_path / "complaint.joblib"
    trained = runner.invoke(classifier_app, ["train", "--data", str(data), "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    assert model.is_file()
    evaluated = runner.invoke(
        classifier_app, ["evaluate", "--data", str(data), "--model", str(model)]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert "macro-F1" in evaluated.output
    assert "confusion matrix" in evaluated.output
    assert "texts/s" in evaluated.output
    rules = runner.invoke(
        classifier_app, ["evaluate", "--data", str(data), "--target", "complaint"]
    )
    assert rules.exit_code == 0, rules.output
    assert "rules-v1" in rules.output
