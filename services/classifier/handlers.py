"""Kafka side of the classifier: classify each partition batch in order, with crisis velocity
read from and written to PostgreSQL, then publish the classifications.

The classification event id is fixed by the mention, so a batch redone after a crash publishes
events the router recognises as already seen; velocity remembers which mentions it counted, so
the redone batch neither counts them again nor counts them in their own velocity. Metrics are
counted only once the batch is published.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from services.classifier import repository
from services.classifier.core import (
    UNDETERMINED,
    ClassificationContext,
    Classifier,
    ModelScores,
    VelocityCounts,
    VelocityWindow,
    topic_key,
)
from services.classifier.metrics import CLASSIFY_SECONDS, count_published
from shared.db import Database
from shared.events import (
    Classification,
    Envelope,
    EventType,
    Mention,
    MentionClassified,
    MentionKind,
    by_tenant,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.kafka import EventProducer
from shared.topics import CLASSIFICATIONS


class MentionClassifier:
    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        classifier: Classifier,
        velocity_window: timedelta,
    ) -> None:
        self._db = db
        self._producer = producer
        self._classifier = classifier
        self._window = VelocityWindow(int(velocity_window.total_seconds()))
        self._known_languages = frozenset(classifier.lexicons.languages) | {UNDETERMINED}

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
        # Velocity is each tenant's own: one tenant's storm never counts towards another's.
        velocities: dict[str, VelocityCounts] = {}
        tenants = by_tenant(e for e in envelopes if e.data.kind is not MentionKind.REPLY)
        if tenants:
            async with self._db.begin() as conn:
                for tenant, group in tenants.items():
                    mentions = [e.data for e in group]
                    velocities[tenant] = await repository.load_velocity(
                        conn,
                        tenant,
                        self._window,
                        sorted({topics[m.mention_id] for m in mentions}),
                        [m.mention_id for m in mentions],
                        min(m.created_at for m in mentions),
                        max(m.created_at for m in mentions),
                    )
        started = time.perf_counter()
        classifications: list[Classification] = []
        outgoing: list[Envelope[MentionClassified]] = []
        for envelope in envelopes:
            mention = envelope.data
            classification: Classification | None = None
            if mention.kind is not MentionKind.REPLY:
                velocity = velocities[envelope.tenant]
                topic = topics[mention.mention_id]
                context = ClassificationContext(
                    similar_negative_recent=velocity.similar_before(mention, topic),
                    window_seconds=self._window.window_seconds,
                    topic=topic,
                )
                classification = self._classifier.decide_batch(
                    [(mention, context)],
                    [analyses[mention.mention_id]],
                    scores.get(mention.mention_id),
                )[0]
                velocity.observe(mention, topic, classification)
                classifications.append(classification)
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
        classify_seconds = time.perf_counter() - started
        counted = {t: v.new_signals for t, v in velocities.items() if v.new_signals}
        if counted:
            async with self._db.begin() as conn:
                for tenant, signals in counted.items():
                    await repository.record_velocity(conn, tenant, signals)
        await self._producer.publish_many(CLASSIFICATIONS, outgoing)
        CLASSIFY_SECONDS.observe(classify_seconds)
        count_published(classifications, self._known_languages)

    async def prune(self) -> None:
        horizon = timedelta(seconds=2 * self._window.window_seconds) + timedelta(days=1)
        async with self._db.begin() as conn:
            await repository.prune(conn, utcnow() - horizon)
