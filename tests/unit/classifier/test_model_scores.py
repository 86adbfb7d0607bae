"""Trained models' scores can be computed ahead (in a worker thread) with the same result."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from services.classifier.core import NO_CONTEXT, Classifier, default_lexicons

from .conftest import MakeMention


class CountingModel:
    """A sentiment model that says "positive" and counts its calls."""

    name = "counting"
    target: Literal["sentiment", "complaint"] = "sentiment"

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        self.calls += 1
        return [{"negative": 0.1, "neutral": 0.2, "positive": 0.7} for _ in texts]


def test_scores_computed_ahead_give_the_same_decisions(mention: MakeMention) -> None:
    model = CountingModel()
    classifier = Classifier(default_lexicons(), [model])
    mentions = [mention("thanks for the quick fix"), mention("still waiting for my refund")]
    items = [(m, NO_CONTEXT) for m in mentions]
    analyses = [classifier.analyze(m) for m in mentions]
    assert classifier.has_models and not Classifier.default().has_models
    scores = classifier.model_scores([m.text for m in mentions])
    assert model.calls == 1 and scores[1] is None
    ahead = classifier.decide_batch(items, analyses, scores)
    assert model.calls == 1  # nothing recomputed
    assert ahead == classifier.decide_batch(items, analyses)
    assert all(c.sentiment.label == "positive" for c in ahead)
    assert "model positive (0.70)" in ahead[0].reasons
