from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings, TenantName


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
    # Platform-neutral endpoints (generic mentions, reviews, e-mail, ...) require
    # `Authorization: Bearer <token>`; X and Meta are authenticated by their signatures. One of
    # the two must be set: an ingest open to anyone is a choice, never a default.
    api_token: SecretStr | None = Field(default=None, min_length=16)
    allow_anonymous: bool = False
    # More tenants on the same ingest, each with its own bearer token: {"tenant": "token"}. A
    # mention is the tenant's whose token opened the request (SCS_INGEST_API_TOKEN's, and the
    # signed X and Meta webhooks', is SCS_TENANT's).
    tenant_tokens: dict[TenantName, SecretStr] = Field(default_factory=dict)
    x_consumer_secret: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    # Mentions waiting for the next micro-batch; beyond it requests get 503 with Retry-After
    # instead of growing memory without bound while the broker or PostgreSQL is slow.
    max_pending_mentions: int = Field(default=5_000, ge=1, le=1_000_000)
    # A claim older than this is presumed abandoned (the process died between the broker's ack
    # and marking the mention published): the sender's retry then publishes it again.
    claim_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)

    @field_validator(
        "api_token", "x_consumer_secret", "meta_app_secret", "meta_verify_token", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """Compose passes `${VAR:-}` as an empty string: that means "not configured"."""
        if isinstance(value, str | SecretStr):
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            return text if text.strip() else None
        return value

    @model_validator(mode="after")
    def _claims_outlive_publishing(self) -> IngestSettings:
        """A claim that expires while its request still waits for the broker would let a retry
        take it over; the first request's release would then delete the retry's claim."""
        if self.claim_timeout_seconds <= self.publish_timeout_seconds:
            raise ValueError(
                "SCS_INGEST_CLAIM_TIMEOUT_SECONDS must be longer than "
                "SCS_INGEST_PUBLISH_TIMEOUT_SECONDS"
            )
        return self

    @model_validator(mode="after")
    def _closed_unless_chosen(self) -> IngestSettings:
        if self.api_token is None and not self.allow_anonymous:
            raise ValueError(
                "set SCS_INGEST_API_TOKEN (bearer token for the unsigned endpoints), or "
                "SCS_INGEST_ALLOW_ANONYMOUS=true to leave them open on purpose"
            )
        return self

    @field_validator("tenant_tokens")
    @classmethod
    def _strong_tokens(cls, tokens: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for tenant, token in tokens.items():
            if len(token.get_secret_value().strip()) < 16:
                raise ValueError(f"the token of tenant {tenant!r} must have 16+ characters")
        return tokens

    @model_validator(mode="after")
    def _one_tenant_per_token(self) -> IngestSettings:
        """A token shared by two tenants could not tell whose a mention is."""
        tokens = [token.get_secret_value() for token in self.tenant_tokens.values()]
        if self.api_token is not None:
            tokens.append(self.api_token.get_secret_value())
        if len(set(tokens)) != len(tokens):
            raise ValueError(
                "SCS_INGEST_TENANT_TOKENS: every tenant needs its own token, different from "
                "the others and from SCS_INGEST_API_TOKEN"
            )
        return self

    def tenant_of_token(self) -> dict[str, str]:
        """Every token that opens the unsigned endpoints, with the tenant it speaks for."""
        owners = {token.get_secret_value(): tenant for tenant, token in self.tenant_tokens.items()}
        if self.api_token is not None:
            owners[self.api_token.get_secret_value()] = self.tenant
        return owners

    def accepted_tokens(self) -> list[str] | None:
        """Tokens that open the unsigned endpoints; None when they are open on purpose."""
        if self.api_token is None:
            return None
        return list(self.tenant_of_token())
