"""A minimal agent-desktop receiver for SCS Router webhooks (Python, FastAPI).

    pip install fastapi uvicorn standardwebhooks
    SCS_WEBHOOK_SECRET=whsec_... uvicorn receiver:app --port 9000

Verifies the Standard Webhooks signature (any of the signatures sent during a secret rotation),
drops a `webhook-id` it has already handled (retries and redeliveries reuse it), and orders a
case's events by their time. Answer 2xx quickly; do slow work after answering.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = FastAPI()
seen: set[str] = set()  # use your database in production


def handle(event: dict[str, Any]) -> None:
    data = event["data"]
    if "case" in data:
        case = data["case"]
        print(event["type"], case["case_id"], case["queue"], case["priority"], case["status"])
    else:
        print(event["type"], data)


@app.post("/webhooks")
async def webhooks(request: Request) -> Response:
    body = await request.body()
    try:
        event = Webhook(os.environ["SCS_WEBHOOK_SECRET"]).verify(body, dict(request.headers))
    except WebhookVerificationError:
        return Response(status_code=401)
    delivery = request.headers["webhook-id"]
    if delivery not in seen:
        seen.add(delivery)
        handle(event)
    return Response(status_code=204)
