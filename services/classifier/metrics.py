"""Classifier metrics: what was decided, and how long deciding took."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PRIORITIES = Counter(
    "scs_classifier_priority_total", "Mentions classified, by priority", ["priority"]
)
INTENTS = Counter("scs_classifier_intent_total", "Intents detected", ["intent"])
SENTIMENTS = Counter("scs_classifier_sentiment_total", "Sentiment labels", ["label"])
LANGUAGES = Counter("scs_classifier_language_total", "Languages seen", ["language"])
CLASSIFY_SECONDS = Histogram(
    "scs_classifier_batch_seconds",
    "Time to classify one batch (pure CPU, without Kafka or database)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
