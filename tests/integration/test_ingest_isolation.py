"""Requests accepted together never fail together: over the real broker and PostgreSQL, bad
requests sent at the same moment as good ones get their own 4xx, and the good ones are on the
topic. Values at the column limits travel the whole pipeline into a case."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from shared.events import MAX_BRAND_CHARS, Channel, Mention
from tests.integration.conftest import INGEST_AUTH, TENANT, Stack, eventually
from tests.integration.test_ingest_crash import case_mentions
from tests.integration.test_ingest_webhooks import mention_ids_on_topic


def a_mention(platform_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": platform_id,
        "channel": "x",
        "kind": "mention",
        "text": "@AuroraTelecom me cobraron dos veces, quiero la devolución ya",
        "author": {"handle": "isolation"},
        "created_at": "2026-03-02T09:00:00+01:00",
        "conversation_id": platform_id,
        **overrides,
    }


async def test_bad_requests_fail_alone_and_good_ones_are_published(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    good = [a_mention(f"good-{run}-{n}") for n in range(6)]
    # 600 KB of quotes: under the body limit, but its event is twice that once JSON-escaped
    huge_email = (
        b"From: ana@example.com\r\nDate: Mon, 2 Mar 2026 09:00:00 +0100\r\n"
        b"Message-ID: <huge-" + run.encode() + b"@example.com>\r\n\r\n" + b'"' * 600_000
    )
    async with httpx.AsyncClient(
        base_url=stack.url("ingest"), headers=INGEST_AUTH, timeout=60
    ) as client:
        answers = await asyncio.gather(
            *(client.post("/v1/mentions", json=body) for body in good[:3]),
            client.post("/v1/webhooks/email", content=huge_email),
            client.post("/v1/mentions", json=a_mention(f"nul-{run}\x00", conversation_id=run)),
            client.post("/v1/mentions", json=a_mention(f"brand-{run}", brand="B" * 256)),
            client.post(
                "/v1/mentions", json=a_mention(f"id-{run}-" + "x" * 600, conversation_id=run)
            ),
            *(client.post("/v1/mentions", json=body) for body in good[3:]),
        )
    statuses = [answer.status_code for answer in answers]
    assert statuses == [202, 202, 202, 413, 422, 422, 422, 202, 202, 202], [
        answer.text[:200] for answer in answers
    ]
    assert answers[3].json()["errors"][0]["field"] == "raw"
    assert answers[4].json()["errors"][0]["field"] == "id"
    assert answers[5].json()["errors"][0]["field"] == "brand"
    assert answers[6].json()["errors"][0]["field"] == "id"
    on_topic = set(await mention_ids_on_topic(stack))
    assert {answer.json()["id"] for answer in answers if answer.status_code == 202} <= on_topic


async def test_values_at_every_limit_become_a_case(stack: Stack) -> None:
    """Nothing ingest accepts is dead-lettered later for a column it does not fit."""
    run = uuid.uuid4().hex[:8]
    at_limits = a_mention(
        f"limits-{run}-".ljust(512, "i"),
        channel="google_business",
        kind="review",
        conversation_id=f"c-{run}-".ljust(512, "c"),
        author={"handle": "h" * 256},
        brand="İ" * (MAX_BRAND_CHARS // 2),  # lower-cases to two characters each
        text="Estafa, me cobraron dos veces y voy a denunciarlos. " * 300,
        language="es-419",
    )
    async with httpx.AsyncClient(
        base_url=stack.url("ingest"), headers=INGEST_AUTH, timeout=60
    ) as client:
        response = await client.post("/v1/mentions", json=at_limits)
    assert response.status_code == 202, response.text
    mention_id = Mention.id_for(Channel.GOOGLE_BUSINESS, at_limits["id"], TENANT)

    async def routed() -> bool:
        return await case_mentions(stack, mention_id) == 1

    await eventually(routed, timeout=60)
