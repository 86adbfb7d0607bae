"""Thin, safe wrappers over aiokafka: what 'at least once' means here, spelled out once.

Producer: acks=all and idempotence, so an acknowledged event is on every in-sync replica and a
retried send is not written twice. Consumer: no auto-commit; a partition's offset is committed
only after the handler returned, i.e. after the work is durable (in PostgreSQL, or acked by the
broker for the next topic). Decoding happens here, per message, never in a deserializer, so one
bad message goes to the dead-letter topic instead of killing the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
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
    for_code,
)
from pydantic import ValidationError

from shared.db import is_data_error, is_transient_db_error, sqlstate_of
from shared.events import Envelope, InvalidEvent, decode_event
from shared.failpoints import failpoint
from shared.logging import trace_id_var
from shared.metrics import (
    CONSUMER_BATCH_SECONDS,
    CONSUMER_DEAD_LETTERS,
    CONSUMER_LAG,
    CONSUMER_REBALANCES,
    CONSUMER_RECORDS,
    CONSUMER_RETRIES,
    PAUSED_PARTITIONS,
    PRODUCER_SEND_SECONDS,
)
from shared.topics import ALL_TOPICS, Topic

log = logging.getLogger(__name__)

# Retry delays for a batch whose handler failed with a transient error (database or broker down):
# the partition waits, paused, it is never skipped. Capped so recovery is noticed within 30 s.
RETRY_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A batch that keeps failing with an unexpected error is split so the one bad event can be
# isolated and dead-lettered; the others go through.
ATTEMPTS_BEFORE_ISOLATING = 5
# Headers the dead-letter topic adds; a replay removes them (shared/dead_letters.py).
DEAD_LETTER_HEADER_PREFIX = "scs-dlq-"


class PoisonEvent(Exception):
    """Raised by a handler for an event that can never be processed: it goes to the DLQ."""

    def __init__(self, envelope: Envelope[Any], reason: str) -> None:
        super().__init__(reason)
        self.envelope = envelope
        self.reason = reason


class Failure(Enum):
    """What a handler's exception means for the batch (see `classify_failure`)."""

    TRANSIENT = "transient"  # a dependency is down or busy: retry the same batch until it works
    POISON = "poison"  # this event can never succeed: dead-letter it, keep the others
    UNEXPECTED = "unexpected"  # a bug: retry a few times, then isolate (see _judge_suspects)


def classify_failure(error: BaseException) -> Failure:
    """Outages are transient however long they last; only the event's own fault is poison.

    An unexpected error (a bug in a handler) is retried ATTEMPTS_BEFORE_ISOLATING times, then
    the batch goes one event at a time: an event that fails on its own while others succeed is
    dead-lettered (retrying it for ever would stall every conversation on its partition; `scs
    dlq replay` brings it back after the fix), and when every event fails the batch waits.
    """
    if isinstance(error, PoisonEvent | InvalidEvent | ValidationError) or is_data_error(error):
        return Failure.POISON
    if isinstance(error, OSError | TimeoutError | KafkaError) or is_transient_db_error(error):
        return Failure.TRANSIENT
    return Failure.UNEXPECTED


def describe_error(error: BaseException) -> str:
    """What went wrong, without the message's text or personal data, for logs and headers.

    Exception messages may quote the values that failed (pydantic's `input_value`, PostgreSQL's
    data errors, a handler's f-string), so only names, locations and codes are kept.
    """
    if isinstance(error, PoisonEvent):
        return error.reason[:1000]
    cause = error.__cause__
    if isinstance(error, InvalidEvent) and isinstance(cause, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: "
            + (problem["type"] if problem["type"] in _FREE_TEXT_ERRORS else problem["msg"])
            for problem in cause.errors(include_url=False, include_input=False)[:10]
        )
        return f"invalid {cause.title}: {problems}"
    if isinstance(error, InvalidEvent):
        return str(error)[:300]  # shared.events' own messages name no payload value
    if isinstance(error, OSError | TimeoutError | KafkaError):
        # Addresses and broker states, which say where the outage is; never message content.
        name, message = type(error).__name__, str(error)[:300]
        if not message or message.startswith(name):  # aiokafka's messages start with it
            return message or name
        return f"{name}: {message}"
    code = sqlstate_of(error)
    return type(error).__name__ + (f" (SQLSTATE {code})" if code else "")


