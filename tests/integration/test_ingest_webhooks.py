"""Platform webhooks over the real broker: signatures, handshakes, redelivery, outages."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import uuid
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.core import x as x_adapter
from shared.events import decode_event
from shared.topics import MENTIONS
from tests.integration.conftest import (
    INGEST_AUTH,
    META_SECRET,
    META_VERIFY_TOKEN,
    REPO,
    TENANT,
    X_SECRET,
    Stack,
    eventually,
    read_topic,
)

FIXTURES = REPO / "tests" / "fixtures" / "platforms"


def x_payload() -> tuple[dict[str, Any], set[str]]:
    """The documented tweet_create_events fixture with fresh ids (the session's DB is shared)."""
    payload = json.loads((FIXTURES / "x" / "activity_tweets.json").read_text())
    suffix = str(uuid.uuid4().int)[:6]
    text = json.dumps(payload).replace('"18969', f'"{suffix}18969')
    fresh: dict[str, Any] = json.loads(text)
    parsed = x_adapter.parse(fresh, brands={})
    return fresh, {str(m.in_tenant(TENANT).mention_id) for m in parsed.mentions}


def x_signature(body: bytes, secret: str = X_SECRET) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


# test_dead_letters.py writes undecodable messages to every topic, keyed `poison-...`.
POISON_KEY_PREFIX = b"poison-"


async def mention_ids_on_topic(stack: Stack) -> list[str]:
    """Every mention id on the topic; a message ingest wrote that does not decode fails the
    test (only the dead-letter test's own poison is skipped, by its key)."""
    records = await read_topic(stack.infra.bootstrap, MENTIONS.name)
    return [
        str(decode_event(record.value).data.mention_id)
        for record in records
        if not (record.key or b"").startswith(POISON_KEY_PREFIX)
    ]


async def test_x_crc_challenge(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        response = await client.get("/v1/webhooks/x", params={"crc_token": "challenge-123"})
    expected = base64.b64encode(
        hmac.new(X_SECRET.encode(), b"challenge-123", hashlib.sha256).digest()
    ).decode()
    assert response.status_code == 200
    assert response.json() == {"response_token": f"sha256={expected}"}


async def test_a_crc_answer_cannot_sign_a_post(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("ingest")) as client:
        forged_body = json.dumps(x_payload()[0])
        refused = await client.get("/v1/webhooks/x", params={"crc_token": forged_body})
        assert refused.status_code == 422, refused.text
        for token in ("challenge-123", "12345", "null"):
            answer = await client.get("/v1/webhooks/x", params={"crc_token": token})
            assert answer.status_code == 200
            replayed = await client.post(
                "/v1/webhooks/x",
                content=token.encode(),
                headers={"x-twitter-webhooks-signature": answer.json()["response_token"]},
            )
            assert replayed.status_code == 401, replayed.text


async def test_same_webhook_three_times_is_one_mention_on_the_topic(stack: Stack) -> None:
    payload, mention_ids = x_payload()
    assert mention_ids, "the fixture holds customer tweets"
    body = json.dumps(payload).encode()
    answers = []
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        for _ in range(3):
            response = await client.post(
                "/v1/webhooks/x",
                content=body,
                headers={
                    "x-twitter-webhooks-signature": x_signature(body),
                    "content-type": "application/json",
                },
            )
            assert response.status_code == 202, response.text
            answers.append(response.json())
    assert answers[0]["accepted"] == len(mention_ids)
    assert [a["accepted"] for a in answers[1:]] == [0, 0]
    assert [a["duplicates"] for a in answers[1:]] == [len(mention_ids)] * 2
    on_topic = await mention_ids_on_topic(stack)
    assert all(on_topic.count(mention_id) == 1 for mention_id in mention_ids)


async def test_bad_signature_is_401_and_nothing_is_published(stack: Stack) -> None:
    payload, mention_ids = x_payload()
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        for signature in (
            None,
            "sha256=AAAA",
            x_signature(body, "wrong-secret"),
            x_signature(body + b" "),
        ):
            headers = {"content-type": "application/json"}
            if signature:
                headers["x-twitter-webhooks-signature"] = signature
            response = await client.post("/v1/webhooks/x", content=body, headers=headers)
            assert response.status_code == 401
            assert response.headers["content-type"] == "application/problem+json"
    on_topic = set(await mention_ids_on_topic(stack))
    assert not mention_ids & on_topic


async def test_meta_handshake_and_signed_delivery(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        ok = await client.get(
            "/v1/webhooks/meta",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": META_VERIFY_TOKEN,
                "hub.challenge": "1158201444",
            },
        )
        assert (ok.status_code, ok.text) == (200, "1158201444")
        wrong = await client.get(
            "/v1/webhooks/meta",
            params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"},
        )
        assert wrong.status_code == 403
        body = (FIXTURES / "meta" / "page_feed.json").read_bytes()
        signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = await client.post(
            "/v1/webhooks/meta",
            content=body,
            headers={"X-Hub-Signature-256": signature, "content-type": "application/json"},
        )
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] + response.json()["duplicates"] >= 1
        unsigned = await client.post("/v1/webhooks/meta", content=body)
        assert unsigned.status_code == 401


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
mention_like = st.fixed_dictionaries(
    {},
    optional={
        "channel": st.sampled_from(["x", "facebook", "web", "nope", ""]) | json_values,
        "kind": st.sampled_from(["mention", "reply", "dm", "??"]) | json_values,
        "text": st.text(max_size=200) | json_values,
        "author": st.fixed_dictionaries(
            {"handle": st.text(max_size=20)}, optional={"followers": st.integers()}
        )
        | json_values,
        "created_at": st.sampled_from(["2026-03-02T09:00:00+01:00", "2026-03-02", "x"])
        | json_values,
        "conversation_id": st.text(max_size=20) | json_values,
        "rating": json_values,
        "language": json_values,
    },
)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/mentions",
        "/v1/webhooks/youtube",
        "/v1/webhooks/reddit",
        "/v1/webhooks/google-business",
        "/v1/webhooks/trustpilot",
        "/v1/webhooks/email",
    ],
)
def test_fuzzed_bodies_never_get_a_5xx(stack: Stack, path: str) -> None:
    with httpx.Client(base_url=stack.url("ingest"), timeout=30, headers=INGEST_AUTH) as client:

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(body=mention_like | json_values, raw=st.binary(max_size=200), use_raw=st.booleans())
        def check(body: Any, raw: bytes, use_raw: bool) -> None:
            content = raw if use_raw else json.dumps(body).encode()
            response = client.post(
                path, content=content, headers={"content-type": "application/json"}
            )
            assert response.status_code < 500, (content[:200], response.text)

        check()


