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
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from services.router import repository
from services.router.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LAG_SECONDS, WEBHOOK_SECONDS
from shared.db import Database
from shared.events import utcnow

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(
    secret: str, delivery_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    signature = Webhook(secret).sign(delivery_id, timestamp, body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "user-agent": "scs-router-webhooks/1",
    }


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        *,
        timeout_seconds: float,
        concurrency: int,
        retry_delays: list[timedelta],
        due: asyncio.Event,
    ) -> None:
        self._db = db
        self._timeout = timeout_seconds
        self._concurrency = concurrency
        self._retry_delays = retry_delays
        self._due = due
        self._client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False)

    async def run(self) -> None:
        while True:
            try:
                delivered = await self.deliver_due()
            except Exception:
                log.warning("webhook dispatch failed; will retry", exc_info=True)
                delivered = 0
            if delivered == 0:
                self._due.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._due.wait(), timeout=IDLE_POLL_SECONDS)

    async def close(self) -> None:
        await self._client.aclose()

    async def deliver_due(self) -> int:
        now = utcnow()
        lease_until = now + timedelta(seconds=self._timeout + 30)
        async with self._db.begin() as conn:
            batch = await repository.lease_due_deliveries(conn, now, lease_until, self._concurrency)
        if batch:
            await asyncio.gather(*(self._attempt(row) for row in batch))
        return len(batch)

    async def _attempt(self, row: dict[str, Any]) -> None:
        now = utcnow()
        headers = signed_headers(row["secret"], str(row["delivery_id"]), now, row["body"])
        status_code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            response = await self._client.post(row["url"], content=row["body"], headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        WEBHOOK_SECONDS.observe(time.perf_counter() - started)
        attempts = row["attempts"] + 1
        values: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        if error is None:
            values |= {"status": "delivered", "delivered_at": utcnow()}
            WEBHOOK_DELIVERIES.labels("delivered").inc()
            WEBHOOK_LAG_SECONDS.observe((utcnow() - row["created_at"]).total_seconds())
        elif attempts > len(self._retry_delays):
            values |= {"status": "failed"}
            WEBHOOK_DELIVERIES.labels("failed").inc()
            log.warning(
                "webhook delivery given up",
                extra={"delivery_id": str(row["delivery_id"]), "error": error},
            )
        else:
            values |= {"next_attempt_at": utcnow() + self._retry_delays[attempts - 1]}
            WEBHOOK_DELIVERIES.labels("retry").inc()
        async with self._db.begin() as conn:
            await repository.record_attempt(conn, row["delivery_id"], values)
