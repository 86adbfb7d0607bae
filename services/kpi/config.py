from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class KpiSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_KPI_")

    port: int = Field(default=8004, ge=1, le=65535)
    # Live figures cover cases opened in this trailing window.
    window_hours: int = Field(default=24 * 7, ge=1, le=24 * 366)
    # How often the live figures behind /metrics and /v1/kpis are recomputed.
    refresh_seconds: float = Field(default=5.0, gt=0, le=300)
