"""Ingest service: platform payloads in, `mention.received` events out."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI

from services.ingest import api, platforms
from services.ingest.config import IngestSettings
from services.ingest.handlers import MentionAcceptor
from shared.service import Service, create_service_app, serve
from shared.settings import load_settings

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 600


class IngestService(Service[IngestSettings]):
    name = "ingest"

    def __init__(self, settings: IngestSettings) -> None:
        super().__init__(settings)
        self.acceptor = MentionAcceptor(
            self.database,
            self.producer,
            timedelta(days=settings.dedupe_window_days),
            settings.publish_timeout_seconds,
            max_pending_mentions=settings.max_pending_mentions,
            claim_timeout=timedelta(seconds=settings.claim_timeout_seconds),
        )

    async def on_connected(self) -> None:
        self.every(PRUNE_EVERY_SECONDS, self.acceptor.prune, "prune dedupe window")


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = settings or load_settings(IngestSettings)
    return create_service_app(
        IngestService(settings),
        [api.router, platforms.router, platforms.unsigned_router],
        title="SCS Router — ingest",
        description="Turns platform webhooks and exports into normalized mentions on Kafka.",
    )


def run() -> None:
    settings = load_settings(IngestSettings)
    serve(lambda: create_app(settings), settings, "ingest")
