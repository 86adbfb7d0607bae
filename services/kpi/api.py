"""KPI HTTP edge: the live SLA report as JSON (the same figures as /metrics), handoff and
social resolution rates included."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from services.kpi.config import KpiSettings
from services.kpi.handlers import KpiProjector
from shared.service import service_part

router = APIRouter(prefix="/v1", tags=["kpi"])


Projector = Annotated[KpiProjector, Depends(service_part("projector", KpiProjector))]
Settings = Annotated[KpiSettings, Depends(service_part("settings", KpiSettings))]


@router.get("/kpis/sla", summary="First-response SLA figures over the trailing window")
async def sla(
    kpis: Projector,
    settings: Settings,
) -> dict[str, Any]:
    report = await kpis.refresh()
    return {
        "window_hours": settings.window_hours,
        "overall": report.overall.summary(),
        "by_priority": {p.value: f.summary() for p, f in sorted(report.by_priority.items())},
        "by_channel": {c.value: f.summary() for c, f in sorted(report.by_channel.items())},
    }
