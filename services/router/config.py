from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated

from cryptography.fernet import Fernet, MultiFernet
from pydantic import Field, FilePath, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from services.router.core.playbook import Playbook, PlaybookError, parse_playbook
from shared.settings import ServiceSettings

LEASE_MARGIN_SECONDS = 5.0
# The sample brand's playbook in the source tree (the compose file mounts deploy/playbooks).
SAMPLE_PLAYBOOK = Path(__file__).resolve().parents[2] / "deploy" / "playbooks" / "sample.yaml"


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_ROUTER_")

    port: int = Field(default=8003, ge=1, le=65535)
    # The bootstrap key (Authorization: Bearer <key>): admin of SCS_TENANT, and the one key that
    # manages API keys of any tenant (docs/api-keys.md).
    admin_api_key: SecretStr = Field(min_length=16, validation_alias="SCS_ADMIN_API_KEY")
    # How long a router remembers an API key it looked up: a revocation made in another replica
    # takes effect within this time (0: look every key up on every request).
    api_key_cache_seconds: float = Field(default=1.0, ge=0, le=10)
    # Total deadline of one delivery attempt: connect, send, response headers and capped body.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Deliveries in flight at once, across endpoints.
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # Deliveries in flight to one endpoint: a slow receiver holds at most this many slots.
    webhook_endpoint_concurrency: int = Field(default=4, ge=1, le=64)
    # Wait before each retry of a failed delivery: quick at first (a receiver restarting), then
    # widening so an endpoint down for hours is not hammered; each varies by ±20% (jitter). The
    # default spans about 28 h. After the last, the delivery is failed (and can be redelivered).
    webhook_retry_delays_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200],
        max_length=20,
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
    # The brand's SCS playbook (YAML): queues, hours, SLAs, routing rules, escalation, crises.
    playbook: FilePath = SAMPLE_PLAYBOOK
    # Seconds between looks for due SLA timers (warnings, breaches, escalations, resolutions).
    timer_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # A deadline already past when its mention arrives fires at once; a bulk replay of old
    # mentions may switch that off so history does not page anyone.
    alert_past_deadlines: bool = True
    _playbook: Playbook | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _load_playbook(self) -> RouterSettings:
        """A playbook that does not load stops the router at start, with its lines."""
        try:
            self._playbook = parse_playbook(self.playbook.read_text(encoding="utf-8"))
        except PlaybookError as error:
            raise ValueError(
                f"SCS_ROUTER_PLAYBOOK {self.playbook}: " + "; ".join(error.problems)
            ) from None
        return self

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

    def routing_playbook(self) -> Playbook:
        assert self._playbook is not None  # loaded by the validator
        return self._playbook