# Pydantic error types whose message is free text a validator wrote, possibly with the value.
_FREE_TEXT_ERRORS = frozenset({"value_error", "assertion_error"})


ProducerFactory = Callable[..., AIOKafkaProducer]
# Longest wait for a replaced producer to flush what it still holds before it is dropped.
RETIRE_SECONDS = 30.0


class EventProducer:
    """acks=all, idempotent sends; a send that failed retires the producer it went through.

    An idempotent producer whose request was lost mid-flight (broker restart, timeout) can be
    left with sequence numbers the broker no longer accepts, and aiokafka then fails every later
    send with OutOfOrderSequenceNumber until the process restarts (aio-libs/aiokafka#1017). The
    next send after any failure therefore goes through a fresh producer with a new producer id.
    Redoing a send is safe: consumers drop redelivered events by id.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str,
        *,
        producer_factory: ProducerFactory = AIOKafkaProducer,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._started = False
        self._failed = False
        self._renewing = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._producer = self._producer_factory(
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
        async with self._renewing:  # a renewal in progress finishes first, then is stopped
            if self._producer is not None:
                await self._producer.stop()
            self._producer = None
            self._started = False
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    async def is_ready(self) -> bool:
        if not self._started:
            return False
        try:
            await asyncio.wait_for(self._client.client.fetch_all_metadata(), timeout=2)
        except (KafkaError, OSError, TimeoutError):
            return False
        return True

    async def _sending_client(self) -> AIOKafkaProducer:
        """The producer to send through: a fresh one when a send through the last one failed."""
        if not self._failed:
            return self._client
        async with self._renewing:
            if self._failed:
                retired, self._producer, self._started = self._producer, None, False
                if retired is not None:
                    task = asyncio.create_task(_retire(retired), name="retire kafka producer")
                    self._retiring.add(task)
                    task.add_done_callback(self._retiring.discard)
                try:
                    await self.start()
                except BaseException:
                    if self._producer is not None:
                        await self._producer.stop()
                    self._producer, self._started = None, False
                    raise
                self._failed = False
                log.info("kafka producer renewed after a failed send")
        return self._client

    async def _send_all(
        self, records: Sequence[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]
    ) -> None:
        """Send (topic, key, value, headers) records in order; return once all are acked."""
        client = await self._sending_client()
        try:
            futures = [
                await client.send(topic, value=value, key=key, headers=headers)
                for topic, key, value, headers in records
            ]
            await asyncio.gather(*futures)
        except BaseException:
            # A send through a producer already replaced must not retire its healthy successor.
            if client is self._producer:
                self._failed = True
            raise

    async def publish(self, topic: Topic, envelope: Envelope[Any]) -> None:
        """Send one event and wait for acks=all; raises if the broker did not take it."""
        await self.publish_many(topic, [envelope])

    async def publish_many(self, topic: Topic, envelopes: Sequence[Envelope[Any]]) -> None:
        """Send a batch concurrently and wait until every event is acknowledged."""
        if not envelopes:
            return
        started = time.perf_counter()
        await self._send_all(
            [
                (topic.name, envelope.subject.encode(), envelope.to_bytes(), _headers(envelope))
                for envelope in envelopes
            ]
        )
        PRODUCER_SEND_SECONDS.labels(topic.name).observe(time.perf_counter() - started)

    async def publish_encoded(self, records: Sequence[tuple[str, bytes, bytes]]) -> None:
        """Send already-encoded (topic, key, value) records, e.g. from an outbox, in order."""
        await self._send_all([(topic, key, value, []) for topic, key, value in records])

    async def publish_dead_letter(
        self, topic: Topic, record: ConsumerRecord[bytes, bytes], error: str
    ) -> None:
        """Keep the original bytes and say why, so the message can be inspected and replayed.

        `error` must name no payload value (see `describe_error`): headers are read by
        whoever inspects the topic.
        """
        headers = [
            *(
                (name, value)
                for name, value in record.headers or ()
                if not name.startswith(DEAD_LETTER_HEADER_PREFIX)  # dead-lettered again
            ),
            (f"{DEAD_LETTER_HEADER_PREFIX}error", error[:4000].encode()),
            (
                f"{DEAD_LETTER_HEADER_PREFIX}source",
                f"{record.topic}/{record.partition}/{record.offset}".encode(),
            ),
        ]
        await self._send_all([(topic.dead_letter, record.key, record.value, headers)])


async def _retire(producer: AIOKafkaProducer) -> None:
    """Let a replaced producer flush what it holds, briefly; its sends are redone anyway."""
    try:
        async with asyncio.timeout(RETIRE_SECONDS):
            await producer.stop()
    except Exception:
        log.info("a retired kafka producer did not stop cleanly", exc_info=True)


def _headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    return [
        ("content-type", b"application/json"),
        ("scs-event-type", envelope.type.value.encode()),
        ("scs-event-id", str(envelope.id).encode()),
        ("traceparent", envelope.trace.traceparent.encode()),
    ]


BatchHandler = Callable[[list[Envelope[Any]]], Awaitable[None]]


@dataclass
class _Batch:
    """One partition's fetched records on their way to a commit, across retries."""

    partition: TopicPartition
    next_offset: int
    record_count: int
    envelopes: list[Envelope[Any]]
    sources: dict[Any, ConsumerRecord[bytes, bytes]]
    dead_letters: list[tuple[ConsumerRecord[bytes, bytes], str]]
    started: float = field(default_factory=time.perf_counter)
    dead_lettered: int = 0
    unexpected_failures: int = 0
    isolating: bool = False  # handle one event at a time to find the one that fails
    # While isolating: events that failed unexpectedly on their own, and how many succeeded.
    suspects: list[tuple[Envelope[Any], Exception]] = field(default_factory=list)
    isolated_successes: int = 0
    retries: int = 0
    retry_at: float = 0.0


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Let the in-flight batch finish and commit before partitions move to another member, and
    forget the batches waiting for a retry on them: the new owner fetches them again."""

    def __init__(self, consumer: EventConsumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._consumer.batch_lock:  # the batch holding it commits before releasing
            self._consumer.forget_waiting(revoked)
            log.info("partitions revoked", extra={"partitions": sorted(str(tp) for tp in revoked)})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        CONSUMER_REBALANCES.labels(self._consumer.topic.name).inc()
        log.info("partitions assigned", extra={"partitions": sorted(str(tp) for tp in assigned)})


class EventConsumer:
    """Consume one topic in partition-ordered batches; commit each batch after its handler.

    Backpressure: at most `max_batch_records` records are fetched at a time, and the next fetch
    waits until they are committed or waiting. A partition whose batch failed is paused until
    its retry succeeds while the loop keeps polling, so the member stays in its group
    (max.poll.interval) however long a database or broker outage lasts, and the other
    partitions keep flowing.
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
        max_poll_interval_ms: int = 300_000,
    ) -> None:
        self.topic = topic
        self.batch_lock = asyncio.Lock()
        self._handler = handler
        self._producer = producer
        self._max_batch_records = max_batch_records
        self._stopping = asyncio.Event()
        self._waiting: dict[TopicPartition, _Batch] = {}
        # Armed only in crash tests: dies after the work is durable, before the offset commit.
        self._before_commit_failpoint = f"consumer.{group_id}.before_commit"
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            client_id=f"{group_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_interval_ms=max_poll_interval_ms,
            session_timeout_ms=15_000,
            heartbeat_interval_ms=3_000,
        )
        self._running = False

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self.topic.name], listener=_Rebalances(self))
        self._running = True

    def is_running(self) -> bool:
        return self._running and not self._stopping.is_set()

    async def stop(self) -> None:
        """Finish and commit the current batch, leave the group, close."""
        self._stopping.set()
        async with self.batch_lock:
            pass
        if self._running:
            self._running = False
            await self._consumer.stop()

    def forget_waiting(self, partitions: set[TopicPartition]) -> None:
        for partition in partitions:
            self._waiting.pop(partition, None)
        PAUSED_PARTITIONS.labels(self.topic.name).set(len(self._waiting))

    async def run(self) -> None:
        while not self._stopping.is_set():
            for batch in [b for b in self._waiting.values() if b.retry_at <= time.monotonic()]:
                await self._attempt(batch)
            try:
                # Also a poll while every partition is paused: it keeps the group membership.
                fetched = await self._consumer.getmany(
                    timeout_ms=200 if self._waiting else 500, max_records=self._max_batch_records
                )
            except ConsumerStoppedError:
                if not self._stopping.is_set():
                    log.error("kafka consumer closed under the loop; no longer consuming")
                return
            except KafkaError:
                log.warning("fetch failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            for partition, records in fetched.items():
                if self._stopping.is_set():
                    return  # not handled, not committed: the next owner of the partition gets them
                await self._attempt(await self._decode(partition, records))

    async def _decode(
        self, partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> _Batch:
        batch = _Batch(partition, records[-1].offset + 1, len(records), [], {}, [])
        for record in records:
            try:
                envelope = decode_event(record.value)
            except InvalidEvent as exc:
                batch.dead_letters.append((record, describe_error(exc)))
                continue
            if envelope.type not in self.topic.event_types:
                reason = f"event type {envelope.type} does not belong here"
                batch.dead_letters.append((record, reason))
                continue
            batch.envelopes.append(envelope)
            batch.sources[envelope.id] = record
        return batch

    async def _attempt(self, batch: _Batch) -> None:
        """Take the batch as far as it goes; on a failure, pause its partition and retry later."""
        async with self.batch_lock:
            if self._stopping.is_set() or batch.partition not in self._consumer.assignment():
                return  # revoked, or shutting down: uncommitted, the next owner redoes it
            try:
                await self._complete(batch)
            except CommitFailedError:
                # The group rebalanced under us: the new owner redoes the batch, and the
                # handlers are idempotent, so nothing is lost or doubled.
                log.warning("commit refused after a rebalance", exc_info=True)
                self.forget_waiting({batch.partition})
            except Exception as error:
                self._retry_later(batch, error)
                return
            if self._waiting.pop(batch.partition, None) is not None:
                self._consumer.resume(batch.partition)
                PAUSED_PARTITIONS.labels(self.topic.name).set(len(self._waiting))
                log.info("partition resumed", extra={"partition": str(batch.partition)})

    def _retry_later(self, batch: _Batch, error: Exception) -> None:
        delay = RETRY_BACKOFF_SECONDS[min(batch.retries, len(RETRY_BACKOFF_SECONDS) - 1)]
        batch.retries += 1
        batch.retry_at = time.monotonic() + delay
        self._consumer.pause(batch.partition)
        self._waiting[batch.partition] = batch
        PAUSED_PARTITIONS.labels(self.topic.name).set(len(self._waiting))
        CONSUMER_RETRIES.labels(self.topic.name).inc()
        log.warning(
            "batch failed; partition paused, retry in %.1f s",
            delay,
            extra={
                "partition": str(batch.partition),
                "retries": batch.retries,
                "failure": classify_failure(error).value,
                "error": describe_error(error),
            },
        )

    async def _complete(self, batch: _Batch) -> None:
        """Dead letters, handler, commit; raises what should be retried later."""
        await self._flush_dead_letters(batch)
        while batch.envelopes:
            group = batch.envelopes[:1] if batch.isolating else batch.envelopes
            trace_id_var.set(group[0].trace.trace_id)
            try:
                await self._handler(group)
            except Exception as error:
                if batch.isolating and classify_failure(error) is Failure.UNEXPECTED:
                    batch.suspects.append((group[0], error))  # judged once the others ran
                    batch.envelopes.remove(group[0])
                    continue
                failed = self._failed_events(batch, group, error)
                if failed is None:
                    raise
                await self._dead_letter(batch, [(envelope, error) for envelope in failed])
                continue
            del batch.envelopes[: len(group)]
            batch.isolated_successes += len(group) if batch.isolating else 0
        if batch.suspects:
            await self._judge_suspects(batch)
        failpoint(self._before_commit_failpoint)
        await self._consumer.commit({batch.partition: batch.next_offset})
        # Counted only now: a batch retried before its commit must not be counted twice.
        highwater = self._consumer.highwater(batch.partition)
        if highwater is not None:
            CONSUMER_LAG.labels(self.topic.name, str(batch.partition.partition)).set(
                max(0, highwater - batch.next_offset)
            )
        CONSUMER_RECORDS.labels(self.topic.name).inc(batch.record_count)
        CONSUMER_DEAD_LETTERS.labels(self.topic.name).inc(batch.dead_lettered)
        CONSUMER_BATCH_SECONDS.labels(self.topic.name).observe(time.perf_counter() - batch.started)

    def _failed_events(
        self, batch: _Batch, group: list[Envelope[Any]], error: Exception
    ) -> list[Envelope[Any]] | None:
        """The events to dead-letter for this failure, or None to retry the batch later.

        A failure of several events at once that is not pinned on one of them, or an unexpected
        one, makes the batch go one event at a time, so only an event that fails on its own while
        others succeed is dead-lettered.
        """
        failure = classify_failure(error)
        if failure is Failure.TRANSIENT:
            return None
        if isinstance(error, PoisonEvent):
            named = [e for e in group if e.id == error.envelope.id]
            if named:
                return named
            failure = Failure.UNEXPECTED  # the handler named an event it was not given
        if failure is Failure.UNEXPECTED:
            log.error(
                "handler failed unexpectedly",
                extra={
                    "error": describe_error(error),
                    # Code locations only: the message may quote the customer's text.
                    "stack": "".join(traceback.format_tb(error.__traceback__)),
                },
            )
            if not batch.isolating and batch.unexpected_failures + 1 < ATTEMPTS_BEFORE_ISOLATING:
                batch.unexpected_failures += 1
                return None
        if len(group) > 1 or failure is Failure.UNEXPECTED:
            batch.isolating = True  # a bug's victims are judged one by one (_judge_suspects)
            return []
        return group

    async def _judge_suspects(self, batch: _Batch) -> None:
        """Dead-letter the events that failed on their own only if the handler worked for
        another event of the batch: when every event fails, the fault is the handler's or a
        dependency's (a bug, a timeout not classed as transient), not the events', so the batch
        waits for a fix (partition paused, `scs_kafka_consumer_paused_partitions`) instead of
        draining the whole stream into the dead-letter topic."""
        if batch.isolated_successes == 0:
            suspects, batch.suspects = batch.suspects, []
            batch.envelopes = [envelope for envelope, _ in suspects]
            raise suspects[-1][1]
        suspects, batch.suspects = batch.suspects, []
        await self._dead_letter(batch, suspects)

    async def _dead_letter(
        self, batch: _Batch, failed: list[tuple[Envelope[Any], Exception]]
    ) -> None:
        for envelope, error in failed:
            batch.dead_letters.append((batch.sources[envelope.id], describe_error(error)))
            if envelope in batch.envelopes:
                batch.envelopes.remove(envelope)
        await self._flush_dead_letters(batch)

    async def _flush_dead_letters(self, batch: _Batch) -> None:
        while batch.dead_letters:
            record, reason = batch.dead_letters[0]
            log.warning(
                "message sent to the dead-letter topic",
                extra={
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": reason,
                },
            )
            await self._producer.publish_dead_letter(self.topic, record, reason)
            batch.dead_letters.pop(0)
            batch.dead_lettered += 1


async def ensure_topics(
    bootstrap_servers: str,
    topics: Sequence[Topic] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
) -> list[str]:
    """Create every topic and its dead-letter topic with explicit partitions; returns new ones.

    Raises KafkaError when the broker refuses one (e.g. more replicas than brokers).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="scs-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted: list[NewTopic] = []
        for topic in topics:
            config = {"min.insync.replicas": str(min_insync_replicas)}
            if topic.name not in existing:
                wanted.append(
                    NewTopic(
                        topic.name,
                        topic.partitions,
                        replication_factor,
                        topic_configs={**config, "retention.ms": str(topic.retention_ms)},
                    )
                )
            if topic.dead_letter not in existing:
                wanted.append(
                    NewTopic(
                        topic.dead_letter,
                        1,
                        replication_factor,
                        topic_configs={
                            **config,
                            "retention.ms": str(topic.dead_letter_retention_ms),
                        },
                    )
                )
        if wanted:
            response = await admin.create_topics(wanted)
            for name, code, *message in response.topic_errors:
                # Another process may create them at the same moment; either way they exist.
                if code and code != TopicAlreadyExistsError.errno:
                    detail = message[0] if message and message[0] else ""
                    raise for_code(code)(f"cannot create topic {name}: {detail}")
        return [t.name for t in wanted]
    finally:
        await admin.close()
