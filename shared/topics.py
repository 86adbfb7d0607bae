"""The one place that names topics, their keys, partitions and dead-letter topics.

Every topic is keyed by the conversation key (`<channel>:<conversation id>`), so all events of
one conversation land on the same partition number across topics and stay in order. All topics
have the same partition count for that reason: changing it is a migration, not a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.events import CASE_EVENT_TYPES, CRISIS_EVENT_TYPES, EventType

PARTITIONS = 6


@dataclass(frozen=True)
class Topic:
    name: str
    event_types: frozenset[EventType]
    partitions: int = PARTITIONS
    retention_ms: int = 7 * 24 * 3600 * 1000
    # Dead letters wait for a person and a fix (`scs dlq replay`): kept four times as long.
    dead_letter_retention_ms: int = 28 * 24 * 3600 * 1000

    @property
    def dead_letter(self) -> str:
        """Messages that can never be processed go here, with the error in the headers."""
        return f"{self.name}.dlq"


MENTIONS = Topic("ingest.mention.v1", frozenset({EventType.MENTION_RECEIVED}))
CLASSIFICATIONS = Topic("classifier.classification.v1", frozenset({EventType.MENTION_CLASSIFIED}))
CASES = Topic("router.case.v1", CASE_EVENT_TYPES)
# Keyed by the crisis's topic key: an incident spans many conversations.
CRISES = Topic("router.crisis.v1", CRISIS_EVENT_TYPES)

ALL_TOPICS: tuple[Topic, ...] = (MENTIONS, CLASSIFICATIONS, CASES, CRISES)


def topic_for(event_type: EventType) -> Topic:
    for topic in ALL_TOPICS:
        if event_type in topic.event_types:
            return topic
    raise KeyError(event_type)
