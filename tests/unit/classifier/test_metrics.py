"""Metric labels take values from closed sets: a client's language never becomes a series."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.classifier.core import UNDETERMINED, Classifier
from services.classifier.metrics import OTHER_LANGUAGE, count_published

from .conftest import MakeMention


def languages_counted(language: str) -> float:
    value = REGISTRY.get_sample_value("scs_classifier_language_total", {"language": language})
    return value or 0.0


def test_client_supplied_languages_are_counted_as_other(
    classifier: Classifier, mention: MakeMention
) -> None:
    known = frozenset(classifier.lexicons.languages) | {UNDETERMINED}
    invented = [f"x{letter}-evil" for letter in "abcde"]
    classifications = [classifier.classify(mention("Where is my order?", language=lang))
                       for lang in [*invented, "es"]]  # fmt: skip
    assert {c.language for c in classifications} >= {"xa", "es"}
    other, spanish = languages_counted(OTHER_LANGUAGE), languages_counted("es")
    count_published(classifications, known)
    assert languages_counted(OTHER_LANGUAGE) == other + len(invented)
    assert languages_counted("es") == spanish + 1
    assert all(languages_counted(c.language) == 0 for c in classifications[:-1])
