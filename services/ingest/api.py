"""Ingest HTTP edge: the generic mention endpoint (platform webhooks join it here)."""

from __future__ import annotations

import hmac
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Response, status
from pydantic import BaseModel

from services.ingest.config import IngestSettings
from services.ingest.core import ParseResult, generic
from services.ingest.handlers import AcceptResult, InFlight, MentionAcceptor
from services.ingest.metrics import MENTIONS_REJECTED
from shared.events import TraceContext
from shared.http import trace_context
from shared.problems import Problem
from shared.service import service_part

router = APIRouter(prefix="/v1", tags=["ingest"])

RETRY_AFTER_SECONDS = "5"


Acceptor = Annotated[MentionAcceptor, Depends(service_part("acceptor", MentionAcceptor))]
Settings = Annotated[IngestSettings, Depends(service_part("settings", IngestSettings))]
Trace = Annotated[TraceContext, Depends(trace_context)]


async def require_api_token(
    settings: Settings, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Bearer token for endpoints a platform does not sign (only when one is configured)."""
    if settings.api_token is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    expected = settings.api_token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected):
        MENTIONS_REJECTED.labels("all", "unauthorized").inc()
        raise Problem(
            401,
            "Unauthorized",
            "a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


class MentionAccepted(BaseModel):
    id: uuid.UUID
    status: Literal["accepted", "duplicate"]


async def accept_or_503(
    acceptor: MentionAcceptor, parsed: ParseResult, trace: TraceContext, channel: str
) -> AcceptResult:
    """Publish through the acceptor; any failure to make it durable is a 503, never a 500."""
    try:
        return await acceptor.accept(parsed, trace, channel)
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
    dependencies=[Depends(require_api_token)],
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
    mention: generic.GenericMentionIn, response: Response, acceptor: Acceptor, trace: Trace
) -> MentionAccepted:
    result = await accept_or_503(acceptor, generic.parse(mention), trace, mention.channel.value)
    if result.accepted:
        return MentionAccepted(id=result.accepted[0], status="accepted")
    response.status_code = status.HTTP_200_OK
    return MentionAccepted(id=result.duplicates[0], status="duplicate")
