"""Ingest HTTP edge: the generic mention endpoint (platform webhooks join it here)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel

from services.ingest.config import IngestSettings
from services.ingest.core import ParseResult, generic
from services.ingest.handlers import (
    AcceptResult,
    InFlight,
    MentionAcceptor,
    MentionRefused,
    Overloaded,
)
from services.ingest.metrics import MENTIONS_REJECTED
from shared.events import TraceContext
from shared.http import authenticated_route, bearer_matches, trace_context
from shared.problems import Problem
from shared.service import service_part

RETRY_AFTER_SECONDS = "5"


def _accepted_tokens(service: Any) -> list[str] | None:
    settings: IngestSettings = service.settings
    return settings.accepted_tokens()


# Endpoints no platform signs: the bearer token is checked before the body is even read.
BearerRoute = authenticated_route(_accepted_tokens, "ingest")
router = APIRouter(prefix="/v1", tags=["ingest"], route_class=BearerRoute)


Acceptor = Annotated[MentionAcceptor, Depends(service_part("acceptor", MentionAcceptor))]
Settings = Annotated[IngestSettings, Depends(service_part("settings", IngestSettings))]
Trace = Annotated[TraceContext, Depends(trace_context)]


async def credential_tenant(request: Request, settings: Settings) -> str:
    """The tenant whose bearer token opened the request (the route checked it is one of the
    accepted tokens); SCS_TENANT when the endpoints are open on purpose and no tenant's token
    came. Every token is compared, in constant time, whichever matches."""
    authorization = request.headers.get("authorization")
    owners = [
        tenant
        for token, tenant in settings.tenant_of_token().items()
        if bearer_matches(authorization, [token])
    ]
    return owners[0] if owners else settings.tenant


Tenant = Annotated[str, Depends(credential_tenant)]


class MentionAccepted(BaseModel):
    id: uuid.UUID
    status: Literal["accepted", "duplicate"]


async def accept_or_503(
    acceptor: MentionAcceptor, parsed: ParseResult, trace: TraceContext, channel: str, tenant: str
) -> AcceptResult:
    """Publish through the acceptor; a mention that cannot travel is this request's 413/422 only,
    any failure to make it durable is a 503, never a 500."""
    try:
        return await acceptor.accept(parsed, trace, tenant, channel)
    except MentionRefused as refused:
        MENTIONS_REJECTED.labels(channel, "too_large" if refused.status == 413 else "invalid").inc()
        raise Problem(
            refused.status,
            "Content Too Large" if refused.status == 413 else "Unprocessable Content",
            str(refused),
            errors=[{"field": refused.field, "message": str(refused)}],
        ) from None
    except Overloaded:
        MENTIONS_REJECTED.labels(channel, "overloaded").inc()
        raise Problem(
            503,
            "Service Unavailable",
            "too many mentions are waiting to be made durable",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from None
    except InFlight:
        MENTIONS_REJECTED.labels(channel, "in_flight").inc()
        raise Problem(
            503,
            "Service Unavailable",
            "the same mention is being accepted by another request",
            headers={"Retry-After": "1"},
        ) from None
    except Exception as exc:
        MENTIONS_REJECTED.labels(channel, "unavailable").inc()
        raise Problem(
            503,
            "Service Unavailable",
            f"could not make the mention durable: {type(exc).__name__}",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from exc


@router.post(
    "/mentions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MentionAccepted,
    summary="Accept one mention in the generic JSON format",
    responses={
        200: {"description": "Already accepted earlier (duplicate)"},
        422: {"description": "Invalid mention"},
        503: {"description": "Retry later"},
    },
)
async def post_mention(
    mention: generic.GenericMentionIn,
    response: Response,
    acceptor: Acceptor,
    trace: Trace,
    tenant: Tenant,
) -> MentionAccepted:
    result = await accept_or_503(
        acceptor, generic.parse(mention), trace, mention.channel.value, tenant
    )
    if result.accepted:
        return MentionAccepted(id=result.accepted[0], status="accepted")
    response.status_code = status.HTTP_200_OK
    return MentionAccepted(id=result.duplicates[0], status="duplicate")
