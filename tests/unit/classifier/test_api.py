"""POST /v1/classify: closed without a token, token checked before the body, bad input a 422
problem (never a 500), and scoring off the event loop."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from services.classifier.config import ClassifierSettings
from services.classifier.core import ClassificationContext, Classifier, default_lexicons
from services.classifier.main import create_app
from shared.events import Classification, Mention

ADMIN_KEY = "admin-key-0123456789"
TOKEN = "classifier-token-0123456789"
COMPLAINT = {"text": "My order never arrived, I want a refund"}


def app_with(monkeypatch: pytest.MonkeyPatch, **tokens: str) -> FastAPI:
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    return create_app(ClassifierSettings())


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    app = app_with(monkeypatch, SCS_ADMIN_API_KEY=ADMIN_KEY, SCS_CLASSIFIER_API_TOKEN=TOKEN)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://classifier",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        yield client


async def test_with_no_token_configured_everyone_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCS_ADMIN_API_KEY", raising=False)
    monkeypatch.delenv("SCS_CLASSIFIER_API_TOKEN", raising=False)
    transport = httpx.ASGITransport(app_with(monkeypatch))
    async with httpx.AsyncClient(transport=transport, base_url="http://classifier") as client:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
            response = await client.post("/v1/classify", json=COMPLAINT, headers=headers)
            assert response.status_code == 401, response.text


async def test_the_admin_key_or_the_classifier_token_opens_it(
    client: httpx.AsyncClient,
) -> None:
    for token in (ADMIN_KEY, TOKEN):
        response = await client.post(
            "/v1/classify", json=COMPLAINT, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["is_complaint"] is True
    for header in ("Bearer wrong-token-0123456789", f"Basic {TOKEN}", TOKEN):
        refused = await client.post(
            "/v1/classify", json=COMPLAINT, headers={"Authorization": header}
        )
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["www-authenticate"] == 'Bearer realm="classifier"'


async def test_the_token_is_checked_before_the_body_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/classify",
        content=b"{not json",
        headers={"Authorization": "Bearer wrong", "content-type": "application/json"},
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"text": "x" * 20_001},
        {"text": "hi", "brand": "b" * 257},
        {"text": "hi", "language": "x" * 17},
        {"text": "hi", "language": "es'; drop"},
        {"text": "hi", "author": {"handle": "h" * 257}},
        {"text": "hi", "author": {"handle": "a", "followers": 10**30}},
        {"text": "hi", "author": {"handle": "a", "nested": {"a": {"b": {"c": [1, [2, [3]]]}}}}},
        {"text": "hi", "unknown": [[[[[[["deep"]]]]]]]},
        {"text": {"a": {"b": {"c": {"d": "e"}}}}},
    ],
)
async def test_over_long_or_nested_fields_are_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/v1/classify", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("depth", [500, 5_000, 50_000])
async def test_deeply_nested_json_is_a_422_never_a_500(
    client: httpx.AsyncClient, depth: int
) -> None:
    """Nesting the JSON parser takes fails on the field; deeper than its recursion limit, the
    parser itself gives up: both are 422 problems."""
    nested = "[" * depth + "]" * depth
    content = ('{"text": "hi", "author": ' + nested + "}").encode()
    response = await client.post(
        "/v1/classify", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.text)["status"] == 422


class SlowClassifier(Classifier):
    """A model as slow as a fine-tuned encoder on a long text."""

    def classify(
        self, mention: Mention, context: ClassificationContext | None = None
    ) -> Classification:
        time.sleep(0.5)
        return super().classify(mention, context)


async def test_scoring_does_not_block_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = app_with(monkeypatch, SCS_CLASSIFIER_API_TOKEN=TOKEN)
    app.state.service.classifier = SlowClassifier(default_lexicons())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app),
        base_url="http://classifier",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as client:
        scoring = asyncio.create_task(client.post("/v1/classify", json=COMPLAINT))
        slept_from = time.perf_counter()
        await asyncio.sleep(0.1)  # the scoring starts here; on the loop it would block this
        slept = time.perf_counter() - slept_from
        assert slept < 0.3, f"the event loop stalled {slept:.2f} s while a text was scored"
        started = time.perf_counter()
        assert (await client.get("/healthz")).status_code == 200
        answered_in = time.perf_counter() - started
        assert not scoring.done()
        assert answered_in < 0.3, f"/healthz waited {answered_in:.2f} s behind the scoring"
        assert (await scoring).status_code == 200
