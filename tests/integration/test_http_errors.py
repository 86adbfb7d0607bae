"""Bad HTTP input gets a 4xx problem document from every service, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.conftest import ADMIN_KEY, CLASSIFIER_TOKEN, INGEST_AUTH, Stack


async def test_ingest_rejects_bad_mentions_with_problem_json(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        cases = [
            (b"{not json", 400),
            (b'{"channel": "x"}', 422),
            (
                b'{"channel": "myspace", "kind": "mention", "text": "hi",'
                b' "author": {"handle": "a"},'
                b' "created_at": "2026-01-01T00:00:00Z", "conversation_id": "c"}',
                422,
            ),
            (
                b'{"channel": "x", "kind": "mention", "text": "hi", "author": {"handle": "a"},'
                b' "created_at": "yesterday", "conversation_id": "c"}',
                422,
            ),
            (b"[]", 422),
            (b"x" * 2_000_000, 413),
        ]
        for body, expected in cases:
            response = await client.post(
                "/v1/mentions", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == expected, (body[:60], response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == expected


async def test_missing_field_is_named(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=INGEST_AUTH) as client:
        response = await client.post(
            "/v1/mentions",
            json={
                "channel": "x",
                "kind": "mention",
                "text": "hi",
                "author": {"handle": "a"},
                "created_at": "2026-01-01T00:00:00Z",
            },
        )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["conversation_id"]


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({}, {"url": "http://127.0.0.1:1/h", "events": ["case.created"]}, 401),
        (
            {"Authorization": "Bearer wrong-key-wrong-key"},
            {"url": "http://127.0.0.1:1/h", "events": ["case.created"]},
            401,
        ),
        (
            {"Authorization": f"Bearer {ADMIN_KEY}"},
            {"url": "not a url", "events": ["case.created"]},
            422,
        ),
        (
            {"Authorization": f"Bearer {ADMIN_KEY}"},
            {"url": "http://127.0.0.1:1/h", "events": ["x"]},
            422,
        ),
        (
            {"Authorization": f"Bearer {ADMIN_KEY}"},
            {"url": "http://127.0.0.1:1/h", "events": []},
            422,
        ),
    ],
)
async def test_webhook_registry_rejects_bad_requests(
    stack: Stack, headers: dict[str, str], body: dict[str, object], expected: int
) -> None:
    async with httpx.AsyncClient(base_url=stack.url("router")) as client:
        response = await client.post("/v1/webhook-endpoints", json=body, headers=headers)
    assert response.status_code == expected, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_every_service_answers_unknown_routes_and_methods_with_4xx(stack: Stack) -> None:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        for name in ("ingest", "classifier", "router", "kpi"):
            missing = await client.get(f"{stack.url(name)}/v1/nothing-here")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
            wrong_method = await client.delete(f"{stack.url(name)}/healthz")
            assert wrong_method.status_code == 405
        bad_classify = await client.post(
            f"{stack.url('classifier')}/v1/classify",
            json={"text": 3},
            headers={"Authorization": f"Bearer {CLASSIFIER_TOKEN}"},
        )
        assert bad_classify.status_code == 422
