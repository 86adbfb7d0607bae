"""Crisis velocity: how many similar negative mentions came in the trailing window.

A single angry tweet is a case; fifty about the same outage in ten minutes are a crisis. The
count is kept per topic (`topic_key`) in BUCKETS_PER_WINDOW time buckets of event time, not as
a list of mentions: reading the velocity of a mention sums the same fixed number of buckets
whether ten or ten thousand similar mentions came before it, so a storm costs what calm costs.
Event time (not arrival time) keeps replays and late messages where they belong.

This module is pure: the service loads the buckets of a batch's topics and the ids it already
counted from PostgreSQL (shared by every replica, kept across restarts), asks `similar_before`
and `observe` here per mention, and stores `new_signals`. The ids make it idempotent: a mention
Kafka redelivers is neither counted twice nor counted in its own velocity.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat

from shared.events import Classification, Mention

BUCKETS_PER_WINDOW = 60


def is_negative_signal(classification: Classification) -> bool:
    """What counts towards velocity: complaints and clearly negative mentions."""
    return classification.is_complaint or classification.sentiment.label == "negative"


@dataclass(frozen=True, slots=True)
class CountedSignal:
    """One negative mention counted in one topic's bucket (`bucket`: start, epoch seconds)."""

    mention_id: uuid.UUID
    topic: str
    bucket: int


@dataclass(frozen=True, slots=True)
class VelocityWindow:
    """The trailing window cut into buckets of `bucket_seconds` (a 600 s window: 10 s)."""

    window_seconds: int
    bucket_seconds: int = field(init=False)
    buckets: int = field(init=False)

    def __post_init__(self) -> None:
        width = max(1, self.window_seconds // BUCKETS_PER_WINDOW)
        object.__setattr__(self, "bucket_seconds", width)
        object.__setattr__(self, "buckets", math.ceil(self.window_seconds / width))

    def bucket_of(self, at: datetime) -> int:
        return int(at.timestamp()) // self.bucket_seconds * self.bucket_seconds

    def first_bucket(self, at: datetime) -> int:
        """The oldest bucket counted for a mention at `at`; the newest is its own."""
        return self.bucket_of(at) - (self.buckets - 1) * self.bucket_seconds

    @staticmethod
    def as_datetime(bucket: int) -> datetime:
        return datetime.fromtimestamp(bucket, UTC)

    @staticmethod
    def as_bucket(start: datetime) -> int:
        return int(start.timestamp())


class VelocityCounts:
    """The buckets of some topics, as loaded, plus what this batch counts on top of them."""

    def __init__(
        self,
        window: VelocityWindow,
        buckets: Mapping[tuple[str, int], int] | None = None,
        counted: Iterable[CountedSignal] = (),
    ) -> None:
        self.window = window
        self._buckets: dict[str, dict[int, int]] = {}
        for (topic, bucket), negatives in (buckets or {}).items():
            self._buckets.setdefault(topic, {})[bucket] = negatives
        self._counted = {signal.mention_id: signal for signal in counted}
        self.new_signals: list[CountedSignal] = []

    def similar_before(self, mention: Mention, topic: str) -> int:
        """Negative mentions of `topic` in the window that ends with the mention's bucket,
        not counting the mention itself: a fixed number of buckets, whatever the storm."""
        per_bucket = self._buckets.get(topic)
        if not per_bucket:
            return 0
        width = self.window.bucket_seconds
        first = self.window.first_bucket(mention.created_at)
        last = first + (self.window.buckets - 1) * width
        total = sum(map(per_bucket.get, range(first, last + 1, width), repeat(0)))
        itself = self._counted.get(mention.mention_id)
        if itself is not None and itself.topic == topic and first <= itself.bucket <= last:
            total -= 1
        return max(0, total)

    def observe(self, mention: Mention, topic: str, classification: Classification) -> bool:
        """Count the mention if it is negative and not counted yet; True when it was counted."""
        if not is_negative_signal(classification) or mention.mention_id in self._counted:
            return False
        signal = CountedSignal(mention.mention_id, topic, self.window.bucket_of(mention.created_at))
        per_bucket = self._buckets.setdefault(topic, {})
        per_bucket[signal.bucket] = per_bucket.get(signal.bucket, 0) + 1
        self._counted[signal.mention_id] = signal
        self.new_signals.append(signal)
        return True
