from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.kpi.core import OTHER_TENANTS
from shared.settings import ServiceSettings, TenantName


class KpiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_KPI_")

    port: int = Field(default=8004, ge=1, le=65535)
    # Live figures cover cases opened in this trailing window.
    window_hours: int = Field(default=24 * 7, ge=1, le=24 * 366)
    # How often the live figures behind /metrics and /v1/kpis are recomputed.
    refresh_seconds: float = Field(default=5.0, gt=0, le=300)
    # Tenants besides SCS_TENANT with their own figures and `tenant` label (a JSON list); the
    # cases of any other tenant are counted under "other", so the label set stays closed.
    tenants: list[TenantName] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _other_is_reserved(self) -> KpiSettings:
        if OTHER_TENANTS in self.reported_tenants():
            raise ValueError(
                f"SCS_TENANT and SCS_KPI_TENANTS: {OTHER_TENANTS!r} names the unlisted tenants"
            )
        return self

    def reported_tenants(self) -> list[str]:
        return sorted({self.tenant, *self.tenants})
