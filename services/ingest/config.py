from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SCS_INGEST_")

    port: int = Field(default=8001, ge=1, le=65535)
    # Largest request body accepted; platform webhooks are far smaller, e-mails with inline
    # images are the largest legitimate payloads.
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=50 * 1_048_576)
    # How long a delivered mention id is remembered to recognise redeliveries and re-imports.
    dedupe_window_days: int = Field(default=30, ge=1, le=3650)
    x_consumer_secret: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
