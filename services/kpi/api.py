"""KPI HTTP edge: the live SLA report as JSON (the same figures as /metrics)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.kpi.config import KpiSettings
from services.kpi.handlers import KpiProjector

router = APIRouter(prefix="/v1", tags=["kpi"])


async def projector(request: Request) -> KpiProjector:
    loaded: KpiProjector = request.app.state.service.projector
    return loaded


async def kpi_settings(request: Request) -> KpiSettings:
    settings: KpiSettings = request.app.state.service.settings
    return settings


@router.get("/kpis/sla", summary="First-response SLA figures over the trailing window")
async def sla(
    kpis: Annotated[KpiProjector, Depends(projector)],
    settings: Annotated[KpiSettings, Depends(kpi_settings)],
) -> dict[str, Any]:
    report = await kpis.refresh()
    return {
        "window_hours": settings.window_hours,
        "overall": report.overall.summary(),
        "by_priority": {p.value: f.summary() for p, f in sorted(report.by_priority.items())},
        "by_channel": {c.value: f.summary() for c, f in sorted(report.by_channel.items())},
    }
