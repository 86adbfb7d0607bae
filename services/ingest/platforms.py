"""Platform webhook endpoints: each platform's handshake and signature, then its pure parser.

Every endpoint answers 202 only after the parsed mentions are acknowledged by Kafka; a bad
signature is 401 and nothing is published; a payload that is not the platform's format is 400
(not JSON) or 422 (naming the missing or invalid field). Parsing runs in a worker thread, so a
large payload never stalls the event loop that serves every other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, SecretStr, ValidationError

from services.ingest.api import Acceptor, BearerRoute, Settings, Tenant, Trace, accept_or_503
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
from shared.problems import TOO_DEEP_DETAIL, Problem

# X and Meta sign their deliveries; the others come from pollers or relays with the bearer token.
router = APIRouter(prefix="/v1/webhooks", tags=["platform webhooks"])
unsigned_router = APIRouter(
    prefix="/v1/webhooks", tags=["platform webhooks"], route_class=BearerRoute
)
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


def _parse(body: bytes, adapter: str, parser: Parser, raw_body: bool, brands: Any) -> ParseResult:
    """JSON (unless the platform sends raw bytes), then the platform's parser; every way the
    payload can be wrong is a 4xx naming the field."""
    try:
        return parser(body if raw_body else orjson.loads(body), brands=brands)
    except orjson.JSONDecodeError as exc:
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        if "depth limit" in str(exc):  # nested deeper than orjson's 1024 levels
            raise Problem(
                422,
                "Unprocessable Content",
                TOO_DEEP_DETAIL,
                errors=[{"field": "body", "message": TOO_DEEP_DETAIL}],
            ) from None
        raise Problem(400, "Bad Request", "the body is not valid JSON") from None
    except PayloadError as exc:
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        field = exc.field or "body"
        raise Problem(
            422, "Unprocessable Content", str(exc), errors=[{"field": field, "message": str(exc)}]
        ) from None
    except ValidationError as exc:  # a value over a limit of the Mention (shared/events.py)
        MENTIONS_REJECTED.labels(adapter, "invalid").inc()
        errors = [
            {"field": ".".join(str(p) for p in error["loc"]) or "body", "message": error["msg"]}
            for error in exc.errors(include_url=False)
        ]
        fields = ", ".join(sorted({error["field"] for error in errors}))
        raise Problem(
            422, "Unprocessable Content", f"invalid fields: {fields}", errors=errors
        ) from None


async def _receive(
    request: Request,
    settings: IngestSettings,
    acceptor: MentionAcceptor,
    trace: TraceContext,
    *,
    tenant: str,
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
    brands = settings.brand_accounts.get(adapter, {})
    parsed = await asyncio.to_thread(_parse, body, adapter, parser, raw_body, brands)
    result = await accept_or_503(acceptor, parsed, trace, adapter, tenant)
    return WebhookAccepted(
        accepted=len(result.accepted), duplicates=len(result.duplicates), ignored=result.ignored
    )


def _accepting(
    path: str, summary: str, on: APIRouter = router, **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """`@router.post` for an endpoint that answers 202 with the accepted/duplicate counts."""
    return on.post(
        path,
        summary=summary,
        status_code=status.HTTP_202_ACCEPTED,
        response_model=WebhookAccepted,
        **options,
    )


# -- X (Account Activity API) ---------------------------------------------------------------
@router.get("/x", summary="X CRC challenge")
async def x_crc(
    settings: Settings,
    crc_token: Annotated[
        str,
        Query(
            max_length=x.CRC_TOKEN_MAX_CHARS,
            pattern=x.CRC_TOKEN_PATTERN,
            description="URL-safe base64, at most 128 characters: never a JSON body, so the "
            "answer (an HMAC with the same secret as POST signatures) never signs one",
        ),
    ],
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
            # The platform's app secret signs for the deployment's own tenant.
            tenant=settings.tenant,
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


# -- Platforms delivered by pollers or relays (bearer token, checked before the body) ---------
def _unsigned_adapter(adapter: str, parser: Parser, summary: str, raw_body: bool = False) -> None:
    @_accepting(f"/{adapter}", summary, on=unsigned_router, name=f"{adapter}_events")
    async def events(
        request: Request, settings: Settings, acceptor: Acceptor, trace: Trace, tenant: Tenant
    ) -> WebhookAccepted:
        return await _receive(
            request,
            settings,
            acceptor,
            trace,
            tenant=tenant,
            adapter=adapter,
            parser=parser,
            raw_body=raw_body,
        )


_unsigned_adapter("youtube", youtube.parse, "YouTube Data API comment threads or comments")
_unsigned_adapter("reddit", reddit.parse, "Reddit listings of posts (t3) and comments (t1)")
_unsigned_adapter("google-business", google_business.parse, "Google Business Profile reviews")
_unsigned_adapter("trustpilot", trustpilot.parse, "Trustpilot service reviews")
_unsigned_adapter("email", email.parse, "One RFC 5322 message (message/rfc822 body)", True)
