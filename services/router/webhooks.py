"""Outgoing webhooks to agent desktops, signed per the Standard Webhooks specification.

Deliveries are rows written in the same transaction as the case change (an outbox), so none is
lost; this worker leases due rows, POSTs them, and records each attempt. Failures are retried on
a widening schedule; the `webhook-id` header stays the same across retries so receivers can
deduplicate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import InvalidToken, MultiFernet
from standardwebhooks.webhooks import Webhook

from services.router import repository
from services.router.egress import IPNetwork, VettedNetworkBackend, VettedTransport
from services.router.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LAG_SECONDS, WEBHOOK_SECONDS
from shared.db import Database
from shared.events import utcnow

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
# Bytes of a receiver's response read at most (the status is what counts).
RESPONSE_BODY_CAP = 16_384
# Bytes of it kept in the delivery log.
EXCERPT_BYTES = 512
# Retry delays vary by this share either way.
JITTER = 0.2


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def encrypt_stored_secrets(db: Database, cipher: MultiFernet) -> int:
    """Encrypt secrets stored in plaintext (before migration 0002) and re-encrypt the others
    with the first key, so a rotated-out key can be dropped after one start. Returns how many
    plaintext secrets were encrypted."""
    encrypted = 0
    unreadable: list[str] = []
    async with db.begin() as conn:
        for row in await repository.endpoint_secrets(conn):
            if row.secret is not None:
                ciphertext = cipher.encrypt(row.secret.encode())
                encrypted += 1
            elif row.secret_ciphertext is not None:
                try:
                    ciphertext = cipher.rotate(row.secret_ciphertext.encode())
                except InvalidToken:
                    unreadable.append(str(row.endpoint_id))
                    continue
            else:
                continue
            await repository.store_secret_ciphertext(conn, row.endpoint_id, ciphertext.decode())
    if unreadable:
        # A wrong or rotated-out key is a configuration error: deliveries would burn their
        # retries for hours and end failed. The router stays unready until the key is right.
        raise UnreadableSecrets(unreadable)
    return encrypted


class UnreadableSecrets(RuntimeError):
    """Stored signing secrets that no key of SCS_ROUTER_WEBHOOK_SECRETS_KEY decrypts."""

    def __init__(self, endpoint_ids: list[str]) -> None:
        super().__init__(
            f"{len(endpoint_ids)} webhook signing secret(s) cannot be decrypted with "
            f"SCS_ROUTER_WEBHOOK_SECRETS_KEY (endpoints {', '.join(endpoint_ids[:5])}): "
            "put the key they were stored with in the list (NEW,OLD)"
        )
        self.endpoint_ids = endpoint_ids


def signed_headers(
    signing: Sequence[str], delivery_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """Standard Webhooks headers; during a secret rotation, one signature per secret (space
    separated), so a receiver on either secret verifies."""
    signature = " ".join(
        Webhook(secret).sign(delivery_id, timestamp, body.decode()) for secret in signing
    )
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "user-agent": "scs-router-webhooks/1",
    }


class WebhookDispatcher:
    """Leases due deliveries as slots free up and runs each as its own task.

    No batch waits for its slowest delivery: a slot is refilled as soon as its attempt ends.
    Each endpoint holds at most `endpoint_concurrency` slots, each attempt has one total
    deadline, and at most RESPONSE_BODY_CAP bytes of a response are read.
    """

    def __init__(
        self,
        db: Database,
        *,
        timeout_seconds: float,
        lease_seconds: float,
        concurrency: int,
        endpoint_concurrency: int,
        retry_delays: list[timedelta],
        allowed_networks: Sequence[IPNetwork],
        secrets_cipher: MultiFernet,
        due: asyncio.Event,
    ) -> None:
        self._db = db
        self._timeout = timeout_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._concurrency = concurrency
        self._endpoint_concurrency = endpoint_concurrency
        self._retry_delays = retry_delays
        self._cipher = secrets_cipher
        self._due = due
        self._in_flight: dict[asyncio.Task[None], uuid.UUID] = {}
        self._client = httpx.AsyncClient(
            transport=VettedTransport(
                VettedNetworkBackend(allowed_networks), max_connections=concurrency
            ),
            timeout=timeout_seconds,  # per phase; the total deadline is enforced around each POST
            follow_redirects=False,
            trust_env=False,
        )

    async def run(self) -> None:
        try:
            while True:
                try:
                    leased = await self.lease_due()
                except Exception:
                    log.warning("webhook dispatch failed; will retry", exc_info=True)
                    leased = 0
                if leased == 0 or len(self._in_flight) >= self._concurrency:
                    self._due.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._due.wait(), timeout=IDLE_POLL_SECONDS)
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def close(self) -> None:
        await self._client.aclose()

    async def lease_due(self) -> int:
        """Lease what the free slots allow and start an attempt for each; returns how many."""
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return 0
        now = utcnow()
        async with self._db.begin() as conn:
            batch = await repository.lease_due_deliveries(
                conn,
                now=now,
                lease_until=now + self._lease,
                lease_token=uuid.uuid4(),
                limit=free,
                per_endpoint=self._endpoint_concurrency,
                in_flight=Counter(self._in_flight.values()),
            )
        for row in batch:
            task = asyncio.create_task(self._attempt(row), name=f"webhook {row.delivery_id}")
            self._in_flight[task] = row.endpoint_id
            task.add_done_callback(self._finished)
        return len(batch)

    def _finished(self, task: asyncio.Task[None]) -> None:
        del self._in_flight[task]
        self._due.set()  # a slot is free
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook attempt crashed", exc_info=task.exception())

    def _signing_secrets(self, row: repository.LeasedDelivery) -> list[str] | None:
        """The current secret, and the previous one while its rotation overlap lasts."""
        try:
            if row.secret_ciphertext is None:
                return None
            signing = [self._cipher.decrypt(row.secret_ciphertext.encode()).decode()]
            overlap = row.previous_secret_until is not None and row.previous_secret_until > utcnow()
            if overlap and row.previous_secret_ciphertext is not None:
                signing.append(
                    self._cipher.decrypt(row.previous_secret_ciphertext.encode()).decode()
                )
        except InvalidToken:
            return None
        return signing

    async def _post(self, row: repository.LeasedDelivery) -> tuple[int | None, str | None, str]:
        """POST one delivery within the total deadline: (status code, error or None, the start
        of the response)."""
        signing = self._signing_secrets(row)
        if signing is None:
            return (
                None,
                "signing secret cannot be decrypted with SCS_ROUTER_WEBHOOK_SECRETS_KEY",
                "",
            )
        headers = signed_headers(signing, str(row.delivery_id), utcnow(), row.body)
        try:
            async with asyncio.timeout(self._timeout):
                request = self._client.stream("POST", row.url, content=row.body, headers=headers)
                async with request as response:
                    head = await read_capped(response, RESPONSE_BODY_CAP)
        except TimeoutError:
            return None, f"no complete answer within {self._timeout:g} s", ""
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:1000], ""
        excerpt = head[:EXCERPT_BYTES].decode("utf-8", "replace")
        if 300 <= response.status_code < 400:
            return (
                response.status_code,
                f"HTTP {response.status_code}: redirects are not followed",
                excerpt,
            )
        if not 200 <= response.status_code < 300:
            return response.status_code, f"HTTP {response.status_code}", excerpt
        return response.status_code, None, excerpt

    async def _attempt(self, row: repository.LeasedDelivery) -> None:
        attempted_at = utcnow()
        started = time.perf_counter()
        status_code, error, excerpt = await self._post(row)
        elapsed = time.perf_counter() - started
        WEBHOOK_SECONDS.observe(elapsed)
        attempts = row.attempts + 1
        values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        gone = status_code == 410
        if error is None:
            outcome = "delivered"
            values |= {"status": "delivered", "delivered_at": utcnow()}
        elif gone or attempts > len(self._retry_delays):
            outcome = "failed"
            values |= {"status": "failed"}
        else:
            outcome = "retry"
            # Jittered, so receivers that failed together are not retried together.
            delay = self._retry_delays[attempts - 1] * random.uniform(1 - JITTER, 1 + JITTER)
            values |= {"next_attempt_at": utcnow() + delay}
        attempt = repository.Attempt(
            attempted_at=attempted_at,
            status_code=status_code,
            error=error,
            latency_ms=round(elapsed * 1000),
            response_excerpt=excerpt or None,
        )
        async with self._db.begin() as conn:
            recorded = await repository.record_attempt(
                conn, row.delivery_id, row.lease_token, values, attempt
            )
            if recorded and gone:
                # 410 Gone: the receiver says this endpoint is no more.
                await repository.disable_endpoint_of(conn, row.delivery_id)
                log.warning("webhook endpoint answered 410: disabled", extra={"url": row.url})
        if not recorded:
            log.warning(
                "webhook attempt outlived its lease; result discarded",
                extra={"delivery_id": str(row.delivery_id), "outcome": outcome},
            )
            return
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        if outcome == "delivered":
            WEBHOOK_LAG_SECONDS.observe((utcnow() - row.created_at).total_seconds())
        elif outcome == "failed":
            log.warning(
                "webhook delivery given up",
                extra={"delivery_id": str(row.delivery_id), "error": error},
            )


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most about `cap` bytes of the body and stop: receivers owe us a status, not a
    body, and a huge one must not sit in memory. Returns what was read."""
    chunks: list[bytes] = []
    read = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        read += len(chunk)
        if read >= cap:
            break
    return b"".join(chunks)[:cap]
