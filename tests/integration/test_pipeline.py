"""End to end over the real broker and database: a mention in, a signed webhook out."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.conftest import INGEST_AUTH, Receiver, Stack, eventually


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
        lambda: bool(receiver.matching(for_conversation(conversation, "case.created")))
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

    # The brand's reply stops the clock and the KPI service sees it.
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
        lambda: bool(receiver.matching(for_conversation(conversation, "case.responded")))
    )

    async def kpi_counts_the_answer() -> bool:
        async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
            sla = (await client.get(f"{stack.url('kpi')}/v1/kpis/sla")).json()
            metrics = (await client.get(f"{stack.url('kpi')}/metrics")).text
        return bool(
            sla["overall"]["responded"] >= 1
            and "scs_kpi_first_response_sla_attainment_ratio" in metrics
        )

    await eventually(kpi_counts_the_answer)


async def test_classifier_killed_mid_stream_loses_and_duplicates_nothing(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    conversations = [f"crash-{run}-{n}" for n in range(120)]
    classifier = stack.services["classifier"]

    async def post_all() -> None:
        async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
            for n, conversation in enumerate(conversations):
                body = mention_body(
                    conversation,
                    f"@AuroraTelecom mi factura {n} viene mal otra vez, ¿me lo revisáis?",
                )
                response = await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
                assert response.status_code == 202, response.text
                await asyncio.sleep(0.01)

    posting = asyncio.create_task(post_all())
    await asyncio.sleep(0.6)
    classifier.kill()  # SIGKILL mid-stream: no graceful stop, no final commit
    await asyncio.sleep(1.0)
    classifier.start()
    await posting
    await classifier.wait_ready()

    engine = create_async_engine(stack.infra.database_url)
    keys = [f"x:{c}" for c in conversations]

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
        await eventually(all_cases_exist, timeout=90)
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

    await eventually(lambda: len(receiver.matching(created_for_run)) >= len(conversations))
    await asyncio.sleep(1)  # any duplicate delivery would arrive now
    case_ids = [e["data"]["case"]["case_id"] for e in receiver.matching(created_for_run)]
    assert len(case_ids) == len(set(case_ids)) == len(conversations)


async def test_sigterm_stops_a_consumer_cleanly_and_it_resumes(stack: Stack) -> None:
    router = stack.services["router"]
    # uvicorn re-raises the signal after its graceful shutdown, so the status says SIGTERM;
    # the log shows the shutdown ran to the end (consumers committed, connections closed).
    assert await asyncio.to_thread(router.terminate) in (0, -15)
    assert '"msg":"stopped"' in router.log_path.read_text()
    router.start()
    await router.wait_ready()
