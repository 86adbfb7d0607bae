"""SSRF through the running router: internal webhook URLs are refused at registration with a
422 naming why, and an endpoint that points inside anyway (stored before this check existed) is
refused at connect time, recorded as a failed attempt with the reason. The stack allow-lists
127.0.0.0/8 only."""

from __future__ import annotations

import uuid

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.integration.conftest import ADMIN_AUTH, WEBHOOK_SECRETS_KEY, Stack, eventually
from tests.integration.test_webhook_retries import delivery_rows, post_mention, query
from tests.integration.test_webhooks_isolation import set_enabled


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.5/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::1]:8080/hooks", "loopback"),  # ::1 is not in the allowed 127.0.0.0/8
        ("http://[::ffff:192.168.0.1]/hooks", "private"),
        ("http://admin:pw@127.0.0.1:1/hooks", "credentials"),
    ],
)
async def test_internal_urls_are_refused_at_registration(
    stack: Stack, url: str, reason: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{stack.url('router')}/v1/webhook-endpoints",
            headers=ADMIN_AUTH,
            json={"url": url, "events": ["case.created"]},
        )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.json()["detail"]


async def test_an_internal_endpoint_stored_anyway_is_refused_at_connect_time(stack: Stack) -> None:
    url = f"http://10.255.255.1/hooks/{uuid.uuid4().hex}"
    endpoint_id = uuid.uuid4()
    await query(
        stack,
        "INSERT INTO webhook_endpoints (endpoint_id, tenant, url, event_types, secret_ciphertext) "
        "VALUES (:e, 'default', :u, ARRAY['case.created'], :s)",
        e=endpoint_id,
        u=url,
        s=Fernet(WEBHOOK_SECRETS_KEY).encrypt(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").decode(),
    )
    try:
        await post_mention(stack, f"ssrf-{uuid.uuid4().hex}")

        async def attempted() -> bool:
            return any(row.attempts > 0 for row in await delivery_rows(stack, url))

        await eventually(attempted, timeout=30)
        [row] = await delivery_rows(stack, url)
        assert row.last_status_code is None
        assert "refused at connect time" in row.last_error and "private" in row.last_error
    finally:
        await set_enabled(stack, str(endpoint_id), False)
