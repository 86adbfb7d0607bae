"""Kafka side of the classifier: classify each partition batch in order, with crisis velocity
read from and written to PostgreSQL, then publish the classifications.

The classification event id is fixed by the mention, so a batch redone after a crash publishes
events the router recognises as already seen.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

from services.classifier import repository
from services.classifier.core import ClassificationContext, Classifier, ModelScores, topic_key
from services.classifier.metrics import (
    CLASSIFY_SECONDS,
    INTENTS,
    LANGUAGES,
    PRIORITIES,
    SENTIMENTS,
)
from shared.db import Database
from shared.events import (
    Classification,
    Envelope,
    EventType,
    Mention,
    MentionClassified,
    MentionKind,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.kafka import EventProducer
from shared.topics import CLASSIFICATIONS

Signal = tuple[uuid.UUID, str, datetime]


def is_negative_signal(classification: Classification) -> bool:
    """What counts towards velocity: complaints and clearly negative mentions."""
    return classification.is_complaint or classification.sentiment.label == "negative"


def similar_recent(signals: list[Signal], mention: Mention, topic: str, window: timedelta) -> int:
    since = mention.created_at - window
    return sum(
        1
        for mention_id, key, occurred_at in signals
        if key == topic
        and since < occurred_at <= mention.created_at
        and mention_id != mention.mention_id
    )


class MentionClassifier:
    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        classifier: Classifier,
        tenant: str,
        velocity_window: timedelta,
    ) -> None:
        self._db = db
        self._producer = producer
        self._classifier = classifier
        self._tenant = tenant
        self._window = velocity_window

    async def handle(self, envelopes: list[Envelope[Mention]]) -> None:
        customer = [e.data for e in envelopes if e.data.kind is not MentionKind.REPLY]
        analyses = {m.mention_id: self._classifier.analyze(m) for m in customer}
        scores: dict[uuid.UUID, ModelScores] = {}
        if customer and self._classifier.has_models:
            sentiments, complaints = await asyncio.to_thread(
                self._classifier.model_scores, [m.text for m in customer]
            )
            scores = {
                m.mention_id: (
                    None if sentiments is None else [sentiments[index]],
                    None if complaints is None else [complaints[index]],
                )
                for index, m in enumerate(customer)
            }
        topics = {
            m.mention_id: topic_key(m, analyses[m.mention_id], self._classifier.lexicons)
            for m in customer
        }
        signals: list[Signal] = []
        if customer:
            async with self._db.begin() as conn:
                signals = await repository.recent_signals(
                    conn,
                    self._tenant,
                    sorted(set(topics.values())),
                    min(m.created_at for m in customer) - self._window,
                )
        started = time.perf_counter()
        new_signals: list[Signal] = []
        outgoing: list[Envelope[MentionClassified]] = []
        for envelope in envelopes:
            mention = envelope.data
            classification: Classification | None = None
            if mention.kind is not MentionKind.REPLY:
                topic = topics[mention.mention_id]
                context = ClassificationContext(
                    similar_negative_recent=similar_recent(signals, mention, topic, self._window),
                    window_seconds=int(self._window.total_seconds()),
                    topic=topic,
                )
                classification = self._classifier.decide_batch(
                    [(mention, context)],
                    [analyses[mention.mention_id]],
                    scores.get(mention.mention_id),
                )[0]
                _count(classification)
                if is_negative_signal(classification):
                    signal = (mention.mention_id, topic, mention.created_at)
                    signals.append(signal)
                    new_signals.append(signal)
            outgoing.append(
                new_envelope(
                    EventType.MENTION_CLASSIFIED,
                    MentionClassified(mention=mention, classification=classification),
                    tenant=envelope.tenant,
                    subject=envelope.subject,
                    trace=envelope.trace.child(),
                    event_id=stable_id(EventType.MENTION_CLASSIFIED.value, str(envelope.id)),
                )
            )
        CLASSIFY_SECONDS.observe(time.perf_counter() - started)
        if new_signals:
            async with self._db.begin() as conn:
                await repository.add_signals(conn, self._tenant, new_signals)
        await self._producer.publish_many(CLASSIFICATIONS, outgoing)

    async def prune(self) -> None:
        async with self._db.begin() as conn:
            await repository.prune(conn, utcnow() - 2 * self._window - timedelta(days=1))


def _count(classification: Classification) -> None:
    PRIORITIES.labels(classification.priority.value).inc()
    SENTIMENTS.labels(classification.sentiment.label).inc()
    LANGUAGES.labels(classification.language).inc()
    for intent in classification.intents:
        INTENTS.labels(intent.value).inc()
