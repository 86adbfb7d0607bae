"""`scs dlq list|replay TOPIC`: look at a topic's dead letters and put them back after a fix.

A replay republishes each dead letter's original key, value and headers (without the
`scs-dlq-*` ones the consumer added) to the topic it came from, with acks=all. Consumers dedupe
by event id, so an event replayed twice is applied once. How far a replay went is the committed
offset of the consumer group `scs-dlq-replay.<topic>` on the dead-letter topic, committed only
after the broker acknowledged the republished batch: an interrupted replay resumes where it
stopped, and one that completed is not repeated.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import UnknownTopicOrPartitionError

from shared.kafka import DEAD_LETTER_HEADER_PREFIX

DEAD_LETTER_SUFFIX = ".dlq"
REPLAY_BATCH_RECORDS = 500


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as an operator sees it: where it came from and why, never its text."""

    partition: int
    offset: int
    source: str
    event_type: str
    event_id: str
    error: str
    replayed: bool
    payload: bytes | None


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    already_replayed: int
    target: str


def topic_names(topic: str) -> tuple[str, str]:
    """(source topic, dead-letter topic) for either name."""
    if topic.endswith(DEAD_LETTER_SUFFIX):
        return topic.removesuffix(DEAD_LETTER_SUFFIX), topic
    return topic, f"{topic}{DEAD_LETTER_SUFFIX}"


def replay_group(source_topic: str) -> str:
    return f"scs-dlq-replay.{source_topic}"


@contextlib.asynccontextmanager
async def _dead_letter_reader(
    bootstrap_servers: str, dead_letter_topic: str, group: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, dict[TopicPartition, int], dict[TopicPartition, int]]]:
    """A consumer assigned every partition of the topic, with (replayed up to, end) offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    try:
        await consumer.start()
        # Fresh metadata: the consumer only knows the topics it was asked about.
        cluster = await consumer._client.fetch_all_metadata()
        partition_ids = cluster.partitions_for_topic(dead_letter_topic)
        if not partition_ids:
            raise UnknownTopicOrPartitionError(f"no topic {dead_letter_topic}")
        partitions = [TopicPartition(dead_letter_topic, p) for p in sorted(partition_ids)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        replayed_to = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
        yield consumer, replayed_to, ends
    finally:
        await consumer.stop()


async def _records_until(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> AsyncIterator[list[ConsumerRecord[bytes, bytes]]]:
    """Batches of records up to the end offsets seen at the start (new dead letters wait)."""
    while True:
        open_partitions = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
        if not open_partitions:
            return
        fetched = await consumer.getmany(
            *open_partitions, timeout_ms=1000, max_records=REPLAY_BATCH_RECORDS
        )
        batch = [
            r for records in fetched.values() for r in records if r.offset < ends[_partition(r)]
        ]
        if batch:
            yield batch


def _partition(record: ConsumerRecord[bytes, bytes]) -> TopicPartition:
    return TopicPartition(record.topic, record.partition)


def _header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode(errors="replace")
    return None


def _envelope_field(record: ConsumerRecord[bytes, bytes], name: str) -> str:
    """`type` or `id` of a message that lost its headers, if it is a JSON object at all."""
    try:
        document = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError:
        return "-"
    value = document.get(name) if isinstance(document, dict) else None
    return value[:80] if isinstance(value, str) else "-"


async def list_dead_letters(
    bootstrap_servers: str, topic: str, *, with_payload: bool = False
) -> list[DeadLetter]:
    source, dead_letter_topic = topic_names(topic)
    async with _dead_letter_reader(bootstrap_servers, dead_letter_topic, replay_group(source)) as (
        consumer,
        replayed_to,
        ends,
    ):
        await consumer.seek_to_beginning()
        letters: list[DeadLetter] = []
        async for batch in _records_until(consumer, ends):
            letters.extend(
                DeadLetter(
                    partition=record.partition,
                    offset=record.offset,
                    source=_header(record, f"{DEAD_LETTER_HEADER_PREFIX}source") or "-",
                    event_type=_header(record, "scs-event-type") or _envelope_field(record, "type"),
                    event_id=_header(record, "scs-event-id") or _envelope_field(record, "id"),
                    error=_header(record, f"{DEAD_LETTER_HEADER_PREFIX}error") or "-",
                    replayed=record.offset < replayed_to[_partition(record)],
                    payload=record.value if with_payload else None,
                )
                for record in batch
            )
        return letters


async def replay_dead_letters(
    bootstrap_servers: str, topic: str, *, dry_run: bool = False
) -> ReplayResult:
    """Republish every dead letter not replayed yet to its source topic."""
    source, dead_letter_topic = topic_names(topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id="scs-dlq-replay",
        acks="all",
        enable_idempotence=True,
    )
    try:
        await producer.start()
        async with _dead_letter_reader(
            bootstrap_servers, dead_letter_topic, replay_group(source)
        ) as (consumer, replayed_to, ends):
            already = sum(replayed_to.values())
            for tp, offset in replayed_to.items():
                consumer.seek(tp, offset)
            replayed = 0
            async for batch in _records_until(consumer, ends):
                replayed += len(batch)
                if dry_run:
                    continue
                sends = [
                    await producer.send(
                        source,
                        value=record.value,
                        key=record.key,
                        headers=[
                            (name, value)
                            for name, value in record.headers or ()
                            if not name.startswith(DEAD_LETTER_HEADER_PREFIX)
                        ],
                    )
                    for record in batch
                ]
                for sent in sends:
                    await sent  # acks=all for the whole batch before its offsets move
                last = {_partition(record): record.offset + 1 for record in batch}
                await consumer.commit(last)
            return ReplayResult(replayed=replayed, already_replayed=already, target=source)
    finally:
        await producer.stop()
