"""Accepting mentions: dedupe, publish, remember — in the order that never loses one.

1. claim the mention ids in PostgreSQL (a redelivery finds them published and stops here);
2. publish to Kafka and wait for acks=all;
3. mark them published. Only then does the caller answer 202.
If step 2 fails the claims are released and the caller answers 503, so the sender's retry is
handled as new. If the process dies between 2 and 3, the claim expires and a retry republishes:
a duplicate on the topic, which consumers drop by event id — never a loss.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from services.ingest import repository
from services.ingest.core import ParseResult
from services.ingest.metrics import (
    ITEMS_IGNORED,
    MENTIONS_ACCEPTED,
    MENTIONS_DUPLICATE,
    PUBLISH_SECONDS,
)
from shared.db import Database
from shared.events import EventType, Mention, TraceContext, new_envelope, stable_id, utcnow
from shared.kafka import EventProducer
from shared.topics import MENTIONS


class InFlight(Exception):
    """Another request is publishing the same mention right now; the sender should retry."""


@dataclass
class AcceptResult:
    accepted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def mention_event_id(mention: Mention) -> uuid.UUID:
    """The event id of a mention is fixed by the mention, so a republish has the same id."""
    return stable_id(EventType.MENTION_RECEIVED.value, str(mention.mention_id))


class MentionAcceptor:
    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        tenant: str,
        dedupe_window: timedelta,
        publish_timeout_seconds: float,
    ) -> None:
        self._db = db
        self._publish_timeout = publish_timeout_seconds
        self._producer = producer
        self._tenant = tenant
        self._dedupe_window = dedupe_window

    async def accept(self, parsed: ParseResult, trace: TraceContext) -> AcceptResult:
        result = AcceptResult(ignored=[item.reason for item in parsed.ignored])
        for item in parsed.ignored:
            ITEMS_IGNORED.labels("all", item.reason).inc()
        mentions = _unique(parsed.mentions)
        if not mentions:
            return result
        now = utcnow()
        async with self._db.begin() as conn:
            await repository.relax_commit(conn)
            owned = await repository.claim(
                conn, [(m.mention_id, m.channel.value, m.platform_id) for m in mentions], now
            )
            others = [m.mention_id for m in mentions if m.mention_id not in owned]
            seen = await repository.states(conn, others) if others else {}
        if any(state == "pending" for state in seen.values()):
            await self._release(owned)
            raise InFlight
        to_publish = [m for m in mentions if m.mention_id in owned]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._producer.publish_many(
                    MENTIONS,
                    [
                        new_envelope(
                            EventType.MENTION_RECEIVED,
                            m,
                            tenant=self._tenant,
                            subject=m.conversation_key,
                            trace=trace,
                            event_id=mention_event_id(m),
                        )
                        for m in to_publish
                    ],
                )
        except BaseException:
            await self._release(owned)
            raise
        async with self._db.begin() as conn:
            await repository.relax_commit(conn)
            await repository.mark_published(conn, list(owned), utcnow())
        for mention in to_publish:
            PUBLISH_SECONDS.labels(mention.channel.value).observe(time.perf_counter() - started)
            MENTIONS_ACCEPTED.labels(mention.channel.value).inc()
            result.accepted.append(mention.mention_id)
        for mention in mentions:
            if mention.mention_id not in owned:
                MENTIONS_DUPLICATE.labels(mention.channel.value).inc()
                result.duplicates.append(mention.mention_id)
        return result

    async def _release(self, owned: set[uuid.UUID]) -> None:
        if owned:
            async with self._db.begin() as conn:
                await repository.release(conn, list(owned))

    async def prune(self) -> int:
        async with self._db.begin() as conn:
            return await repository.prune(conn, utcnow() - self._dedupe_window)


def _unique(mentions: Sequence[Mention]) -> list[Mention]:
    """The same item twice in one payload is one mention."""
    by_id: dict[uuid.UUID, Mention] = {}
    for mention in mentions:
        by_id.setdefault(mention.mention_id, mention)
    return list(by_id.values())
