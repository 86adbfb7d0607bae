"""HTTP edge helpers shared by the services' api modules."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Header, Request, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import TraceContext
from shared.metrics import HTTP_PROBLEMS
from shared.problems import Problem


async def trace_context(
    traceparent: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TraceContext:
    """Continue the caller's W3C trace when it sent one; start a new trace otherwise.

    Dependencies here are `async def` so FastAPI runs them inline instead of in a thread.
    """
    incoming = TraceContext.from_header(traceparent)
    return incoming.child() if traceparent else incoming


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413 before they are buffered, declared or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except TooLarge:
            await self._too_large(scope, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        HTTP_PROBLEMS.labels("413").inc()
        body = (
            b'{"type":"about:blank","title":"Content Too Large","status":413,'
            b'"detail":"request body exceeds ' + str(self.max_bytes).encode() + b' bytes"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class TooLarge(Exception):
    """A body grew past the limit while being read (no or a false Content-Length)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"request body exceeds {max_bytes} bytes")


def bearer_matches(authorization: str | None, accepted: Collection[str]) -> bool:
    """True when `Authorization: Bearer <token>` carries one of the accepted tokens.

    Every candidate is compared in constant time, so timing does not tell which one was close.
    """
    scheme, _, token = (authorization or "").partition(" ")
    presented = token.strip().encode()
    matched = False
    for candidate in accepted:
        matched |= bool(candidate) and hmac.compare_digest(presented, candidate.encode())
    return scheme.lower() == "bearer" and matched


AcceptedTokens = Callable[[Any], Collection[str] | None]


def unauthorized(realm: str) -> Problem:
    """401 naming the bearer realm: no token, or one that opens nothing here."""
    return Problem(
        401,
        "Unauthorized",
        f"a valid bearer token ({realm}) is required",
        headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
    )


def presented_bearer(authorization: str | None) -> str | None:
    """The token of `Authorization: Bearer <token>`, None for any other header or none."""
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def refuse_lone_surrogates(body: bytes) -> None:
    """JSON may escape half of a UTF-16 pair (`"\\ud800"`); Python's parser then yields a
    string that no column, topic or webhook can encode, far from the request that sent it.
    Such a body is a 422 here. Only bodies holding such an escape are parsed twice."""
    if b"\\ud" not in body.lower():
        return
    try:
        orjson.loads(body)  # refuses lone surrogates; valid pairs (emoji) pass
    except orjson.JSONDecodeError as error:
        if "surrogate" in str(error):
            raise Problem(
                422, "Unprocessable Content", "the body holds an unpaired UTF-16 surrogate"
            ) from None


class CheckedRoute(APIRoute):
    """A route whose `check` runs *before* the body is read.

    FastAPI reads and validates a body before it runs dependencies, so a dependency cannot keep
    an anonymous client from making the service parse a large body. Subclasses say what to
    check (a bearer token, an API key and its scope) and raise a Problem to refuse.
    """

    async def check(self, request: Request) -> None:
        raise NotImplementedError

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            await self.check(request)
            try:
                # Read (and cache) the body here: FastAPI would turn the limit's error
                # into a 400 "error parsing the body" when a chunked body runs over.
                body = await request.body()
            except TooLarge as too_large:
                raise Problem(413, "Content Too Large", str(too_large)) from None
            refuse_lone_surrogates(body)
            return await handler(request)

        return checked


def authenticated_route(accepted_tokens: AcceptedTokens, realm: str) -> type[APIRoute]:
    """A route class whose endpoints check the bearer token before the body is read.

    `accepted_tokens` gets the running service and returns the tokens that open these routes,
    or None when they are open on purpose (e.g. `SCS_INGEST_ALLOW_ANONYMOUS=true`).
    """

    class AuthenticatedRoute(CheckedRoute):
        async def check(self, request: Request) -> None:
            accepted = accepted_tokens(request.app.state.service)
            if accepted is not None and not bearer_matches(
                request.headers.get("authorization"), accepted
            ):
                raise unauthorized(realm)

    return AuthenticatedRoute
