"""Thin, safe wrappers over aiokafka: what 'at least once' means here, spelled out once.

Producer: acks=all and idempotence, so an acknowledged event is on every in-sync replica and a
retried send is not written twice. Consumer: no auto-commit; a partition's offset is committed
only after the handler returned, i.e. after the work is durable (in PostgreSQL, or acked by the
broker for the next topic). Decoding happens here, per message, never in a deserializer, so one
bad message goes to the dead-letter topic instead of killing the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    ConsumerStoppedError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
)

from shared.events import Envelope, InvalidEvent, decode_event
from shared.logging import trace_id_var
from shared.metrics import (
    CONSUMER_BATCH_SECONDS,
    CONSUMER_DEAD_LETTERS,
    CONSUMER_LAG,
    CONSUMER_RECORDS,
    CONSUMER_RETRIES,
    PRODUCER_SEND_SECONDS,
)
from shared.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)

# Retry delays for a batch whose handler failed with a transient error (database or broker down):
# the partition waits, it is never skipped. Capped so recovery is noticed within 30 s.
RETRY_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A batch that keeps failing with a non-transient error is split so the one bad event can be
# isolated and dead-lettered; the others go through.
ATTEMPTS_BEFORE_ISOLATING = 3


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be processed: it goes to the DLQ."""

    def __init__(self, envelope: Envelope[Any], reason: str) -> None:
        super().__init__(reason)
        self.envelope = envelope
        self.reason = reason


