"""Router HTTP edge: the webhook endpoint registry (admin key) and operational stats."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, status
from pydantic import AnyHttpUrl, BaseModel, Field, field_validator

from services.router import repository
from services.router.config import RouterSettings
from services.router.webhooks import new_secret
from shared.db import Database
from shared.events import Priority
from shared.problems import Problem
from shared.service import service_part
from shared.topics import CASES

router = APIRouter(prefix="/v1", tags=["router"])
WEBHOOK_EVENT_TYPES = sorted(t.value for t in CASES.event_types)


Settings = Annotated[RouterSettings, Depends(service_part("settings", RouterSettings))]
DB = Annotated[Database, Depends(service_part("database", Database))]


async def require_admin(
    settings: Settings, authorization: Annotated[str | None, Header()] = None
) -> None:
    expected = settings.admin_api_key.get_secret_value()
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(
            401,
            "Unauthorized",
            "a valid admin key is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


class WebhookEndpointIn(BaseModel):
    url: AnyHttpUrl
    events: list[str] = Field(min_length=1, description=f"Any of {WEBHOOK_EVENT_TYPES}")

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {WEBHOOK_EVENT_TYPES}")
        return sorted(set(events))


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="Signing secret (whsec_...): shown once, keep it safe")


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    dependencies=[Depends(require_admin)],
    summary="Register an agent-desktop endpoint for case webhooks",
)
async def create_webhook_endpoint(
    body: WebhookEndpointIn, settings: Settings, db: DB
) -> WebhookEndpointCreated:
    if body.url.scheme != "https" and not settings.webhook_allow_insecure_urls:
        raise Problem(
            422,
            "Unprocessable Content",
            "webhook URLs must use https",
            errors=[{"field": "url", "message": "must use https"}],
        )
    created = WebhookEndpointCreated(
        id=uuid.uuid4(), url=str(body.url), events=body.events, secret=new_secret()
    )
    async with db.begin() as conn:
        await repository.add_endpoint(
            conn,
            {
                "endpoint_id": created.id,
                "tenant": settings.tenant,
                "url": created.url,
                "event_types": created.events,
                "secret": created.secret,
            },
        )
    return created


@router.get(
    "/webhook-endpoints",
    response_model=list[WebhookEndpointOut],
    dependencies=[Depends(require_admin)],
    summary="List the registered webhook endpoints (without secrets)",
)
async def list_webhook_endpoints(
    settings: Settings,
    db: DB,
) -> list[WebhookEndpointOut]:
    async with db.begin() as conn:
        rows = await repository.endpoints_for(conn, settings.tenant)
    return [
        WebhookEndpointOut(id=r["endpoint_id"], url=r["url"], events=r["event_types"]) for r in rows
    ]


class RouterStats(BaseModel):
    cases_by_priority: dict[Priority, int]
    webhook_deliveries: dict[str, int]


@router.get("/stats", response_model=RouterStats, summary="Cases per priority, deliveries")
async def stats(settings: Settings, db: DB) -> RouterStats:
    async with db.begin() as conn:
        cases = await repository.case_counts(conn, settings.tenant)
        deliveries = await repository.delivery_counts(conn)
    return RouterStats(
        cases_by_priority={p: cases.get(p.value, 0) for p in Priority},
        webhook_deliveries={s: deliveries.get(s, 0) for s in ("pending", "delivered", "failed")},
    )
