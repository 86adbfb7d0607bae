"""KPI HTTP edge: the live SLA report as JSON (the same figures as /metrics), handoff and
social resolution rates included."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from services.kpi.config import KpiSettings
from services.kpi.handlers import KpiProjector
from shared.problems import Problem
from shared.service import service_part
from shared.settings import TENANT_PATTERN

router = APIRouter(prefix="/v1", tags=["kpi"])


Projector = Annotated[KpiProjector, Depends(service_part("projector", KpiProjector))]
Settings = Annotated[KpiSettings, Depends(service_part("settings", KpiSettings))]


@router.get(
    "/kpis/sla",
    summary="First-response SLA figures over the trailing window, of one tenant",
    responses={404: {"description": "Not a tenant with figures of its own"}},
)
async def sla(
    kpis: Projector,
    settings: Settings,
    tenant: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=TENANT_PATTERN,
            description="SCS_TENANT or one of SCS_KPI_TENANTS (default: SCS_TENANT)",
        ),
    ] = None,
) -> dict[str, Any]:
    tenant = tenant or settings.tenant
    if tenant not in settings.reported_tenants():
        raise Problem(404, "Not Found", f"no figures are kept for tenant {tenant!r}")
    report = (await kpis.refresh())[tenant]
    return {
        "tenant": tenant,
        "window_hours": settings.window_hours,
        "overall": report.overall.summary(),
        "by_priority": {p.value: f.summary() for p, f in sorted(report.by_priority.items())},
        "by_channel": {c.value: f.summary() for c, f in sorted(report.by_channel.items())},
    }
