"""`scs ingest replay`: bulk import of NDJSON or CSV exports through the ingest API.

Going through `POST /v1/mentions` (not straight to Kafka) gives imports the same validation,
dedupe and durability as live webhooks: re-running an import counts its rows as duplicates.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from shared.events import utcnow

AUTHOR_COLUMNS = ("handle", "display_name", "followers", "verified", "language", "location")


def read_rows(path: Path) -> Iterator[dict[str, Any] | str]:
    """Rows as dicts; a line that cannot be parsed is yielded as its error message."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield _from_csv(row)
        return
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                document = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield f"line {number}: not JSON ({exc})"
                continue
            yield document if isinstance(document, dict) else f"line {number}: not an object"


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    """Flat CSV columns (`author_handle`, ...) to the generic mention's nesting."""
    document: dict[str, Any] = {k: v for k, v in row.items() if v not in ("", None)}
    author = {
        field: document.pop(f"author_{field}")
        for field in AUTHOR_COLUMNS
        if f"author_{field}" in document
    }
    if author:
        document["author"] = author
    return document


def rebase_times(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Shift every created_at so the newest row is `now`, keeping the gaps between rows."""
    times = [datetime.fromisoformat(r["created_at"]) for r in rows if "created_at" in r]
    if not times:
        return rows
    shift: timedelta = now - max(times)
    return [
        {**r, "created_at": (datetime.fromisoformat(r["created_at"]) + shift).isoformat()}
        if "created_at" in r
        else r
        for r in rows
    ]


async def replay(
    path: Path,
    *,
    url: str,
    token: str | None = None,
    rate_per_second: float | None,
    concurrency: int,
    rebase: bool,
    progress: Any | None = None,
) -> Counter[str]:
    parsed = list(read_rows(path))
    rows = [r for r in parsed if isinstance(r, dict)]
    counts: Counter[str] = Counter(rejected=len(parsed) - len(rows))
    if rebase:
        rows = rebase_times(rows, utcnow())
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for row in rows:
        queue.put_nowait(row)
    interval = 1.0 / rate_per_second if rate_per_second else 0.0
    next_slot = time.monotonic()
    slot_lock = asyncio.Lock()

    async def wait_for_slot() -> None:
        nonlocal next_slot
        if not interval:
            return
        async with slot_lock:
            delay = next_slot - time.monotonic()
            next_slot = max(next_slot, time.monotonic()) + interval
        if delay > 0:
            await asyncio.sleep(delay)

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:

        async def worker() -> None:
            while not queue.empty():
                row = queue.get_nowait()
                await wait_for_slot()
                counts[await _post(client, row)] += 1
                if progress is not None:
                    progress()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


async def _post(client: httpx.AsyncClient, row: dict[str, Any]) -> str:
    """Post one row, retrying 503s (broker down, queue full) with the server's Retry-After.

    A 401 is the import's fault, not the row's: it counts as failed (the command exits 1),
    never as a rejected row.
    """
    for _ in range(20):
        try:
            response = await client.post("/v1/mentions", json=row)
        except httpx.TransportError:
            await asyncio.sleep(1)
            continue
        if response.status_code == 202:
            return "accepted"
        if response.status_code == 200:
            return "duplicate"
        if response.status_code == 503:
            retry_after = response.headers.get("retry-after", "")
            await asyncio.sleep(float(retry_after) if retry_after.isdigit() else 1.0)
            continue
        if response.status_code == 401:
            return "failed"
        return "rejected"
    return "failed"
