"""A failed send retires the producer: the next send goes through a new producer id.

aiokafka's idempotent producer can be left failing every send with OutOfOrderSequenceNumber
after a broker restart (aio-libs/aiokafka#1017). The fake below stands for that producer; the
real broker path is covered by the outage integration tests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from shared.events import EventType, Mention, TraceContext, new_envelope
from shared.kafka import EventProducer
from shared.logging import RepeatLimit
from shared.topics import MENTIONS
from tests.unit.test_events import a_mention


class StuckAfterFirstFailure:
    """Sends succeed until `broken` is set; from then on every send fails, as in #1017."""

    made: ClassVar[list[StuckAfterFirstFailure]] = []

    def __init__(self, **config: Any) -> None:
        self.config = config
        self.broken = False
        self.sent: list[bytes] = []
        self.stopped = False
        StuckAfterFirstFailure.made.append(self)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, **record: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.broken:
            future.set_exception(OutOfOrderSequenceNumber())
        else:
            self.sent.append(record["value"])
            future.set_result(None)
        return future


async def test_the_send_after_a_failure_goes_through_a_new_producer() -> None:
    StuckAfterFirstFailure.made.clear()
    producer = EventProducer("127.0.0.1:1", "unit", producer_factory=StuckAfterFirstFailure)
    await producer.start()
    mention: Mention = a_mention()
    event = new_envelope(
        EventType.MENTION_RECEIVED, mention, tenant="t", subject="x:1", trace=TraceContext.new()
    )
    await producer.publish(MENTIONS, event)
    first = StuckAfterFirstFailure.made[0]
    assert first.config["enable_idempotence"] is True and first.config["acks"] == "all"

    first.broken = True
    with pytest.raises(OutOfOrderSequenceNumber):
        await producer.publish(MENTIONS, event)
    await producer.publish(MENTIONS, event)  # would fail for ever on the first producer

    assert len(StuckAfterFirstFailure.made) == 2
    assert StuckAfterFirstFailure.made[1].sent == [event.to_bytes()]
    await producer.stop()
    assert first.stopped, "the retired producer is stopped, not leaked"


def test_repeated_client_library_lines_are_limited_and_others_pass() -> None:
    limit = RepeatLimit("aiokafka", seconds=60)

    def record(name: str, message: str) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), None)

    flood = [limit.filter(record("aiokafka.conn", "Unable connect to node")) for _ in range(1000)]
    assert flood.count(True) == 1
    assert limit.filter(record("aiokafka.conn", "another message"))
    assert all(limit.filter(record("services.router", "ours")) for _ in range(3))
