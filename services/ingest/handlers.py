"""Accepting mentions: dedupe, publish, remember — in the order that never loses one.

Concurrent requests are handled together in micro-batches (see MentionAcceptor), each step:
1. claim the mention ids in PostgreSQL (a redelivery finds them published and stops here);
2. publish to Kafka and wait for acks=all;
3. mark them published. Only then does the caller answer 202.
If step 2 fails the claims are released and the caller answers 503, so the sender's retry is
handled as new. If the process dies between 2 and 3, the claim expires and a retry republishes:
a duplicate on the topic, which consumers drop by event id — never a loss.

Requests share a batch, so nothing one request carries may fail it: each request's events are
built and size-checked before it joins the queue, and a bad one is refused to its own caller.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import orjson

from services.ingest import repository
from services.ingest.core import ParseResult, with_language
from services.ingest.metrics import (
    ITEMS_IGNORED,
    MENTIONS_ACCEPTED,
    MENTIONS_DUPLICATE,
    PUBLISH_SECONDS,
    ignored_reason_label,
)
from shared.db import Database
from shared.events import (
    MAX_MENTION_EVENT_BYTES,
    Envelope,
    EventType,
    Mention,
    TraceContext,
    new_envelope,
    stable_id,
    utcnow,
)
from shared.failpoints import failpoint
from shared.kafka import EventProducer
from shared.topics import MENTIONS


class InFlight(Exception):
    """Another request is publishing the same mention right now; the sender should retry."""


class Overloaded(Exception):
    """Too many mentions are already waiting; the sender should retry later."""


class MentionRefused(ValueError):
    """A mention that can never be published (e.g. its event is over the broker's limit)."""

    def __init__(self, message: str, *, status: int, field: str) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass
class AcceptResult:
    accepted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def mention_event_id(mention: Mention) -> uuid.UUID:
    """The event id of a mention is fixed by the mention, so a republish has the same id."""
    return stable_id(EventType.MENTION_RECEIVED.value, str(mention.mention_id))


def mention_event(mention: Mention, trace: TraceContext, tenant: str) -> Envelope[Mention]:
    """The `mention.received` event, refused (413 naming the largest field) when its encoding
    would not fit the broker: only the request that carries it fails, never its batch."""
    envelope = new_envelope(
        EventType.MENTION_RECEIVED,
        mention,
        tenant=tenant,
        subject=mention.conversation_key,
        trace=trace,
        event_id=mention_event_id(mention),
    )
    size = len(envelope.to_bytes())
    if size > MAX_MENTION_EVENT_BYTES:
        fields = mention.model_dump(mode="json")
        largest = max(fields, key=lambda name: len(orjson.dumps(fields[name])))
        raise MentionRefused(
            f"the mention's event would be {size} bytes, over the limit of "
            f"{MAX_MENTION_EVENT_BYTES}; {largest} is the largest part",
            status=413,
            field=largest,
        )
    return envelope


@dataclass
class _Request:
    events: list[Envelope[Mention]]
    done: asyncio.Future[AcceptResult]
    ignored: list[str]

    @property
    def mentions(self) -> list[Mention]:
        return [event.data for event in self.events]


class MentionAcceptor:
    """Accepts mentions in micro-batches: requests that arrive while a batch is being made
    durable are claimed, published and marked together (one transaction each, one Kafka batch),
    so throughput grows with load while each request still waits for its own broker ack."""

    # Upper bound on one batch: keeps a batch's transaction and Kafka request small.
    MAX_BATCH_MENTIONS = 500

    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        dedupe_window: timedelta,
        publish_timeout_seconds: float,
        *,
        max_pending_mentions: int,
        claim_timeout: timedelta,
    ) -> None:
        self._db = db
        self._producer = producer
        self._dedupe_window = dedupe_window
        self._publish_timeout = publish_timeout_seconds
        self._max_pending = max_pending_mentions
        self._claim_timeout = claim_timeout
        self._queue: list[_Request] = []
        self._pending = 0  # mentions in the queue, not yet taken into a batch
        self._worker: asyncio.Task[None] | None = None

    async def accept(
        self, parsed: ParseResult, trace: TraceContext, tenant: str, channel: str = "generic"
    ) -> AcceptResult:
        """Make the request's mentions durable as the tenant's (their ids scoped to it, so
        another tenant's copy of the same item is its own mention); raises MentionRefused (this
        request's fault), Overloaded or InFlight (retry later), or what made the batch fail."""
        ignored = [item.reason for item in parsed.ignored]
        events = [
            mention_event(with_language(mention.in_tenant(tenant)), trace, tenant)
            for mention in _unique(parsed.mentions)
        ]
        if events:
            # An empty queue takes any request, so one larger than the bound is not refused
            # forever; memory stays within the bound plus one request (itself size-limited).
            if self._pending and self._pending + len(events) > self._max_pending:
                raise Overloaded
            request = _Request(events, asyncio.get_running_loop().create_future(), ignored)
            self._queue.append(request)
            self._pending += len(events)
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._drain(), name="accept mentions")
            result = await request.done
        else:
            result = AcceptResult(ignored=ignored)
        # Counted once the request succeeded: a retried 503 must not count its items twice.
        for item in parsed.ignored:
            ITEMS_IGNORED.labels(channel, ignored_reason_label(item.reason)).inc()
        return result

    async def _drain(self) -> None:
        while self._queue:
            batch: list[_Request] = []
            size = 0
            while self._queue and (not batch or size < self.MAX_BATCH_MENTIONS):
                batch.append(self._queue.pop(0))
                size += len(batch[-1].events)
            self._pending -= size
            try:
                results = await self._accept_batch(batch)
            except Exception as exc:
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                continue
            for request, result in zip(batch, results, strict=True):
                if request.done.done():
                    continue  # the caller went away; its mentions are durable all the same
                if isinstance(result, Exception):
                    request.done.set_exception(result)
                else:
                    request.done.set_result(result)

    async def _accept_batch(self, batch: list[_Request]) -> list[AcceptResult | Exception]:
        first_holder: dict[uuid.UUID, tuple[Envelope[Mention], _Request]] = {}
        for request in batch:
            for event in request.events:
                first_holder.setdefault(event.data.mention_id, (event, request))
        async with self._db.begin() as conn:
            await repository.relax_commit(conn)
            owned = await repository.claim(
                conn,
                [
                    (e.data.mention_id, e.data.channel.value, e.data.platform_id)
                    for e, _ in first_holder.values()
                ],
                utcnow(),
                self._claim_timeout,
            )
            others = [mention_id for mention_id in first_holder if mention_id not in owned]
            seen = await repository.states(conn, others) if others else {}
        in_flight = {mention_id for mention_id, state in seen.items() if state == "pending"}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._producer.publish_many(
                    MENTIONS,
                    [
                        event
                        for mention_id, (event, _) in first_holder.items()
                        if mention_id in owned
                    ],
                )
        except BaseException:
            await self._release(owned)
            raise
        failpoint("ingest.after_publish")
        async with self._db.begin() as conn:
            await repository.relax_commit(conn)
            await repository.mark_published(conn, list(owned), utcnow())
        elapsed = time.perf_counter() - started
        return [
            self._result_for(request, owned, in_flight, first_holder, elapsed) for request in batch
        ]

    @staticmethod
    def _result_for(
        request: _Request,
        owned: set[uuid.UUID],
        in_flight: set[uuid.UUID],
        first_holder: dict[uuid.UUID, tuple[Envelope[Mention], _Request]],
        elapsed: float,
    ) -> AcceptResult | Exception:
        if any(mention.mention_id in in_flight for mention in request.mentions):
            return InFlight()
        result = AcceptResult(ignored=request.ignored)
        for mention in request.mentions:
            channel = mention.channel.value
            if mention.mention_id in owned and first_holder[mention.mention_id][1] is request:
                PUBLISH_SECONDS.labels(channel).observe(elapsed)
                MENTIONS_ACCEPTED.labels(channel).inc()
                result.accepted.append(mention.mention_id)
            else:
                MENTIONS_DUPLICATE.labels(channel).inc()
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