class _Stopping(Exception):
    """Shutdown interrupted a retry: the batch stays uncommitted."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, KafkaError, asyncio.TimeoutError)


class EventProducer:
    def __init__(self, bootstrap_servers: str, client_id: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._started = False

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            # A few ms of batching raises throughput a lot and costs little latency.
            linger_ms=5,
            request_timeout_ms=15_000,
        )
        await self._producer.start()
        self._started = True

    @property
    def _client(self) -> AIOKafkaProducer:
        if self._producer is None or not self._started:
            raise KafkaConnectionError("producer not connected")
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        self._producer = None
        self._started = False

    async def is_ready(self) -> bool:
        if not self._started:
            return False
        try:
            await asyncio.wait_for(self._client.client.fetch_all_metadata(), timeout=2)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def publish(self, topic: Topic, envelope: Envelope[Any]) -> None:
        """Send one event and wait for acks=all; raises if the broker did not take it."""
        await self.publish_many(topic, [envelope])

    async def publish_many(self, topic: Topic, envelopes: Sequence[Envelope[Any]]) -> None:
        """Send a batch concurrently and wait until every event is acknowledged."""
        if not envelopes:
            return
        started = time.perf_counter()
        futures = [
            await self._client.send(
                topic.name,
                value=envelope.to_bytes(),
                key=envelope.subject.encode(),
                headers=_headers(envelope),
            )
            for envelope in envelopes
        ]
        await asyncio.gather(*futures)
        PRODUCER_SEND_SECONDS.labels(topic.name).observe(time.perf_counter() - started)

    async def publish_encoded(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        """Send already-encoded (topic, key, value) records, e.g. from an outbox, in order."""
        futures = [
            await self._client.send(topic, value=value, key=key) for topic, key, value in records
        ]
        await asyncio.gather(*futures)

    async def publish_dead_letter(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], error: str
    ) -> None:
        """Keep the original bytes and say why, so the message can be inspected and replayed."""
        headers = [
            *(record.headers or ()),
            ("scs-dlq-error", error[:4000].encode()),
            ("scs-dlq-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
        ]
        await self._client.send_and_wait(
            topic.dead_letter, value=record.value, key=record.key, headers=headers
        )
        CONSUMER_DEAD_LETTERS.labels(topic.name).inc()


def _headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    return [
        ("content-type", b"application/json"),
        ("scs-event-type", envelope.type.value.encode()),
        ("scs-event-id", str(envelope.id).encode()),
        ("traceparent", envelope.trace.traceparent.encode()),
    ]


BatchHandler = Callable[[list[Envelope[Any]]], Awaitable[None]]


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Let the in-flight batch finish and commit before partitions move to another member."""

    def __init__(self, batch_lock: asyncio.Lock) -> None:
        self._batch_lock = batch_lock

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._batch_lock:  # the batch holding it commits before releasing
            log.info("partitions revoked", extra={"partitions": sorted(str(tp) for tp in revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(str(tp) for tp in assigned)})


class EventConsumer:
    """Consume one topic in partition-ordered batches; commit each batch after its handler.

    Backpressure: at most `max_batch_records` records are in flight; the next fetch waits until
    the batch is committed, so a slow database slows the consumer instead of filling memory.
    """

    def __init__(
        self,
        *,
        topic: Topic,
        group_id: str,
        bootstrap_servers: str,
        handler: BatchHandler,
        producer: EventProducer,
        max_batch_records: int = 500,
        transient_errors: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    ) -> None:
        self.topic = topic
        self._handler = handler
        self._producer = producer
        self._max_batch_records = max_batch_records
        self._transient_errors = transient_errors
        self._batch_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=f"{group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_interval_ms=300_000,
            session_timeout_ms=15_000,
            heartbeat_interval_ms=3_000,
        )
        self._running = False

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self.topic.name], listener=_CommitOnRevoke(self._batch_lock))
        self._running = True

    def is_running(self) -> bool:
        return self._running and not self._stopping.is_set()

    async def stop(self) -> None:
        """Finish and commit the current batch, leave the group, close."""
        self._stopping.set()
        async with self._batch_lock:
            pass
        if self._running:
            self._running = False
            await self._consumer.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                batches = await self._consumer.getmany(
                    timeout_ms=500, max_records=self._max_batch_records
                )
            except ConsumerStoppedError:
                return
            except KafkaError:
                log.warning("fetch failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for partition, records in batches.items():
                async with self._batch_lock:
                    if self._stopping.is_set():
                        # Not handled, not committed: the next owner of the partition gets them.
                        return
                    if partition not in self._consumer.assignment():
                        continue  # revoked by a rebalance while an earlier batch ran
                    try:
                        await self._process(partition, records)
                    except _Stopping:
                        return
                    except CommitFailedError:
                        # The group rebalanced under us: the new owner redoes the batch, and
                        # the handlers are idempotent, so nothing is lost or doubled.
                        log.warning("commit refused after a rebalance", exc_info=True)
                    except Exception:
                        # E.g. the dead-letter topic unreachable: fetch the batch again later
                        # rather than let the consumer task die.
                        log.error("batch failed; it will be fetched again", exc_info=True)
                        self._consumer.seek(partition, records[0].offset)
                        await asyncio.sleep(1)

    async def _process(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        started = time.perf_counter()
        envelopes: list[Envelope[Any]] = []
        sources: dict[Any, ConsumerRecord[bytes, bytes]] = {}
        for record in records:
            try:
                envelope = decode_event(record.value)
            except InvalidEvent as exc:
                log.warning(
                    "invalid message sent to dead-letter topic",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": str(exc)[:500],
                    },
                )
                await self._producer.publish_dead_letter(self.topic, record, str(exc))
                continue
            if envelope.type not in self.topic.event_types:
                await self._producer.publish_dead_letter(
                    self.topic, record, f"event type {envelope.type} does not belong here"
                )
                continue
            envelopes.append(envelope)
            sources[envelope.id] = record
        await self._handle(envelopes, sources)
        next_offset = records[-1].offset + 1
        await self._consumer.commit({partition: next_offset})
        highwater = self._consumer.highwater(partition)
        if highwater is not None:
            CONSUMER_LAG.labels(self.topic.name, str(partition.partition)).set(
                max(0, highwater - next_offset)
            )
        CONSUMER_RECORDS.labels(self.topic.name).inc(len(records))
        CONSUMER_BATCH_SECONDS.labels(self.topic.name).observe(time.perf_counter() - started)

    async def _handle(
        self,
        envelopes: list[Envelope[Any]],
        sources: dict[Any, ConsumerRecord[bytes, bytes]],
    ) -> None:
        """Run the handler until it succeeds; dead-letter only what can never succeed."""
        attempt = 0
        while envelopes:
            trace_id_var.set(envelopes[0].trace.trace_id)
            try:
                await self._handler(envelopes)
                return
            except PoisonEvent as poison:
                await self._producer.publish_dead_letter(
                    self.topic, sources[poison.envelope.id], poison.reason
                )
                envelopes = [e for e in envelopes if e.id != poison.envelope.id]
                continue
            except self._transient_errors:
                log.warning("transient failure; batch will be retried", exc_info=True)
            except Exception as exc:
                log.error("handler failed", exc_info=True)
                if attempt + 1 >= ATTEMPTS_BEFORE_ISOLATING:
                    if len(envelopes) == 1:
                        error = "".join(traceback.format_exception_only(exc)).strip()
                        await self._producer.publish_dead_letter(
                            self.topic, sources[envelopes[0].id], f"handler error: {error}"
                        )
                        return
                    for envelope in envelopes:
                        await self._handle([envelope], sources)
                    return
            CONSUMER_RETRIES.labels(self.topic.name).inc()
            delay = RETRY_BACKOFF_SECONDS[min(attempt, len(RETRY_BACKOFF_SECONDS) - 1)]
            attempt += 1
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                continue
            # Stopping with the batch unfinished: leave it uncommitted for the next owner.
            raise _Stopping


async def ensure_topics(bootstrap_servers: str, topics: Sequence[Topic] = ALL_TOPICS) -> list[str]:
    """Create every topic and its dead-letter topic with explicit partitions; returns new ones."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="scs-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for topic in topics:
            config = {"retention.ms": str(topic.retention_ms), "min.insync.replicas": "1"}
            if topic.name not in existing:
                wanted.append(NewTopic(topic.name, topic.partitions, 1, topic_configs=config))
            if topic.dead_letter not in existing:
                wanted.append(NewTopic(topic.dead_letter, 1, 1, topic_configs=config))
        if wanted:
            # Another process may create them at the same moment; either way they exist.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
        return [t.name for t in wanted]
    finally:
        await admin.close()
