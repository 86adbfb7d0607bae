"""Webhook signing secrets at rest: a registration stores only a Fernet token of the secret it
shows once (plaintext secrets of older rows: test_router_storage.py)."""

from __future__ import annotations

import uuid

from cryptography.fernet import Fernet

from tests.integration.conftest import WEBHOOK_SECRETS_KEY, Stack
from tests.integration.test_webhook_retries import query, register
from tests.integration.test_webhooks_isolation import set_enabled


async def test_a_registered_secret_is_stored_encrypted_only(stack: Stack) -> None:
    created = await register(stack, f"http://127.0.0.1:1/secret-{uuid.uuid4().hex}")
    [row] = await query(
        stack,
        "SELECT secret, secret_ciphertext FROM webhook_endpoints WHERE endpoint_id = :e",
        e=uuid.UUID(created["id"]),
    )
    assert row.secret is None
    assert created["secret"] not in row.secret_ciphertext
    assert Fernet(WEBHOOK_SECRETS_KEY).decrypt(row.secret_ciphertext).decode() == created["secret"]
    await set_enabled(stack, created["id"], False)
