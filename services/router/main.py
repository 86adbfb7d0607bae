"""Router service: classified mentions in, cases in PostgreSQL, case events and webhooks out."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from fastapi import FastAPI

from services.router import api, console, keys_api, webhook_docs
from services.router.access import KeyResolver, database_lookup
from services.router.config import RouterSettings
from services.router.handlers import TIMER_BATCH, CaseRouter
from services.router.webhooks import WebhookDispatcher, encrypt_stored_secrets
from shared.kafka import EventConsumer
from shared.service import Service, create_service_app, serve
from shared.settings import load_settings
from shared.topics import CLASSIFICATIONS

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 3600


class RouterService(Service[RouterSettings]):
    name = "router"

    def __init__(self, settings: RouterSettings) -> None:
        super().__init__(settings)
        self.deliveries_due = asyncio.Event()
        self.case_router = CaseRouter(
            self.database,
            self.producer,
            settings.routing_playbook(),
            self.deliveries_due,
            alert_past_deadlines=settings.alert_past_deadlines,
        )
        self.secrets_cipher = settings.secrets_cipher()
        self.keys = KeyResolver(
            database_lookup(self.database),
            settings.admin_api_key.get_secret_value(),
            settings.tenant,
            cache_seconds=settings.api_key_cache_seconds,
        )
        self.dispatcher = WebhookDispatcher(
            self.database,
            timeout_seconds=settings.webhook_timeout_seconds,
            lease_seconds=settings.webhook_lease_seconds,
            concurrency=settings.webhook_concurrency,
            endpoint_concurrency=settings.webhook_endpoint_concurrency,
            retry_delays=[timedelta(seconds=s) for s in settings.webhook_retry_delays_seconds],
            allowed_networks=settings.webhook_allowed_networks,
            secrets_cipher=self.secrets_cipher,
            due=self.deliveries_due,
        )

    async def on_connected(self) -> None:
        encrypted = await encrypt_stored_secrets(self.database, self.secrets_cipher)
        if encrypted:
            log.info("encrypted webhook secrets stored in plaintext", extra={"count": encrypted})
        # Also publishes at once what a previous run committed but did not send.
        self.every(
            self.settings.outbox_relay_seconds, self.case_router.relay_outbox, "outbox relay"
        )
        self.consumers.append(
            EventConsumer(
                topic=CLASSIFICATIONS,
                group_id="scs-router",
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                handler=self.case_router.handle,
                producer=self.producer,
                max_batch_records=self.settings.consumer_batch_max_records,
            )
        )
        self.spawn(self.dispatcher.run(), "webhook dispatcher")
        self.every(self.settings.timer_poll_seconds, self.fire_timers, "sla timers")
        self.every(PRUNE_EVERY_SECONDS, self.case_router.prune, "prune outbox and fired timers")

    async def fire_timers(self) -> None:
        """Everything due, a batch at a time (a backlog after an outage drains in one tick)."""
        while await self.case_router.fire_due_timers() == TIMER_BATCH:
            pass

    async def on_stopping(self) -> None:
        await self.dispatcher.close()


def create_app(settings: RouterSettings | None = None) -> FastAPI:
    settings = settings or load_settings(RouterSettings)
    app = create_service_app(
        RouterService(settings),
        # The stream first: /v1/cases/stream would otherwise be taken for a case id.
        [console.pages, console.stream, api.router, keys_api.router],
        title="SCS Router — router",
        description="Threads classified mentions into cases and delivers signed webhooks.",
    )
    app.webhooks.include_router(webhook_docs.webhooks)
    return app


def run() -> None:
    settings = load_settings(RouterSettings)
    serve(lambda: create_app(settings), settings, "router")
