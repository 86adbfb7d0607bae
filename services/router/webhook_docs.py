"""The webhooks the router sends, for the OpenAPI document's `webhooks` section: one entry per
event type with its payload, so a desktop's developers read them beside the API. A case event's
payload also carries its context: the conversation so far (bounded) and the customer."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from pydantic import AwareDatetime, BaseModel, Field, create_model

from services.router.core.context import CaseContext
from shared.events import CASE_EVENT_TYPES, CRISIS_EVENT_TYPES, CaseEvent, CrisisEvent, EventType

WHAT = {
    EventType.CASE_CREATED: "A customer mention opened a case (routing and deadline included)",
    EventType.CASE_UPDATED: "The customer wrote again, or an agent assigned, noted, re-prioritised",
    EventType.CASE_RESPONDED: "The brand's reply stopped a response clock",
    EventType.CASE_ESCALATED: "A ladder step, a rule or an agent escalated the case",
    EventType.CASE_RESOLVED: "Resolved by an agent or after the playbook's inactivity period",
    EventType.CASE_REOPENED: "The customer wrote within the reopen window, or an agent reopened",
    EventType.CASE_HANDOFF: "Handed off to another channel or team, with the context package",
    EventType.CASE_MERGED: "Absorbed by another case of the same customer (`case.merged_into`)",
    EventType.SLA_WARNING: "A clock passed its warning threshold (once per clock)",
    EventType.SLA_BREACHED: "A clock passed its deadline (once per clock)",
    EventType.CRISIS_OPENED: "A burst of related high-risk mentions became a crisis",
    EventType.CRISIS_CLOSED: "The crisis's topic went quiet",
}


class Delivered(BaseModel):
    event_id: uuid.UUID
    trace_id: str = Field(description="W3C trace id, to follow the mention through the logs")


def _body(event_type: EventType, payload: type[BaseModel]) -> type[BaseModel]:
    bases = (payload, CaseContext, Delivered) if payload is CaseEvent else (payload, Delivered)
    data = create_model(f"{payload.__name__}Data", __base__=bases)
    return create_model(
        "Webhook_" + event_type.value.replace(".", "_"),
        type=(str, Field(description=f"`{event_type.value}`")),
        timestamp=(AwareDatetime, ...),
        data=(data, ...),
    )


webhooks = APIRouter()


def _document(event_type: EventType, payload: type[BaseModel]) -> None:
    body_model: Any = _body(event_type, payload)

    async def receive(body: Any) -> Response:
        return Response(status_code=204)

    # The payload model is made at run time: set it where FastAPI reads the body's type.
    receive.__annotations__ = {"body": body_model, "return": Response}

    webhooks.post(
        event_type.value,
        summary=WHAT[event_type],
        description="Signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
        "`webhook-signature`); answer 2xx. See docs/webhooks.md.",
        status_code=204,
    )(receive)


for _type in sorted(CASE_EVENT_TYPES):
    _document(_type, CaseEvent)
for _type in sorted(CRISIS_EVENT_TYPES):
    _document(_type, CrisisEvent)
