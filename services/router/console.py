"""The reference agent desktop: a page and a script served by the router that use only the
public case API, plus a server-sent stream of case changes for live queues.

The page holds no secret: it asks for an API key and keeps it in sessionStorage. EventSource
cannot send an Authorization header and a key in a URL ends up in logs and history, so the
stream is an ordinary bearer-authenticated GET that the script reads with fetch().

Live changes are polled from the cases table by `updated_at` rather than taken from Kafka: a
desktop that reconnects with `since` gets every change it missed, with no consumer group per
browser. A case row's `updated_at` is its transaction's start time, so each poll looks back
`STREAM_OVERLAP` and skips what it already sent.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from services.router import repository
from services.router.access import CanRead
from services.router.api import CaseSummary, QueueFilter, SlaState
from services.router.api import router as case_api
from shared.db import Database
from shared.events import CaseStatus, Priority, utcnow
from shared.service import service_part

STATIC = Path(__file__).resolve().parent / "static"
# Same-origin only, no inline script or style: text a customer wrote cannot run, even if a
# rendering bug let markup through.
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# Read once: the files ship with the package and do not change while it runs.
ASSETS = {
    name: ((STATIC / name).read_bytes(), media_type)
    for name, media_type in (
        ("console.html", "text/html"),
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
    )
}

STREAM_POLL_SECONDS = 1.0
STREAM_OVERLAP = timedelta(seconds=10)
STREAM_BATCH = 200
# A poll reads at most this many pages (a replay burst fits); more end in a `resync` event.
STREAM_PAGES = 5
STREAM_HEARTBEAT_SECONDS = 15.0
# A stream ends after this long and the script reconnects with `since`: no connection (and
# its per-second query) outlives a closed tab by long, whatever the proxies in between do.
STREAM_LIFETIME_SECONDS = 300.0

pages = APIRouter(include_in_schema=False)
# The same bearer check, before anything is read, as every other /v1 route.
stream = APIRouter(prefix="/v1", tags=["router"], route_class=case_api.route_class)

DB = Annotated[Database, Depends(service_part("database", Database))]


@pages.get("/console")
async def console_page() -> Response:
    return await console_asset("console.html")


@pages.get("/console/{asset}")
async def console_asset(asset: str) -> Response:
    if asset not in ASSETS:
        return Response(status_code=404)
    content, media_type = ASSETS[asset]
    return Response(content, media_type=media_type, headers=CONSOLE_HEADERS)


def sse(event: str, data: str) -> bytes:
    """One server-sent event; `data` is JSON, which has no raw newline to split it."""
    return f"event: {event}\ndata: {data}\n\n".encode()


async def _changed_since(
    db: Database, tenant: str, where: repository.CaseFilter
) -> list[repository.CaseListing] | None:
    """Every case changed since `where.updated_since`, newest first, page by page; None when
    there are more than STREAM_PAGES pages of them."""
    found: list[repository.CaseListing] = []
    after: tuple[datetime, uuid.UUID] | None = None
    async with db.begin() as conn:
        for _ in range(STREAM_PAGES):
            page = await repository.list_cases(conn, tenant, where, after=after, limit=STREAM_BATCH)
            found += page
            if len(page) < STREAM_BATCH:
                return found
            after = (page[-1].updated_at, page[-1].case.case_id)
    return None


async def case_changes(
    db: Database,
    tenant: str,
    where: repository.CaseFilter,
    since: datetime,
    *,
    lifetime: float,
    disconnected: Callable[[], Awaitable[bool]],
) -> AsyncIterator[bytes]:
    """`case` events (a CaseSummary each, oldest change first) until the lifetime ends.

    More changes at once than STREAM_PAGES pages end in a `resync` event: the client reloads
    its lists rather than miss some.
    """
    yield b"retry: 2000\n\n"
    sent: dict[uuid.UUID, datetime] = {}
    watermark = since
    deadline = time.monotonic() + lifetime
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and not await disconnected():
        found = await _changed_since(
            db, tenant, replace(where, updated_since=watermark - STREAM_OVERLAP)
        )
        if found is None:
            yield sse("resync", '{"reason": "more changes at once than the stream sends"}')
            return
        fresh = [f for f in reversed(found) if sent.get(f.case.case_id) != f.updated_at]
        for listing in fresh:
            summary = CaseSummary(
                case=listing.case, sla_state=listing.sla_state, updated_at=listing.updated_at
            )
            yield sse("case", summary.model_dump_json())
            sent[listing.case.case_id] = listing.updated_at
            watermark = max(watermark, listing.updated_at)
        if fresh:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= STREAM_HEARTBEAT_SECONDS:
            yield b": still here\n\n"
            quiet_since = time.monotonic()
        horizon = watermark - STREAM_OVERLAP
        sent = {case_id: at for case_id, at in sent.items() if at >= horizon}
        await asyncio.sleep(STREAM_POLL_SECONDS)


@stream.get(
    "/cases/stream",
    response_class=StreamingResponse,
    summary="Server-sent events: every change to the tenant's cases, as it happens",
    description="Each `case` event carries a CaseSummary (JSON). Pass `since` (the newest "
    "`updated_at` you hold) when reconnecting to get what changed meanwhile. The stream ends "
    f"after {STREAM_LIFETIME_SECONDS:.0f} s; reconnect with `since`. A `resync` event means "
    "more changed at once than the stream sends: reload the list.",
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream"}},
)
async def stream_cases(
    request: Request,
    caller: CanRead,
    db: DB,
    queue: QueueFilter = None,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    sla_state: Annotated[SlaState | None, Query()] = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
) -> StreamingResponse:
    where = repository.CaseFilter(
        queue=queue,
        status=case_status.value if case_status else None,
        priority=priority.value if priority else None,
        sla_state=sla_state,
        queues=caller.queues,
    )
    changes = case_changes(
        db,
        caller.tenant,
        where,
        since or utcnow(),
        lifetime=STREAM_LIFETIME_SECONDS,
        disconnected=request.is_disconnected,
    )
    return StreamingResponse(
        changes,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
