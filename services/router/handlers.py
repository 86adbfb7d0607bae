"""Kafka side of the router: thread classified mentions into cases, durably, exactly once.

One transaction per partition batch writes the cases, the mentions, the case events (outbox) and
the webhook deliveries; only after it commits is the Kafka offset committed. A redelivered
mention is recognised by its id and skipped. The outbox relay then publishes case events to
Kafka, so a crash between the database commit and the publish loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson

from services.router import repository
from services.router.core import RoutingPolicy, route
from services.router.metrics import CASE_EVENTS, MENTIONS_DUPLICATE, MENTIONS_ROUTED
from shared.db import Database
from shared.events import (
    CaseEvent,
    Envelope,
    MentionClassified,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.failpoints import failpoint
from shared.kafka import EventProducer
from shared.topics import CASES

log = logging.getLogger(__name__)
OUTBOX_BATCH = 500
# Published case events stay in the outbox a day, for inspection; Kafka holds them after that.
OUTBOX_KEPT = timedelta(days=1)


def webhook_body(event: Envelope[CaseEvent]) -> bytes:
    """Standard Webhooks payload: `type`, `timestamp`, `data` (case, mention, classification)."""
    return orjson.dumps(
        {
            "type": event.type.value,
            "timestamp": event.occurred_at.isoformat(),
            "data": event.data.model_dump(mode="json", exclude={"mention": {"raw"}})
            | {"event_id": str(event.id), "trace_id": event.trace.trace_id},
        }
    )


@dataclass
class BatchCounts:
    """Metrics of one batch, held back until its transaction has committed."""

    duplicates: int = 0
    routed: Counter[str] = field(default_factory=Counter)
    case_events: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def count(self) -> None:
        MENTIONS_DUPLICATE.inc(self.duplicates)
        for kind, n in self.routed.items():
            MENTIONS_ROUTED.labels(kind).inc(n)
        for labels, n in self.case_events.items():
            CASE_EVENTS.labels(*labels).inc(n)


class CaseRouter:
    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        tenant: str,
        policy: RoutingPolicy,
        deliveries_due: asyncio.Event,
        *,
        outbox_batch: int = OUTBOX_BATCH,
    ) -> None:
        self._db = db
        self._producer = producer
        self._tenant = tenant
        self._policy = policy
        self._deliveries_due = deliveries_due
        self._outbox_batch = outbox_batch
        self._outbox_lock = asyncio.Lock()

    async def handle(self, envelopes: list[Envelope[MentionClassified]]) -> None:
        # Metrics are counted only once the transaction has committed: a batch retried after a
        # failed commit must not be counted twice.
        counted = BatchCounts()
        deliveries_enqueued = await self._store(envelopes, counted)
        failpoint("router.after_commit")
        counted.count()
        if deliveries_enqueued:
            self._deliveries_due.set()
        await self.relay_outbox()

    async def _store(
        self, envelopes: list[Envelope[MentionClassified]], counted: BatchCounts
    ) -> bool:
        """Route the batch in one transaction; True when webhook deliveries were enqueued."""
        async with self._db.begin() as conn:
            # Lock the conversations first, then ask which mentions are known: a member that
            # lost its partitions but still runs a batch (session timeout) waits here for the
            # new owner's transaction and then sees its mentions, instead of applying them twice.
            current = await repository.cases_for_update(
                conn,
                self._tenant,
                sorted({e.data.mention.conversation_key for e in envelopes}),
            )
            known = await repository.known_mentions(
                conn, [e.data.mention.mention_id for e in envelopes]
            )
            fresh: dict[uuid.UUID, Envelope[MentionClassified]] = {}
            for envelope in envelopes:
                mention_id = envelope.data.mention.mention_id
                if mention_id in known or mention_id in fresh:
                    counted.duplicates += 1
                else:
                    fresh[mention_id] = envelope
            if not fresh:
                return False
            endpoints = await repository.endpoints_for(conn, self._tenant)
            changed: dict[uuid.UUID, Any] = {}
            mention_rows: list[dict[str, Any]] = []
            outbox_rows: list[dict[str, Any]] = []
            delivery_rows: list[dict[str, Any]] = []
            for envelope in fresh.values():
                item = envelope.data
                key = item.mention.conversation_key
                decision = route(item, current.get(key), tenant=self._tenant, policy=self._policy)
                if decision.case is not None:
                    current[key] = decision.case
                    changed[decision.case.case_id] = decision.case
                mention_rows.append(
                    {
                        "mention_id": item.mention.mention_id,
                        "case_id": decision.case.case_id if decision.case else None,
                        "event_id": envelope.id,
                        "kind": item.mention.kind.value,
                        "created_at": item.mention.created_at,
                        "mention": item.mention.model_dump(mode="json"),
                        "classification": (
                            item.classification.model_dump(mode="json")
                            if item.classification
                            else None
                        ),
                    }
                )
                counted.routed[item.mention.kind.value] += 1
                if decision.event_type is None or decision.case is None:
                    continue
                event = new_envelope(
                    decision.event_type,
                    CaseEvent(
                        case=decision.case, mention=item.mention, classification=item.classification
                    ),
                    tenant=self._tenant,
                    subject=key,
                    trace=envelope.trace.child(),
                    event_id=stable_id(decision.event_type.value, str(item.mention.mention_id)),
                )
                outbox_rows.append(
                    {
                        "event_id": event.id,
                        "topic": CASES.name,
                        "key": key.encode(),
                        "value": event.to_bytes(),
                    }
                )
                body = webhook_body(event)
                for endpoint in endpoints:
                    if event.type.value in endpoint["event_types"]:
                        delivery_rows.append(
                            {
                                "delivery_id": stable_id(
                                    "delivery", str(endpoint["endpoint_id"]), str(event.id)
                                ),
                                "endpoint_id": endpoint["endpoint_id"],
                                "event_id": event.id,
                                "event_type": event.type.value,
                                "body": body,
                                "status": "pending",
                                "next_attempt_at": utcnow(),
                            }
                        )
                counted.case_events[
                    (event.type.value, decision.case.priority.value, decision.case.team)
                ] += 1
            await repository.upsert_cases(conn, list(changed.values()))
            await repository.add_mentions(conn, mention_rows)
            await repository.add_outbox(conn, outbox_rows)
            await repository.enqueue_deliveries(conn, delivery_rows)
        return bool(delivery_rows)

    async def relay_outbox(self) -> int:
        """Publish case events not yet on Kafka, oldest first; safe to call from anywhere.

        One relay at a time across replicas (an advisory lock held while publishing), so the
        events of a case reach Kafka in the order they were committed. The lock is only tried:
        the consumer's batch never waits on another replica's publish (a slow broker would hold
        it), and the relay timer picks up whatever the running relay had already passed.
        """
        published = 0
        async with self._outbox_lock:
            while True:
                async with self._db.begin() as conn:
                    if not await repository.lock_outbox_relay(conn):
                        return published  # another replica relays; it reads our rows too
                    rows = await repository.unpublished_outbox(conn, self._outbox_batch)
                    if not rows:
                        return published
                    await self._producer.publish_encoded(
                        [(row["topic"], row["key"], row["value"]) for row in rows]
                    )
                    await repository.mark_outbox_published(
                        conn, [row["event_id"] for row in rows], utcnow()
                    )
                published += len(rows)

    async def prune_outbox(self) -> None:
        async with self._db.begin() as conn:
            await repository.prune_outbox(conn, utcnow() - OUTBOX_KEPT)