@pytest.mark.disruptive
async def test_broker_outage_gives_503_then_retries_succeed_and_nothing_acked_is_lost(
    stack: Stack,
) -> None:
    kafka = [str(REPO / "deploy/local/kafka.sh")]
    run = uuid.uuid4().hex[:8]
    acked: list[str] = []
    refused = 0

    def body(n: int) -> dict[str, Any]:
        return {
            "id": f"outage-{run}-{n}",
            "channel": "x",
            "kind": "mention",
            "text": f"@AuroraTelecom sin línea #{n}",
            "author": {"handle": "u"},
            "created_at": "2026-03-02T09:00:00+01:00",
            "conversation_id": f"o-{run}-{n}",
        }

    async with httpx.AsyncClient(
        base_url=stack.url("ingest"), timeout=60, headers=INGEST_AUTH
    ) as client:
        for n in range(10):
            response = await client.post("/v1/mentions", json=body(n))
            assert response.status_code == 202
            acked.append(response.json()["id"])
        await asyncio.to_thread(subprocess.run, [*kafka, "stop"], check=True, env=os.environ)
        try:
            for n in range(10, 15):
                response = await client.post("/v1/mentions", json=body(n))
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
                assert response.headers["content-type"] == "application/problem+json"
                refused += 1
        finally:
            await asyncio.to_thread(subprocess.run, [*kafka, "start"], check=True, env=os.environ)

        async def retry_succeeds() -> bool:
            response = await client.post("/v1/mentions", json=body(10))
            return response.status_code == 202

        await eventually(retry_succeeds, timeout=120, interval=1)
        for n in range(11, 15):
            response = await client.post("/v1/mentions", json=body(n))
            assert response.status_code in (200, 202), response.text
        for n in range(10, 15):
            response = await client.post("/v1/mentions", json=body(n))
            assert response.status_code == 200  # now a duplicate: it was made durable
            acked.append(response.json()["id"])
    assert refused == 5
    on_topic = set(await mention_ids_on_topic(stack))
    assert set(acked) <= on_topic
    for service in stack.services.values():
        await service.wait_ready(timeout=120)
