"""KPI HTTP edge: the live SLA report as JSON (the same figures as /metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request

if TYPE_CHECKING:
    from services.kpi.main import KpiService

router = APIRouter(prefix="/v1", tags=["kpi"])


def kpi_service(request: Request) -> KpiService:
    return request.app.state.service  # type: ignore[no-any-return]


@router.get("/kpis/sla", summary="First-response SLA figures over the trailing window")
async def sla(service: Annotated[KpiService, Depends(kpi_service)]) -> dict[str, Any]:
    report = await service.projector.refresh()
    return {
        "window_hours": service.settings.window_hours,
        "overall": report.overall.summary(),
        "by_priority": {p.value: f.summary() for p, f in sorted(report.by_priority.items())},
        "by_channel": {c.value: f.summary() for c, f in sorted(report.by_channel.items())},
    }
