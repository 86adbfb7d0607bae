"""The router killed at its worst moments, on the real broker and PostgreSQL, then restarted:
nothing accepted is lost and nothing is announced twice.

Each test leaves the router running normally (other tests share the stack)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI, Request, Response

from shared.topics import CASES, CLASSIFICATIONS, MENTIONS, Topic
from tests.integration.conftest import Receiver, ServiceProcess, Stack, eventually, read_topic
from tests.integration.test_webhook_retries import (
    delivery_rows,
    post_mention,
    query,
    register,
    serving,
)
from tests.integration.test_webhooks_isolation import set_enabled

pytestmark = pytest.mark.disruptive


async def restart(router: ServiceProcess, **extra_env: str) -> None:
    """Start the router again with `extra_env`; a running one is stopped gracefully (it leaves
    its consumer group, so the new one gets the partitions without waiting for a timeout)."""
    if router.process is not None and router.process.poll() is None:
        router.terminate()
    router.start(**extra_env)
    await router.wait_ready()


@pytest.fixture
async def router(stack: Stack) -> AsyncIterator[ServiceProcess]:
    yield stack.services["router"]
    await restart(stack.services["router"])


async def unconsumed(bootstrap: str, group: str, topic: Topic) -> int:
    """Records on `topic` that consumer group `group` has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    offsets = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await admin.start()
    await offsets.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        ends = await offsets.end_offsets(partitions)
        return sum(
            end - max(committed[tp].offset if tp in committed else 0, 0) for tp, end in ends.items()
        )
    finally:
        await offsets.stop()
        await admin.close()


async def pipeline_drained(stack: Stack) -> bool:
    """Nothing left for the classifier nor the router: the next router batch is the test's."""
    bootstrap = stack.infra.bootstrap
    return (
        await unconsumed(bootstrap, "scs-classifier", MENTIONS) == 0
        and await unconsumed(bootstrap, "scs-router", CLASSIFICATIONS) == 0
    )


async def test_a_crash_between_commit_and_outbox_publish_loses_and_doubles_nothing(
    stack: Stack, receiver: Receiver, router: ServiceProcess
) -> None:
    conversation = f"crash-commit-{uuid.uuid4().hex}"
    key = f"x:{conversation}"
    # Backlog left by earlier tests would be the batch the armed router dies on: let a fresh
    # router (new producer and consumer) work it off first, for up to a minute.
    await restart(router)
    with contextlib.suppress(AssertionError):
        await eventually(lambda: pipeline_drained(stack), timeout=60, interval=1)
    await restart(router, SCS_FAILPOINTS="router.after_commit")
    await post_mention(stack, conversation)
    # The armed router dies after the first batch it commits; should a stray batch come first,
    # it is started again until the batch with this mention was the one.
    for _ in range(8):
        await eventually(lambda: router.process is not None and router.process.poll() is not None)
        assert router.process is not None and router.process.returncode == 137
        outbox = await query(
            stack, "SELECT published_at FROM router_outbox WHERE key = :k", k=key.encode()
        )
        if outbox:
            break
        await restart(router, SCS_FAILPOINTS="router.after_commit")
    assert outbox and all(row.published_at is None for row in outbox), "crash was not mid-way"

    await restart(router)
    await eventually(lambda: bool(receiver.matching(lambda e: _conversation(e) == key)), timeout=60)
    records = [
        r for r in await read_topic(stack.infra.bootstrap, CASES.name) if r.key == key.encode()
    ]
    event_ids = Counter(orjson.loads(r.value)["id"] for r in records)
    assert len(event_ids) == 1 and set(event_ids.values()) == {1}, event_ids
    # The redelivered mention was recognised; give a second announcement time to show up.
    await asyncio.sleep(2)
    webhooks = receiver.matching(lambda e: _conversation(e) == key)
    assert len(webhooks) == 1
    assert webhooks[0]["data"]["event_id"] in event_ids


def _conversation(event: dict[str, object]) -> object:
    data = event.get("data")
    return data.get("case", {}).get("conversation_key") if isinstance(data, dict) else None


