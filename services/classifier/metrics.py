"""Classifier metrics: what was decided, and how long deciding took.

Every label takes values from a closed set, so a client cannot grow the series without limit:
priorities, sentiments and intents are enums, and languages are the ones the lexicons know,
plus "und" (undetermined) and "other" for any language a client or a detector sent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from prometheus_client import Counter, Histogram

from shared.events import Classification

OTHER_LANGUAGE = "other"

PRIORITIES = Counter(
    "scs_classifier_priority_total", "Mentions classified, by priority", ["priority"]
)
INTENTS = Counter("scs_classifier_intent_total", "Intents detected", ["intent"])
SENTIMENTS = Counter("scs_classifier_sentiment_total", "Sentiment labels", ["label"])
LANGUAGES = Counter(
    "scs_classifier_language_total", "Languages seen (known ones, und, other)", ["language"]
)
CLASSIFY_SECONDS = Histogram(
    "scs_classifier_batch_seconds",
    "Time to classify one batch (pure CPU, without Kafka or database)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)


def language_label(language: str, known: Collection[str]) -> str:
    return language if language in known else OTHER_LANGUAGE


def count_published(classifications: Sequence[Classification], known: Collection[str]) -> None:
    """Count decisions once they are published: a batch retried before that counts once."""
    for classification in classifications:
        PRIORITIES.labels(classification.priority.value).inc()
        SENTIMENTS.labels(classification.sentiment.label).inc()
        LANGUAGES.labels(language_label(classification.language, known)).inc()
        for intent in classification.intents:
            INTENTS.labels(intent.value).inc()
