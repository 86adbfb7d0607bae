"""KPI service: case events in, live SLA metrics out (/metrics and /v1/kpis/sla)."""

from __future__ import annotations

import logging
from datetime import timedelta

from fastapi import FastAPI
from prometheus_client import REGISTRY

from services.kpi import api
from services.kpi.config import KpiSettings
from services.kpi.handlers import KpiProjector
from services.kpi.metrics import register_sla_collector
from shared.kafka import EventConsumer
from shared.service import Service, create_service_app, serve
from shared.settings import load_settings
from shared.topics import CASES

log = logging.getLogger(__name__)
PRUNE_EVERY_SECONDS = 3600


class KpiService(Service[KpiSettings]):
    name = "kpi"

    def __init__(self, settings: KpiSettings) -> None:
        super().__init__(settings)
        self.projector = KpiProjector(
            self.database, settings.reported_tenants(), timedelta(hours=settings.window_hours)
        )
        self._collector = register_sla_collector(lambda: self.projector.reports)

    async def on_connected(self) -> None:
        self.consumers.append(
            EventConsumer(
                topic=CASES,
                group_id="scs-kpi",
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                handler=self.projector.handle,
                producer=self.producer,
                max_batch_records=self.settings.consumer_batch_max_records,
            )
        )
        self.every(self.settings.refresh_seconds, self.projector.refresh, "refresh sla report")
        self.every(PRUNE_EVERY_SECONDS, self.projector.prune, "prune applied event ids")

    async def on_stopping(self) -> None:
        REGISTRY.unregister(self._collector)


def create_app(settings: KpiSettings | None = None) -> FastAPI:
    settings = settings or load_settings(KpiSettings)
    return create_service_app(
        KpiService(settings),
        [api.router],
        title="SCS Router — kpi",
        description="Live first-response SLA figures from case events.",
    )


def run() -> None:
    settings = load_settings(KpiSettings)
    serve(lambda: create_app(settings), settings, "kpi")