class HangsFirst:
    """Holds the first POST of the test's case forever (the router dies meanwhile) and answers
    the next ones with 204; deliveries of other cases are answered at once."""

    def __init__(self, conversation_key: str) -> None:
        self.conversation_key = conversation_key
        self.held: list[str] = []
        self.delivered: list[str] = []
        self.release = asyncio.Event()
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.json()
        if body["data"]["case"]["conversation_key"] != self.conversation_key:
            return Response(status_code=204)
        webhook_id = request.headers["webhook-id"]
        if webhook_id not in self.held:
            self.held.append(webhook_id)
            await self.release.wait()
            return Response(status_code=503)
        self.delivered.append(webhook_id)
        return Response(status_code=204)


async def test_a_lease_is_retaken_after_the_router_dies_mid_post(
    stack: Stack, router: ServiceProcess
) -> None:
    conversation = f"crash-post-{uuid.uuid4().hex}"
    receiver = HangsFirst(f"x:{conversation}")
    # A short attempt deadline makes the lease short (deadline + 5 s), so the test is quick.
    short_lease = {"SCS_ROUTER_WEBHOOK_TIMEOUT_SECONDS": "2"}
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        try:
            await restart(router, **short_lease)
            await post_mention(stack, conversation)
            await eventually(lambda: bool(receiver.held), timeout=60)
            router.kill()  # mid-POST: the attempt is never recorded, the lease stays taken
            [webhook_id] = receiver.held
            await restart(router, **short_lease)
            await eventually(lambda: webhook_id in receiver.delivered, timeout=60)
            [row] = [r for r in await delivery_rows(stack, url) if str(r.delivery_id) == webhook_id]
            assert (row.status, row.attempts) == ("delivered", 1)
            assert receiver.delivered == [webhook_id]
        finally:
            receiver.release.set()
            if router.process is not None and router.process.poll() is None:
                await set_enabled(stack, endpoint["id"], False)


GROUP_KILL_MENTIONS = 200


async def test_a_group_member_killed_mid_stream_loses_and_doubles_nothing(
    stack: Stack, router: ServiceProcess
) -> None:
    """Two routers share the group; one is killed -9 while mentions flow. The survivor takes its
    partitions after the session timeout: every conversation still becomes exactly one case,
    announced by exactly one case.created event id."""
    first = stack.services["router"]
    other = ServiceProcess("router", first._env, first.log_path.parent, port=18013)
    other.start()
    await other.wait_ready()
    tag = uuid.uuid4().hex[:8]
    conversations = [f"group-kill-{tag}-{n}" for n in range(GROUP_KILL_MENTIONS)]

    async def opened() -> int:
        rows = await query(
            stack,
            "SELECT count(*) FROM router_cases WHERE conversation_key LIKE :prefix",
            prefix=f"x:group-kill-{tag}-%",
        )
        return int(rows[0][0])

    try:
        posting = asyncio.gather(*(post_mention(stack, c) for c in conversations))
        await eventually(lambda: _at_least_one(opened), timeout=60, interval=0.05)
        other.kill()
        opened_at_kill = await opened()
        await posting
    finally:
        if other.process is not None and other.process.poll() is None:
            other.kill()
    assert 0 < opened_at_kill < GROUP_KILL_MENTIONS, "the kill did not land mid-stream"

    async def all_opened() -> bool:
        return await opened() == GROUP_KILL_MENTIONS

    await eventually(all_opened, timeout=120, what="a case per conversation after the kill")
    keys = {f"x:{c}".encode() for c in conversations}

    async def created_ids() -> dict[bytes, set[str]]:
        announced: dict[bytes, set[str]] = {}
        # Other tests put poison on the topic: only this test's keys are read.
        for record in await read_topic(stack.infra.bootstrap, CASES.name):
            if record.key not in keys:
                continue
            event = orjson.loads(record.value)
            if event["type"] == "case.created":
                announced.setdefault(record.key, set()).add(event["id"])
        return announced

    async def all_announced() -> bool:
        return len(await created_ids()) == GROUP_KILL_MENTIONS

    await eventually(all_announced, timeout=60, interval=1, what="a case.created per case")
    per_case = await created_ids()
    assert all(len(ids) == 1 for ids in per_case.values()), "a case was announced twice"
    duplicates = await query(
        stack,
        "SELECT conversation_key FROM router_cases WHERE conversation_key LIKE :prefix "
        "GROUP BY conversation_key HAVING count(*) > 1",
        prefix=f"x:group-kill-{tag}-%",
    )
    assert duplicates == []


async def _at_least_one(count: Callable[[], Awaitable[int]]) -> bool:
    return await count() > 0
