"""Crisis velocity is shared state: a burst spread over conversations (so over partitions) and
over a classifier restart still raises the crisis risk of the next mention on that topic."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.conftest import INGEST_AUTH, Receiver, Stack, eventually
from tests.integration.test_pipeline import mention_body

LEAK = (
    "@AuroraTelecom ¿habéis sufrido una filtración de datos? "
    "me llegan correos con mis datos personales"
)


def created(receiver: Receiver, conversation: str) -> dict[str, Any] | None:
    for event in receiver.events:
        if (
            event["type"] == "case.created"
            and event["data"]["case"]["conversation_key"] == f"x:{conversation}"
        ):
            return event["data"]  # type: ignore[no-any-return]
    return None


async def post_and_wait(stack: Stack, receiver: Receiver, conversation: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(
            f"{stack.url('ingest')}/v1/mentions", json=mention_body(conversation, LEAK)
        )
    assert response.status_code == 202, response.text
    await eventually(lambda: created(receiver, conversation) is not None)
    data = created(receiver, conversation)
    assert data is not None
    return data


async def test_velocity_counts_across_conversations_and_survives_a_restart(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    first = await post_and_wait(stack, receiver, f"leak-{run}-0")
    for n in range(1, 6):
        await post_and_wait(stack, receiver, f"leak-{run}-{n}")
    stack.services["classifier"].kill()
    stack.services["classifier"].start()
    await stack.services["classifier"].wait_ready()
    after_restart = await post_and_wait(stack, receiver, f"leak-{run}-6")

    before = first["classification"]
    after = after_restart["classification"]
    assert after["crisis_risk"] > before["crisis_risk"], (before, after)
    assert any("similar negative" in reason for reason in after["reasons"]), after["reasons"]
    assert not any("similar negative" in reason for reason in before["reasons"]), before
