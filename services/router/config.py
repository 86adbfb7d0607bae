from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from services.router.core import DEFAULT_FIRST_RESPONSE_MINUTES, RoutingPolicy
from shared.events import Priority
from shared.settings import ServiceSettings


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_ROUTER_")

    port: int = Field(default=8003, ge=1, le=65535)
    # Protects the webhook endpoint registry (Authorization: Bearer <key>).
    admin_api_key: SecretStr = Field(min_length=16, validation_alias="SCS_ADMIN_API_KEY")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Deliveries in flight at once, across endpoints.
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # Wait before each retry of a failed delivery: quick at first (a receiver restarting), then
    # widening so an endpoint down for hours is not hammered. After the last, it is failed.
    webhook_retry_delays_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0], max_length=20
    )
    # Allow http:// and private addresses for endpoints (local stacks and tests only).
    webhook_allow_insecure_urls: bool = False
    # Minutes to a first public or private answer, by priority (JSON object, e.g.
    # {"P1": 15, "P2": 60, "P3": 240, "P4": 1440}); the brand's published promise.
    first_response_minutes: dict[Priority, int] = Field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_MINUTES)
    )

    @field_validator("first_response_minutes")
    @classmethod
    def _every_priority(cls, value: dict[Priority, int]) -> dict[Priority, int]:
        missing = set(Priority) - set(value)
        if missing:
            raise ValueError(f"missing priorities {sorted(missing)}")
        if any(minutes <= 0 for minutes in value.values()):
            raise ValueError("targets must be positive minutes")
        return value

    def routing_policy(self) -> RoutingPolicy:
        return RoutingPolicy(first_response_minutes=self.first_response_minutes)
