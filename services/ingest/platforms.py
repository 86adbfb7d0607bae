"""Platform webhook endpoints: each platform's handshake and signature, then its pure parser.

Every endpoint answers 202 only after the parsed mentions are acknowledged by Kafka; a bad
signature is 401 and nothing is published; a payload that is not the platform's format is 400
(not JSON) or 422 (naming the missing field).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, SecretStr

from services.ingest.api import Acceptor, Settings, Trace, accept_or_503, require_api_token
from services.ingest.config import IngestSettings
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
from services.ingest.handlers import MentionAcceptor
from services.ingest.metrics import MENTIONS_REJECTED
from shared.events import TraceContext
from shared.problems import Problem

router = APIRouter(prefix="/v1/webhooks", tags=["platform webhooks"])
Parser = Callable[..., ParseResult]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


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


async def _receive(
    request: Request,
    settings: IngestSettings,
    acceptor: MentionAcceptor,
    trace: TraceContext,
    *,
    adapter: str,
    parser: Parser,
    signature_valid: Callable[[bytes], bool] | None = None,
    raw_body: bool = False,
) -> WebhookAccepted:
    """Check the signature on the raw bytes, parse with the platform's normalizer, accept."""
    body = await request.body()
    if signature_valid is not None and not signature_valid(body):
        MENTIONS_REJECTED.labels(adapter, "signature").inc()
        raise Problem(401, "Unauthorized", "the signature does not match the body")
    payload = body if raw_body else _json(body, adapter)
    try:
        parsed = parser(payload, brands=settings.brand_accounts.get(adapter, {}))
    except PayloadError as exc:
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        field = exc.field or "body"
        raise Problem(
            422, "Unprocessable Content", str(exc), errors=[{"field": field, "message": str(exc)}]
        ) from None
    result = await accept_or_503(acceptor, parsed, trace, adapter)
    return WebhookAccepted(
        accepted=len(result.accepted), duplicates=len(result.duplicates), ignored=result.ignored
    )


def _accepting(path: str, summary: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """`@router.post` for an endpoint that answers 202 with the accepted/duplicate counts."""
    return router.post(
        path,
        summary=summary,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=WebhookAccepted,
        **options,
    )


# -- X (Account Activity API) ---------------------------------------------------------------
@router.get("/x", summary="X CRC challenge")
async def x_crc(
    settings: Settings, crc_token: Annotated[str, Query(min_length=1)]
) -> dict[str, str]:
    secret = _secret(settings.x_consumer_secret, "x")
    return {"response_token": x.crc_response_token(crc_token, secret)}


# -- Meta (Facebook Pages, Instagram) --------------------------------------------------------
@router.get("/meta", response_class=PlainTextResponse, summary="Meta verification handshake")
async def meta_verify(request: Request, settings: Settings) -> str:
    token = _secret(settings.meta_verify_token, "meta")
    challenge = meta.verification_challenge(dict(request.query_params), token)
    if challenge is None:
        raise Problem(403, "Forbidden", "hub.mode or hub.verify_token does not match")
    return challenge


# -- Signed platform events --------------------------------------------------------------
SignatureCheck = Callable[[bytes, str | None, str], bool]


def _signed_adapter(
    adapter: str,
    parser: Parser,
    summary: str,
    secret_of: Callable[[IngestSettings], SecretStr | None],
    header: str,
    verify: SignatureCheck,
) -> None:
    @_accepting(f"/{adapter}", summary, name=f"{adapter}_events")
    async def events(
        request: Request, settings: Settings, acceptor: Acceptor, trace: Trace
    ) -> WebhookAccepted:
        secret = _secret(secret_of(settings), adapter)
        signature = request.headers.get(header)
        return await _receive(
            request,
            settings,
            acceptor,
            trace,
            adapter=adapter,
            parser=parser,
            signature_valid=lambda body: verify(body, signature, secret),
        )


_signed_adapter(
    "x",
    x.parse,
    "X Account Activity events (signed)",
    lambda s: s.x_consumer_secret,
    x.SIGNATURE_HEADER,
    x.verify_x_signature,
)
_signed_adapter(
    "meta",
    meta.parse,
    "Facebook Page and Instagram events (signed)",
    lambda s: s.meta_app_secret,
    meta.SIGNATURE_HEADER,
    meta.verify_meta_signature,
)


# -- Platforms delivered by pollers or relays (bearer token when configured) ------------------
def _unsigned_adapter(adapter: str, parser: Parser, summary: str, raw_body: bool = False) -> None:
    @_accepting(
        f"/{adapter}", summary, dependencies=[Depends(require_api_token)], name=f"{adapter}_events"
    )
    async def events(
        request: Request, settings: Settings, acceptor: Acceptor, trace: Trace
    ) -> WebhookAccepted:
        return await _receive(
            request, settings, acceptor, trace, adapter=adapter, parser=parser, raw_body=raw_body
        )


_unsigned_adapter("youtube", youtube.parse, "YouTube Data API comment threads or comments")
_unsigned_adapter("reddit", reddit.parse, "Reddit listings of posts (t3) and comments (t1)")
_unsigned_adapter("google-business", google_business.parse, "Google Business Profile reviews")
_unsigned_adapter("trustpilot", trustpilot.parse, "Trustpilot service reviews")
_unsigned_adapter("email", email.parse, "One RFC 5322 message (message/rfc822 body)", True)
