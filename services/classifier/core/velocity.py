"""Velocity of similar negative mentions: a pure, bounded, serializable sliding-window counter.

A single angry tweet is a case; fifty about the same outage in ten minutes are a crisis. The
tracker counts negative mentions per topic (`topic_key`: brand + crisis category or incident
topic) by *event* time, so replays and late messages count where they belong. It is idempotent
per mention id (Kafka redelivers), bounded (events per topic, number of topics), and its state
is a plain dict the service can store in PostgreSQL and restore after a restart; `restore`
merges, so snapshots from several partitions combine into one view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.events import Classification, Mention

from .classifier import ClassificationContext, Classifier, topic_key

SNAPSHOT_VERSION = 1
TopicFunction = Callable[[Mention], str]


class VelocityTracker:
    """Negative mentions per topic in the last `window_seconds` of event time."""

    def __init__(
        self,
        topic_of: TopicFunction | None = None,
        *,
        window_seconds: int | None = None,
        max_events_per_topic: int | None = None,
        max_topics: int | None = None,
    ) -> None:
        classifier = Classifier.default()
        limits = classifier.rules.velocity
        self._topic_of = topic_of or classifier.topic_of
        self.window_seconds = window_seconds or limits.window_seconds
        self.max_events_per_topic = max_events_per_topic or limits.max_events_per_topic
        self.max_topics = max_topics or limits.max_topics
        # topic -> (event time, mention id) in arrival order, and the ids for idempotency
        self._events: dict[str, deque[tuple[float, str]]] = {}
        self._seen: dict[str, set[str]] = {}
        self._latest = float("-inf")

    def topic_of(self, mention: Mention) -> str:
        return self._topic_of(mention)

    def context_for(self, mention: Mention, topic: str | None = None) -> ClassificationContext:
        """How many negative mentions of the same topic came in the window before this one."""
        key = topic or self._topic_of(mention)
        at = mention.created_at.timestamp()
        start = at - self.window_seconds
        count = sum(
            1
            for when, mention_id in self._events.get(key, ())
            if start <= when <= at and mention_id != str(mention.mention_id)
        )
        return ClassificationContext(
            similar_negative_recent=count, window_seconds=self.window_seconds, topic=key
        )

    def observe(
        self, mention: Mention, classification: Classification, topic: str | None = None
    ) -> bool:
        """Count the mention if it is negative; False when ignored (not negative or seen)."""
        if not (classification.is_complaint or classification.sentiment.label == "negative"):
            return False
        return self._add(
            topic or self._topic_of(mention), mention.created_at, str(mention.mention_id)
        )

    def _add(self, key: str, created_at: datetime | float, mention_id: str) -> bool:
        at = created_at if isinstance(created_at, float) else created_at.timestamp()
        seen = self._seen.setdefault(key, set())
        if mention_id in seen:
            return False
        events = self._events.setdefault(key, deque())
        events.append((at, mention_id))
        seen.add(mention_id)
        self._latest = max(self._latest, at)
        self._prune(key)
        if len(self._events) > self.max_topics:
            self._evict()
        return True

    def _prune(self, key: str) -> None:
        """Drop events that fell out of the window (by the latest event time) or over the cap."""
        events, seen = self._events[key], self._seen[key]
        horizon = self._latest - self.window_seconds
        if len(events) > 1 and events[-1][0] < events[-2][0]:
            # out-of-order arrival: keep the deque sorted so pruning from the left is correct
            ordered = sorted(events)
            events.clear()
            events.extend(ordered)
        while events and (events[0][0] < horizon or len(events) > self.max_events_per_topic):
            _, dropped = events.popleft()
            seen.discard(dropped)
        if not events:
            del self._events[key], self._seen[key]

    def _evict(self) -> None:
        """Too many topics: forget the ones whose newest event is oldest."""
        for key in list(self._events):
            self._prune(key)
        excess = len(self._events) - self.max_topics
        if excess > 0:
            stale = sorted(self._events, key=lambda name: self._events[name][-1][0])[:excess]
            for key in stale:
                del self._events[key], self._seen[key]

    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able state: what the service stores to survive restarts."""
        for key in list(self._events):
            self._prune(key)
        return {
            "version": SNAPSHOT_VERSION,
            "window_seconds": self.window_seconds,
            "topics": {
                key: [[when, mention_id] for when, mention_id in events]
                for key, events in self._events.items()
            },
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Merge a snapshot in (idempotent: events already known are not counted twice)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported velocity snapshot version {snapshot.get('version')!r}")
        for key, events in snapshot.get("topics", {}).items():
            for when, mention_id in events:
                self._add(str(key), float(when), str(mention_id))

    @classmethod
    def from_snapshot(
        cls, snapshot: dict[str, Any], topic_of: TopicFunction | None = None
    ) -> VelocityTracker:
        tracker = cls(topic_of, window_seconds=int(snapshot["window_seconds"]))
        tracker.restore(snapshot)
        return tracker


def classify_tracked(
    classifier: Classifier, tracker: VelocityTracker, mention: Mention
) -> Classification:
    """The service's step: context from the tracker, classify, then count it if negative.

    The text is analysed once: the topic comes from the same analysis as the classification.
    """
    analysis = classifier.analyze(mention)
    topic = topic_key(mention, analysis, classifier.lexicons)
    context = tracker.context_for(mention, topic)
    classification = classifier.decide_batch([(mention, context)], [analysis])[0]
    tracker.observe(mention, classification, topic)
    return classification
