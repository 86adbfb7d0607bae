"""End to end over the real broker and database: a mention in, a signed webhook out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.topics import CLASSIFICATIONS
from tests.integration.conftest import (
    ADMIN_KEY,
    CLASSIFIER_TOKEN,
    INGEST_AUTH,
    INGEST_TOKEN,
    Receiver,
    Stack,
    eventually,
)


def mention_body(
    conversation: str,
    text_: str,
    *,
    kind: str = "mention",
    handle: str = "cliente_1",
    language: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"{conversation}-{uuid.uuid4().hex[:8]}",
        "channel": "x",
        "kind": kind,
        "text": text_,
        "author": {"handle": handle, "followers": 120, "verified": False},
        "created_at": datetime.now(UTC).isoformat(),
        "conversation_id": conversation,
        "url": f"https://x.com/{handle}/status/1",
        "brand": "Aurora Telecom",
    }
    if language:
        body["language"] = language
    return body


def for_conversation(conversation: str, event_type: str) -> Any:
    def matches(event: dict[str, Any]) -> bool:
        return bool(
            event["type"] == event_type
            and event["data"]["case"]["conversation_key"] == f"x:{conversation}"
        )

    return matches


async def test_mention_becomes_a_signed_case_webhook(stack: Stack, receiver: Receiver) -> None:
    conversation = f"e2e-{uuid.uuid4().hex}"
    complaint = (
        "@AuroraTelecom llevo tres días sin fibra y nadie me da solución, quiero una reclamación"
    )
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(
            f"{stack.url('ingest')}/v1/mentions", json=mention_body(conversation, complaint)
        )
    assert response.status_code == 202, response.text
    mention_id = response.json()["id"]

    await eventually(
        lambda: bool(receiver.matching(for_conversation(conversation, "case.created"))),
        what=f"case.created webhook for {conversation}",
    )
    [event] = receiver.matching(for_conversation(conversation, "case.created"))
    data = event["data"]
    assert data["mention"]["text"] == complaint
    assert data["mention"]["mention_id"] == mention_id
    assert data["case"]["priority"] in {"P1", "P2"}, data["classification"]
    assert data["classification"]["is_complaint"] is True
    assert data["classification"]["reasons"], "an agent must see why"
    assert event["headers"]["webhook-id"] and event["headers"]["webhook-signature"].startswith(
        "v1,"
    )
    assert receiver.rejected == 0

    # The brand's reply stops the clock, and the KPI service counts this very case as answered.
    case_id = data["case"]["case_id"]
    responded_before = await responded_overall(stack)
    assert await kpi_first_response(stack, case_id) is None
    reply = mention_body(
        conversation,
        "Hola, te escribimos por privado para revisarlo ya.",
        kind="reply",
        handle="AuroraTelecom",
    )
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        assert (
            await client.post(f"{stack.url('ingest')}/v1/mentions", json=reply)
        ).status_code == 202
    await eventually(
        lambda: bool(receiver.matching(for_conversation(conversation, "case.responded"))),
        what=f"case.responded webhook for {conversation}",
    )
    await eventually(
        lambda: kpi_first_response_is_set(stack, case_id),
        what=f"the KPI service recording the first response of case {case_id}",
    )

    async def published_figure_moved() -> bool:
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{stack.url('kpi')}/metrics")).text
        return (
            await responded_overall(stack) > responded_before
            and "scs_kpi_first_response_sla_attainment_ratio" in metrics
        )

    await eventually(
        published_figure_moved,
        what=f"/v1/kpis/sla responded rising above {responded_before} with this case",
    )


async def responded_overall(stack: Stack) -> int:
    async with httpx.AsyncClient() as client:
        sla = (await client.get(f"{stack.url('kpi')}/v1/kpis/sla")).json()
    return int(sla["overall"]["responded"])


async def kpi_first_response(stack: Stack, case_id: str) -> datetime | None:
    """The KPI service's own record of the case (None: not answered, or not seen yet)."""
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            answered: datetime | None = (
                await conn.execute(
                    text("SELECT first_response_at FROM kpi_case_facts WHERE case_id = :id"),
                    {"id": case_id},
                )
            ).scalar_one_or_none()
    finally:
        await engine.dispose()
    return answered


async def kpi_first_response_is_set(stack: Stack, case_id: str) -> bool:
    return await kpi_first_response(stack, case_id) is not None


