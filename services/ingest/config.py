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
    # Longest wait for the broker's ack before answering 503: platforms retry on errors, and
    # Meta expects an answer within 20 s.
    publish_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # How long a delivered mention id is remembered to recognise redeliveries and re-imports.
    dedupe_window_days: int = Field(default=30, ge=1, le=3650)
    # The brand's own accounts per adapter (x user ids, Page/IG ids, channel ids, locations,
    # addresses...) mapped to brand names: their posts are the brand's replies, not mentions.
    # JSON, e.g. {"x": {"1234": "Aurora Telecom"}, "email": {"care@aurora.example": "Aurora"}}
    brand_accounts: dict[str, dict[str, str]] = Field(default_factory=dict)
    # When set, platform-neutral endpoints (generic mentions, reviews, e-mail, ...) require
    # `Authorization: Bearer <token>`; X and Meta are authenticated by their signatures.
    api_token: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
