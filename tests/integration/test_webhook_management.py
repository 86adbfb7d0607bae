"""Webhooks a desktop can rely on, on the real stack: the delivery log with every attempt,
redelivery and replay with the same webhook-id, 410 disabling an endpoint, secret rotation with
both signatures during the overlap, and deletion."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook

from tests.integration.conftest import ADMIN_AUTH, Stack, eventually
from tests.integration.test_webhook_retries import post_mention, serving


class ScriptedReceiver:
    """Answers each delivery with the next status of `script` (then 204), keeping every body
    and headers it got."""

    def __init__(self, *script: int) -> None:
        self.script = list(script)
        self.seen: Counter[str] = Counter()
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.app = FastAPI()
        self.app.post("/hooks")(self.hook)

    async def hook(self, request: Request) -> Response:
        delivery_id = request.headers["webhook-id"]
        self.seen[delivery_id] += 1
        attempt = self.seen[delivery_id]
        status = self.script[attempt - 1] if attempt <= len(self.script) else 204
        if status == 204:
            self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=status, content=b"" if status == 204 else b"not now")


async def register(stack: Stack, url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        response = await client.post(
            f"{stack.url('router')}/v1/webhook-endpoints",
            json={"url": url, "events": ["case.created"]},
        )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def call(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        return await client.request(method, f"{stack.url('router')}{path}", **kwargs)


async def test_a_receiver_failing_twice_gets_the_event_once_and_the_log_shows_why(
    stack: Stack,
) -> None:
    receiver = ScriptedReceiver(500, 500)
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        await post_mention(stack, f"log-{uuid.uuid4().hex}")
        await eventually(lambda: len(receiver.received) == 1, what="the third attempt")
        log = (
            await call(stack, "GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
        ).json()
    (delivery,) = log
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 204]
    assert delivery["attempts"][0]["response_excerpt"] == "not now"
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    assert list(receiver.seen.values()) == [3] and len(receiver.received) == 1


async def test_redelivery_and_replay_carry_the_same_webhook_id(stack: Stack) -> None:
    receiver = ScriptedReceiver()
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        since = datetime.now(UTC) - timedelta(seconds=1)
        for _ in range(2):
            await post_mention(stack, f"redeliver-{uuid.uuid4().hex}")
        await eventually(lambda: len(receiver.received) == 2, what="two deliveries")
        first_ids = [headers["webhook-id"] for headers, _ in receiver.received]

        one = await call(stack, "POST", f"/v1/webhook-deliveries/{first_ids[0]}/redeliver")
        assert one.status_code == 202 and one.json() == {"redelivered": 1}
        await eventually(lambda: len(receiver.received) == 3, what="the redelivery")
        assert receiver.received[2][0]["webhook-id"] == first_ids[0]

        replay = await call(
            stack,
            "POST",
            f"/v1/webhook-endpoints/{endpoint['id']}/redeliver",
            params={"since": since.isoformat()},
        )
        assert replay.json() == {"redelivered": 2}
        await eventually(lambda: len(receiver.received) == 5, what="the replay")
    assert sorted(h["webhook-id"] for h, _ in receiver.received[3:]) == sorted(first_ids)
    missing = await call(stack, "POST", f"/v1/webhook-deliveries/{uuid.uuid4()}/redeliver")
    assert missing.status_code == 404


async def test_a_410_disables_the_endpoint(stack: Stack) -> None:
    receiver = ScriptedReceiver(410)
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        await post_mention(stack, f"gone-{uuid.uuid4().hex}")

        async def disabled() -> bool:
            endpoints = (await call(stack, "GET", "/v1/webhook-endpoints")).json()
            return any(e["id"] == endpoint["id"] and not e["enabled"] for e in endpoints)

        await eventually(disabled, what="the endpoint disabled")
        log = (
            await call(stack, "GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
        ).json()
    assert [d["status"] for d in log] == ["failed"]
    assert [a["status_code"] for a in log[0]["attempts"]] == [410]


async def test_during_a_rotation_both_secrets_verify_and_deletion_removes_the_endpoint(
    stack: Stack,
) -> None:
    receiver = ScriptedReceiver()
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        rotated = await call(
            stack,
            "POST",
            f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret",
            json={"overlap_hours": 1},
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert new_secret != endpoint["secret"]
        await post_mention(stack, f"rotation-{uuid.uuid4().hex}")
        await eventually(lambda: len(receiver.received) == 1, what="a delivery")
    headers, body = receiver.received[0]
    for secret in (endpoint["secret"], new_secret):  # a receiver on either secret accepts it
        assert Webhook(secret).verify(body, headers)["type"] == "case.created"

    deleted = await call(stack, "DELETE", f"/v1/webhook-endpoints/{endpoint['id']}")
    assert deleted.status_code == 204
    gone = await call(stack, "GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
    assert gone.status_code == 404
    assert (
        await call(stack, "DELETE", f"/v1/webhook-endpoints/{endpoint['id']}")
    ).status_code == 404


async def test_an_endpoint_gets_only_the_queues_it_asked_for_and_can_be_test_fired(
    stack: Stack,
) -> None:
    spain, mexico = ScriptedReceiver(), ScriptedReceiver()
    async with serving(spain.app) as spain_url, serving(mexico.app) as mexico_url:
        endpoints = {}
        for name, url in (("care-es", spain_url), ("care-mx", mexico_url)):
            response = await call(
                stack,
                "POST",
                "/v1/webhook-endpoints",
                json={"url": url, "events": ["case.created"], "queues": [name]},
            )
            assert response.status_code == 201, response.text
            assert response.json()["queues"] == [name]
            endpoints[name] = response.json()
        await post_mention(stack, f"filters-{uuid.uuid4().hex}")  # Spanish, no country: care-es
        await eventually(lambda: len(spain.received) == 1, what="the care-es desktop's webhook")
        mexican_log = await call(
            stack, "GET", f"/v1/webhook-endpoints/{endpoints['care-mx']['id']}/deliveries"
        )
        assert mexican_log.json() == []  # enqueued in the same transaction: none was made

        fired = await call(
            stack, "POST", f"/v1/webhook-endpoints/{endpoints['care-mx']['id']}/test"
        )
        assert fired.status_code == 202
        await eventually(lambda: len(mexico.received) == 1, what="the test event")
    headers, body = mexico.received[0]
    assert headers["webhook-id"] == fired.json()["delivery_id"]
    event = Webhook(endpoints["care-mx"]["secret"]).verify(body, headers)
    assert event["type"] == "webhook.test"


async def test_an_endpoint_that_keeps_failing_is_left_alone_for_a_while(stack: Stack) -> None:
    receiver = ScriptedReceiver(*([503] * 100))
    async with serving(receiver.app) as url:
        endpoint = await register(stack, url)
        # The test stack retries 3 times, 0.5 s apart: two deliveries make 8 failures in a row.
        for _ in range(2):
            await post_mention(stack, f"breaker-{uuid.uuid4().hex}")

        async def opened() -> bool:
            listed = (await call(stack, "GET", "/v1/webhook-endpoints")).json()
            mine = next(e for e in listed if e["id"] == endpoint["id"])
            return bool(mine["paused_until"]) and mine["consecutive_failures"] >= 5

        await eventually(opened, what="the circuit open")
        attempts_when_opened = sum(receiver.seen.values())
        await post_mention(stack, f"breaker-{uuid.uuid4().hex}")
        await asyncio.sleep(3)  # well inside the 30 s cool-off
        log = (
            await call(stack, "GET", f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")
        ).json()
    waiting = [d for d in log if d["status"] == "pending" and not d["attempts"]]
    assert waiting, "the new delivery waits, unattempted, while the circuit is open"
    assert sum(receiver.seen.values()) <= attempts_when_opened + 4  # in flight when it opened
