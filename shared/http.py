"""HTTP edge helpers shared by the services' api modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.events import TraceContext
from shared.metrics import HTTP_PROBLEMS


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
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
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


class _TooLarge(Exception):
    pass