class ClassifiedWatch:
    """Counts this run's mentions as they appear classified on the classifications topic, from
    the end of the topic when started: the evidence of how far the classifier got."""

    def __init__(self, bootstrap: str, keys: set[str]) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._keys = keys
        self.seen: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        partitions = [
            TopicPartition(CLASSIFICATIONS.name, p) for p in range(CLASSIFICATIONS.partitions)
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for partition in partitions:  # resolve the end offsets now, before anything is posted
            await self._consumer.position(partition)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for record in (r for rs in batches.values() for r in rs):
                key = (record.key or b"").decode()
                if key in self._keys:
                    self.seen.add(key)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


async def test_classifier_killed_mid_stream_loses_and_duplicates_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    conversations = [f"crash-{run}-{n}" for n in range(120)]
    keys = [f"x:{c}" for c in conversations]
    classifier = stack.services["classifier"]
    accepted = 0

    async def post_all() -> None:
        nonlocal accepted
        async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
            for n, conversation in enumerate(conversations):
                body = mention_body(
                    conversation,
                    f"@AuroraTelecom mi factura {n} viene mal otra vez, ¿me lo revisáis?",
                )
                response = await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
                assert response.status_code == 202, response.text
                accepted += 1
                await asyncio.sleep(0.02)

    watch = ClassifiedWatch(stack.infra.bootstrap, set(keys))
    try:
        await watch.start()
        posting = asyncio.create_task(post_all())
        # Kill only once the classifier is demonstrably mid-stream: it has published some of
        # this run's classifications, and mentions it has not classified yet are still coming.
        await eventually(
            lambda: len(watch.seen) >= 5 or posting.done(),
            timeout=30,
            interval=0.02,
            what="the first classifications of this run on the topic",
        )
        classified_at_kill, accepted_at_kill = len(watch.seen), accepted
        classifier.kill()  # SIGKILL mid-stream: no graceful stop, no final commit
        assert 0 < classified_at_kill < len(conversations), (classified_at_kill, accepted_at_kill)
        assert not posting.done(), "every mention was posted before the kill: nothing in flight"
        await asyncio.sleep(1.0)
        assert len(watch.seen) <= accepted_at_kill + 1, "classifications after the kill"
        classifier.start()
        await asyncio.wait_for(posting, timeout=60)
        await classifier.wait_ready()
        await eventually(
            lambda: len(watch.seen) == len(conversations),
            timeout=90,
            what=f"all {len(conversations)} mentions classified after the restart",
        )
    finally:
        await watch.stop()

    engine = create_async_engine(stack.infra.database_url)

    async def all_cases_exist() -> bool:
        async with engine.connect() as conn:
            count = (
                await conn.execute(
                    text("SELECT count(*) FROM router_cases WHERE conversation_key = ANY(:keys)"),
                    {"keys": keys},
                )
            ).scalar_one()
        return bool(count == len(conversations))

    try:
        await eventually(all_cases_exist, timeout=90, what=f"{len(keys)} router cases")
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT c.case_id, c.mention_count, count(m.mention_id) AS mentions "
                        "FROM router_cases c JOIN router_case_mentions m USING (case_id) "
                        "WHERE c.conversation_key = ANY(:keys) GROUP BY c.case_id"
                    ),
                    {"keys": keys},
                )
            ).all()
    finally:
        await engine.dispose()
    assert len(rows) == len(conversations)
    assert all(row.mention_count == 1 and row.mentions == 1 for row in rows)

    def created_for_run(event: dict[str, Any]) -> bool:
        return bool(
            event["type"] == "case.created" and event["data"]["case"]["conversation_key"] in keys
        )

    await eventually(
        lambda: len(receiver.matching(created_for_run)) >= len(conversations),
        what=f"{len(conversations)} case.created webhooks",
    )
    await asyncio.sleep(1)  # any duplicate delivery would arrive now
    case_ids = [e["data"]["case"]["case_id"] for e in receiver.matching(created_for_run)]
    assert len(case_ids) == len(set(case_ids)) == len(conversations)


async def test_classify_on_demand_takes_only_the_classifier_token_or_the_admin_key(
    stack: Stack,
) -> None:
    complaint = {"text": "My order never arrived, I want a refund", "language": "en"}
    async with httpx.AsyncClient(base_url=stack.url("classifier")) as client:
        for token, status in ((CLASSIFIER_TOKEN, 200), (ADMIN_KEY, 200), (INGEST_TOKEN, 401)):
            response = await client.post(
                "/v1/classify", json=complaint, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == status, response.text
        assert (await client.post("/v1/classify", json=complaint)).status_code == 401


async def test_sigterm_stops_a_consumer_cleanly_and_it_resumes(stack: Stack) -> None:
    router = stack.services["router"]
    # uvicorn re-raises the signal after its graceful shutdown, so the status says SIGTERM;
    # the log shows the shutdown ran to the end (consumers committed, connections closed).
    assert await asyncio.wait_for(asyncio.to_thread(router.terminate), timeout=60) in (0, -15)
    assert '"msg":"stopped"' in router.log_path.read_text()
    router.start()
    await router.wait_ready()
