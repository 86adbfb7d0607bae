from __future__ import annotations

import ipaddress
import json
from typing import Annotated

from cryptography.fernet import Fernet, MultiFernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.router.core import DEFAULT_FIRST_RESPONSE_MINUTES, RoutingPolicy
from shared.events import Priority
from shared.settings import ServiceSettings

LEASE_MARGIN_SECONDS = 5.0


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_ROUTER_")

    port: int = Field(default=8003, ge=1, le=65535)
    # Protects the webhook endpoint registry (Authorization: Bearer <key>).
    admin_api_key: SecretStr = Field(min_length=16, validation_alias="SCS_ADMIN_API_KEY")
    # Total deadline of one delivery attempt: connect, send, response headers and capped body.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Deliveries in flight at once, across endpoints.
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # Deliveries in flight to one endpoint: a slow receiver holds at most this many slots.
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=64)
    # Wait before each retry of a failed delivery: quick at first (a receiver restarting), then
    # widening so an endpoint down for hours is not hammered. After the last, it is failed.
    webhook_retry_delays_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0], max_length=20
    )
    # Allow http:// endpoints (local stacks and tests only); addresses are a separate check.
    webhook_allow_insecure_urls: bool = False
    # Networks webhooks may reach although they are loopback or private (JSON list of CIDRs,
    # e.g. ["10.20.0.0/16"]); metadata addresses stay refused.
    webhook_allowed_networks: Annotated[
        list[ipaddress.IPv4Network | ipaddress.IPv6Network], NoDecode
    ] = Field(default_factory=list, max_length=100)
    # Fernet key(s) for the signing secrets at rest, comma-separated: the first encrypts, all
    # decrypt, so a key is rotated by putting the new one first (secrets are re-encrypted at start).
    webhook_secrets_key: SecretStr
    # Seconds between outbox relay runs, so case events a previous batch could not publish
    # (broker down, crash) go out without waiting for the next mention.
    outbox_relay_seconds: float = Field(default=1.0, gt=0, le=60)
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

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _json_list(cls, value: object) -> object:
        """Decoded here, so a value that is not JSON is a named configuration error too."""
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError('expected a JSON list of CIDRs, e.g. ["10.20.0.0/16"]') from None

    @field_validator("webhook_secrets_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        keys = [k.strip() for k in value.get_secret_value().split(",")]
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                    "make one with `python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'`)"
                ) from None
        return value

    def secrets_cipher(self) -> MultiFernet:
        keys = self.webhook_secrets_key.get_secret_value().split(",")
        return MultiFernet([Fernet(k.strip()) for k in keys])

    @property
    def webhook_lease_seconds(self) -> float:
        """How long a leased delivery is left alone: the attempt's deadline plus time to record
        its result. A delivery whose router died is attempted again after this."""
        return self.webhook_timeout_seconds + LEASE_MARGIN_SECONDS

    def routing_policy(self) -> RoutingPolicy:
        return RoutingPolicy(first_response_minutes=self.first_response_minutes)
