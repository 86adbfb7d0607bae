"""Platform webhook endpoints: each platform's handshake and signature, then its pure parser.

Every endpoint answers 202 only after the parsed mentions are acknowledged by Kafka; a bad
signature is 401 and nothing is published; a payload that is not the platform's format is 400
(not JSON) or 422 (naming the missing field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, SecretStr

from services.ingest.api import Acceptor, Settings, Trace, accept_or_503, require_api_token
from services.ingest.core import (
    ParseResult,
    PayloadError,
    email,
    google_business,
    meta,
    reddit,
    trustpilot,
    x,
    youtube,
)
from services.ingest.metrics import MENTIONS_REJECTED
from shared.problems import Problem

router = APIRouter(prefix="/v1/webhooks", tags=["platform webhooks"])
Parser = Callable[..., ParseResult]


class WebhookAccepted(BaseModel):
    accepted: int
    duplicates: int
    ignored: list[str]


def _secret(value: SecretStr | None, adapter: str) -> str:
    if value is None:
        raise Problem(404, "Not Found", f"the {adapter} adapter is not configured")
    return value.get_secret_value()


def _json(body: bytes, adapter: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        raise Problem(400, "Bad Request", "the body is not valid JSON") from None


def _parse(
    parser: Parser,
    payload: Any,
    brands: Mapping[str, str],
    adapter: str,
    received_at: datetime | None = None,
) -> ParseResult:
    try:
        return parser(payload, brands=brands, received_at=received_at)
    except PayloadError as exc:
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        field = exc.field or "body"
        raise Problem(
            422, "Unprocessable Content", str(exc), errors=[{"field": field, "message": str(exc)}]
        ) from None


async def _accept(
    parsed: ParseResult, adapter: str, acceptor: Acceptor, trace: Trace
) -> WebhookAccepted:
    result = await accept_or_503(acceptor, parsed, trace, adapter)
    return WebhookAccepted(
        accepted=len(result.accepted), duplicates=len(result.duplicates), ignored=result.ignored
    )


def _verified(adapter: str, valid: bool) -> None:
    if not valid:
        MENTIONS_REJECTED.labels(adapter, "signature").inc()
        raise Problem(401, "Unauthorized", "the signature does not match the body")


# -- X (Account Activity API) ---------------------------------------------------------------
@router.get("/x", summary="X CRC challenge")
async def x_crc(
    settings: Settings, crc_token: Annotated[str, Query(min_length=1)]
) -> dict[str, str]:
    secret = _secret(settings.x_consumer_secret, "x")
    return {"response_token": x.crc_response_token(crc_token, secret)}


@router.post(
    "/x",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    summary="X Account Activity events (signed)",
)
async def x_events(
    request: Request,
    settings: Settings,
    acceptor: Acceptor,
    trace: Trace,
) -> WebhookAccepted:
    secret = _secret(settings.x_consumer_secret, "x")
    body = await request.body()
    _verified("x", x.verify_x_signature(body, request.headers.get(x.SIGNATURE_HEADER), secret))
    parsed = _parse(x.parse, _json(body, "x"), settings.brand_accounts.get("x", {}), "x")
    return await _accept(parsed, "x", acceptor, trace)


# -- Meta (Facebook Pages, Instagram) --------------------------------------------------------
@router.get("/meta", response_class=PlainTextResponse, summary="Meta verification handshake")
async def meta_verify(request: Request, settings: Settings) -> str:
    token = _secret(settings.meta_verify_token, "meta")
    challenge = meta.verification_challenge(dict(request.query_params), token)
    if challenge is None:
        raise Problem(403, "Forbidden", "hub.mode or hub.verify_token does not match")
    return challenge


@router.post(
    "/meta",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    summary="Facebook Page and Instagram events (signed)",
)
async def meta_events(
    request: Request,
    settings: Settings,
    acceptor: Acceptor,
    trace: Trace,
) -> WebhookAccepted:
    secret = _secret(settings.meta_app_secret, "meta")
    body = await request.body()
    _verified(
        "meta", meta.verify_meta_signature(body, request.headers.get(meta.SIGNATURE_HEADER), secret)
    )
    parsed = _parse(
        meta.parse, _json(body, "meta"), settings.brand_accounts.get("meta", {}), "meta"
    )
    return await _accept(parsed, "meta", acceptor, trace)


# -- Platforms delivered by pollers or relays (bearer token) ---------------------------------
def _json_adapter(adapter: str, parser: Parser, summary: str) -> None:
    @router.post(
        f"/{adapter}",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=WebhookAccepted,
        summary=summary,
        dependencies=[Depends(require_api_token)],
        name=f"{adapter}_events",
    )
    async def events(
        request: Request,
        settings: Settings,
        acceptor: Acceptor,
        trace: Trace,
    ) -> WebhookAccepted:
        payload = _json(await request.body(), adapter)
        parsed = _parse(parser, payload, settings.brand_accounts.get(adapter, {}), adapter)
        return await _accept(parsed, adapter, acceptor, trace)


_json_adapter("youtube", youtube.parse, "YouTube Data API comment threads or comments")
_json_adapter("reddit", reddit.parse, "Reddit listings of posts (t3) and comments (t1)")
_json_adapter("google-business", google_business.parse, "Google Business Profile reviews")
_json_adapter("trustpilot", trustpilot.parse, "Trustpilot service reviews")


@router.post(
    "/email",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookAccepted,
    summary="One RFC 5322 message (message/rfc822 body)",
    dependencies=[Depends(require_api_token)],
)
async def email_message(
    request: Request, settings: Settings, acceptor: Acceptor, trace: Trace
) -> WebhookAccepted:
    parsed = _parse(
        email.parse, await request.body(), settings.brand_accounts.get("email", {}), "email"
    )
    return await _accept(parsed, "email", acceptor, trace)
