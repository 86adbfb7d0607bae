"""The local demo's two helpers: a webhook receiver standing in for an agent desktop, and the
live summary `make run` prints."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def receiver_app(secret_file: Path) -> FastAPI:
    app = FastAPI(title="demo agent desktop")
    received: Counter[str] = Counter()
    secret: list[str] = []  # read on first use: `make run` writes it after the router is up

    @app.post("/webhooks")
    async def webhook(request: Request) -> Response:
        body = await request.body()
        try:
            if not secret:
                secret.append(secret_file.read_text().strip())  # noqa: ASYNC240 (tiny, once)
            event: dict[str, Any] = Webhook(secret[0]).verify(body, dict(request.headers))
        except (WebhookVerificationError, OSError):
            return Response(status_code=401)
        received[event["type"]] += 1
        print(describe(event["type"], event["data"]), flush=True)
        return Response(status_code=204)

    @app.get("/received")
    async def counts() -> dict[str, int]:
        return dict(received)

    return app


def describe(event_type: str, data: dict[str, Any]) -> str:
    """One line per webhook, as an agent desktop's feed would show it."""
    if "crisis" in data:
        crisis = data["crisis"]
        return f"{event_type:<15} {crisis['topic_key']} ({crisis['case_count']} cases)"
    case = data["case"]
    head = f"{event_type:<15} {case['priority']} {case['queue']:<20} {case['channel']:<16}"
    if data.get("mention"):
        return f"{head} {data['mention']['text'][:70]!r}"
    if data.get("sla"):
        clock = data["sla"]["clock"]
        return f"{head} {clock['kind']} due {clock['due_at']}"
    if data.get("escalation"):
        escalation = data["escalation"]
        return f"{head} to {escalation['target']} ({escalation['trigger']})"
    return f"{head} status {case['status']}"


def run_receiver(secret_file: Path, port: int) -> None:
    uvicorn.run(receiver_app(secret_file), host="127.0.0.1", port=port, log_level="warning")


async def print_summary(router_url: str, kpi_url: str, watch_seconds: float) -> None:
    # The router's stats are business figures behind its admin key.
    admin = {"Authorization": f"Bearer {os.environ.get('SCS_ADMIN_API_KEY', '')}"}
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            try:
                stats = (await client.get(f"{router_url}/v1/stats", headers=admin)).json()
                sla = (await client.get(f"{kpi_url}/v1/kpis/sla")).json()
                print(_summary_line(stats, sla), flush=True)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                print(f"summary unavailable: {exc}", flush=True)
            if not watch_seconds:
                return
            await asyncio.sleep(watch_seconds)


def _summary_line(stats: dict[str, Any], sla: dict[str, Any]) -> str:
    cases = stats["cases_by_priority"]
    overall = sla["overall"]
    attainment = overall["sla_attainment"]
    average = overall["average_first_response_seconds"]
    return (
        "cases "
        + " ".join(f"{p}={n}" for p, n in sorted(cases.items()))
        + f" | webhooks delivered={stats['webhook_deliveries']['delivered']}"
        f" pending={stats['webhook_deliveries']['pending']}"
        + f" | first-response SLA {'n/a' if attainment is None else f'{attainment:.0%}'}"
        f" ({overall['responded']} answered, {overall['breached_open']} overdue,"
        f" backlog {overall['backlog']}"
        + ("" if average is None else f", avg {average / 60:.0f} min")
        + ")"
    )
