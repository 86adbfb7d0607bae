"""Settings shared by every service; each service subclasses once with its own prefix.

Common values use the `SCS_` prefix (`SCS_KAFKA_BOOTSTRAP_SERVERS`), a service's own values its
service prefix (`SCS_INGEST_PORT`). A bad value stops the process at start-up with a message that
names the variable, never at the first request.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal, Self, TypeVar

from pydantic import (
    AliasChoices,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

ASYNCPG_URL_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
# A tenant an operator adds (ingest tokens, KPI labels): a closed pattern, so a name is safe in
# keys, lock names and metric labels, and fits the events' and tables' 64 characters.
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
TenantName = Annotated[str, StringConstraints(pattern=TENANT_PATTERN)]


def asyncpg_url(value: str) -> str:
    """Accept the URL forms PostgreSQL tools and hosting providers hand out; use asyncpg."""
    scheme, separator, rest = value.partition("://")
    if not separator or scheme not in ASYNCPG_URL_SCHEMES:
        raise ValueError("must start with postgresql://, postgres:// or postgresql+asyncpg://")
    return f"postgresql+asyncpg://{rest}"


def _common(name: str) -> AliasChoices:
    return AliasChoices(f"SCS_{name}", f"scs_{name.lower()}")


class ConnectionSettings(BaseSettings):
    """Where Kafka and PostgreSQL are, and for which tenant: all a command-line tool needs."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    tenant: str = Field(
        default="default", min_length=1, max_length=64, validation_alias=_common("TENANT")
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias=_common("KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: str = Field(
        default="postgresql+asyncpg://scs:scs@127.0.0.1:5432/scs",
        validation_alias=_common("DATABASE_URL"),
    )
    # Copies of every partition, and how many must have a write before it is acknowledged
    # (acks=all): 1 and 1 suit only the single-node default; a 3-broker cluster wants 3 and 2.
    kafka_replication_factor: int = Field(
        default=1, ge=1, le=16, validation_alias=_common("KAFKA_REPLICATION_FACTOR")
    )
    kafka_min_insync_replicas: int = Field(
        default=1, ge=1, le=16, validation_alias=_common("KAFKA_MIN_INSYNC_REPLICAS")
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _host_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port[,host:port...], got {value!r}")
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_url(cls, value: str) -> str:
        return asyncpg_url(value)

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> Self:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                "SCS_KAFKA_MIN_INSYNC_REPLICAS must not exceed SCS_KAFKA_REPLICATION_FACTOR, "
                "or no write could ever be acknowledged"
            )
        return self


class ServiceSettings(ConnectionSettings):
    """What every service adds: logging, HTTP, shutdown and consumer limits."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias=_common("LOG_LEVEL")
    )
    host: str = Field(default="127.0.0.1", validation_alias=_common("HOST"))
    # Kubernetes and compose both give 30 s before SIGKILL; finish in-flight work well before.
    shutdown_grace_seconds: float = Field(
        default=20.0, gt=0, le=300, validation_alias=_common("SHUTDOWN_GRACE_SECONDS")
    )
    # Records handled per consumer batch: bounds memory and the work redone after a crash.
    consumer_batch_max_records: int = Field(
        default=500, ge=1, le=10_000, validation_alias=_common("CONSUMER_BATCH_MAX_RECORDS")
    )
    # Largest request body any endpoint reads: larger ones get 413 before they are buffered.
    max_body_bytes: int = Field(
        default=262_144, ge=1024, le=50 * 1_048_576, validation_alias=_common("MAX_BODY_BYTES")
    )
    port: int = Field(ge=1, le=65535)


SettingsT = TypeVar("SettingsT", bound=ConnectionSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read the environment or exit with status 2 and one line per bad variable."""
    try:
        return settings_class()
    except ValidationError as exc:
        prefix = settings_class.model_config.get("env_prefix", "")
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            if not name:  # a rule across variables: its message names them
                print(f"configuration error: {error['msg']}", file=sys.stderr)
                continue
            variable = name if name.upper().startswith("SCS_") else f"{prefix}{name}".upper()
            print(f"configuration error: {variable}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
