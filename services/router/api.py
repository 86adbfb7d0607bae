"""Router HTTP edge: cases (read and act), the webhook endpoint registry and operational stats,
each behind an API key of the scope it declares (services.router.access).

The key is checked before a body is read (`KeyedRoute`), and tenant and queues come from the
key, never from the settings. /v1/stats needs a key too: case volumes per priority are business
figures, not health data. Actions on cases and every change to webhook endpoints are audited.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from cryptography.fernet import MultiFernet
from fastapi import APIRouter, Depends, Header, Query, Response, status
from fastapi import Path as FastApiPath
from pydantic import (
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router import context_store, repository
from services.router.access import CanAct, CanAdmin, CanRead, KeyedRoute, audited
from services.router.config import RouterSettings
from services.router.core import ActionRefused
from services.router.core.agents import Agent, AgentProfile, Presence
from services.router.core.context import personal_data_reason
from services.router.core.customers import relate
from services.router.core.playbook import Name, Playbook
from services.router.core.templates import Suggestion, suggestions
from services.router.egress import RefusedDestination, vetted_addresses
from services.router.handlers import CaseRouter
from services.router.webhooks import new_secret
from shared.db import Database
from shared.events import (
    MAX_TEXT_CHARS,
    ActionKind,
    AgentAction,
    Case,
    CaseStatus,
    Channel,
    Classification,
    CustomerProfile,
    Identifier,
    Intent,
    LanguageTag,
    Mention,
    Priority,
    Relationship,
    Routing,
    utcnow,
)
from shared.problems import Problem
from shared.service import service_part
from shared.topics import CASES, CRISES

router = APIRouter(prefix="/v1", tags=["router"], route_class=KeyedRoute)
WEBHOOK_EVENT_TYPES = sorted(t.value for t in CASES.event_types | CRISES.event_types)


Settings = Annotated[RouterSettings, Depends(service_part("settings", RouterSettings))]
DB = Annotated[Database, Depends(service_part("database", Database))]
Router = Annotated[CaseRouter, Depends(service_part("case_router", CaseRouter))]
# A queue as the playbook names them: anything else matches no case (and NUL no column).
QueueFilter = Annotated[Name | None, Query()]
Cipher = Annotated[MultiFernet, Depends(service_part("secrets_cipher", MultiFernet))]


def _refused_url(message: str) -> Problem:
    return Problem(
        422,
        "Unprocessable Content",
        f"webhook URL refused: {message}",
        errors=[{"field": "url", "message": message}],
    )


async def vet_webhook_url(url: AnyHttpUrl, settings: RouterSettings) -> None:
    """Refuse URLs that would make the router reach what it must not (SSRF), naming why.

    The host is resolved here and again at every connection (services.router.egress).
    """
    if url.scheme != "https" and not settings.webhook_allow_insecure_urls:
        raise _refused_url("must use https")
    if url.username or url.password:
        raise _refused_url("must not carry credentials (user:password@)")
    host = (url.host or "").strip("[]")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        await vetted_addresses(host, port, settings.webhook_allowed_networks)
    except RefusedDestination as exc:
        raise _refused_url(str(exc)) from None


class WebhookEndpointIn(BaseModel):
    url: AnyHttpUrl
    events: list[str] = Field(min_length=1, description=f"Any of {WEBHOOK_EVENT_TYPES}")
    queues: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=100, description="Only cases of these queues (default: all)"
    )
    priorities: list[Priority] | None = Field(
        default=None, description="Only cases of these priorities (default: all)"
    )

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str]) -> list[str]:
        unknown = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {WEBHOOK_EVENT_TYPES}")
        return sorted(set(events))


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    queues: list[str] | None = None
    priorities: list[Priority] | None = None
    enabled: bool = Field(description="Disabled endpoints get no new deliveries nor attempts")
    consecutive_failures: int = 0
    paused_until: AwareDatetime | None = Field(
        default=None, description="Circuit open: no attempt before this time"
    )

    @classmethod
    def from_row(cls, row: repository.Endpoint) -> WebhookEndpointOut:
        return cls(
            id=row.endpoint_id,
            url=row.url,
            events=row.event_types,
            queues=row.queues,
            priorities=[Priority(p) for p in row.priorities] if row.priorities else None,
            enabled=row.enabled,
            consecutive_failures=row.consecutive_failures,
            paused_until=row.paused_until,
        )


class WebhookEndpointPatch(BaseModel):
    enabled: bool


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="Signing secret (whsec_...): shown once, keep it safe")


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointCreated,
    summary="Register an agent-desktop endpoint for case webhooks",
)
async def create_webhook_endpoint(
    body: WebhookEndpointIn, caller: CanAdmin, settings: Settings, db: DB, cipher: Cipher
) -> WebhookEndpointCreated:
    await vet_webhook_url(body.url, settings)
    created = WebhookEndpointCreated(
        id=uuid.uuid4(),
        url=str(body.url),
        events=body.events,
        queues=sorted(set(body.queues)) if body.queues is not None else None,
        priorities=sorted(set(body.priorities)) if body.priorities is not None else None,
        enabled=True,
        secret=new_secret(),
    )
    async with db.begin() as conn:
        await repository.add_endpoint(
            conn,
            {
                "endpoint_id": created.id,
                "tenant": caller.tenant,
                "url": created.url,
                "event_types": created.events,
                "queues": created.queues,
                "priorities": [p.value for p in created.priorities] if created.priorities else None,
                "secret_ciphertext": cipher.encrypt(created.secret.encode()).decode(),
            },
        )
        await audited(
            conn,
            caller,
            "webhook_endpoint.create",
            created.id,
            201,
            detail={"url": created.url, "events": created.events},
        )
    return created


@router.get(
    "/webhook-endpoints",
    response_model=list[WebhookEndpointOut],
    summary="List the registered webhook endpoints (without secrets)",
)
async def list_webhook_endpoints(caller: CanAdmin, db: DB) -> list[WebhookEndpointOut]:
    async with db.begin() as conn:
        rows = await repository.endpoints_for(conn, caller.tenant)
    return [WebhookEndpointOut.from_row(row) for row in rows]


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointOut,
    summary="Disable or re-enable an endpoint (disabled: nothing new enqueued, nothing attempted)",
)
async def update_webhook_endpoint(
    endpoint_id: uuid.UUID, body: WebhookEndpointPatch, caller: CanAdmin, db: DB
) -> WebhookEndpointOut:
    async with db.begin() as conn:
        row = await repository.set_endpoint_enabled(conn, caller.tenant, endpoint_id, body.enabled)
        await audited(
            conn,
            caller,
            "webhook_endpoint.update",
            endpoint_id,
            404 if row is None else 200,
            detail={"enabled": body.enabled},
        )
    if row is None:
        raise Problem(404, "Not Found", f"no webhook endpoint {endpoint_id}")
    return WebhookEndpointOut.from_row(row)


class AttemptOut(BaseModel):
    attempted_at: AwareDatetime
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None = Field(description="The first bytes the receiver answered")


class DeliveryOut(BaseModel):
    delivery_id: uuid.UUID = Field(description="Also the `webhook-id` header, on every attempt")
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[AttemptOut]
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime
    delivered_at: AwareDatetime | None


class Redelivered(BaseModel):
    redelivered: int = Field(description="Deliveries queued again, each with its webhook-id")


class SecretRotation(BaseModel):
    overlap_hours: float = Field(
        default=24, ge=0, le=24 * 7, description="How long the old secret keeps signing too"
    )


class RotatedSecret(BaseModel):
    secret: str = Field(description="The new signing secret: shown once")
    previous_valid_until: AwareDatetime


async def _own_endpoint(db: Database, tenant: str, endpoint_id: uuid.UUID) -> None:
    async with db.begin() as conn:
        if not await repository.endpoint_exists(conn, tenant, endpoint_id):
            raise Problem(404, "Not Found", f"no webhook endpoint {endpoint_id}")


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="The endpoint's latest deliveries, each with every attempt",
)
async def list_deliveries(
    endpoint_id: uuid.UUID,
    caller: CanAdmin,
    db: DB,
    delivery_status: Annotated[
        Literal["pending", "delivered", "failed"] | None, Query(alias="status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    await _own_endpoint(db, caller.tenant, endpoint_id)
    async with db.begin() as conn:
        found = await repository.deliveries_of(conn, endpoint_id, delivery_status, limit)
    return [
        DeliveryOut(
            delivery_id=d.delivery_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=[AttemptOut(**vars(a)) for a in attempts],
            created_at=d.created_at,
            next_attempt_at=d.next_attempt_at,
            delivered_at=d.delivered_at,
        )
        for d, attempts in found
    ]


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    response_model=Redelivered,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver one webhook again, with the same webhook-id",
)
async def redeliver_one(delivery_id: uuid.UUID, caller: CanAdmin, db: DB) -> Redelivered:
    async with db.begin() as conn:
        count = await repository.redeliver(conn, caller.tenant, utcnow(), delivery_id=delivery_id)
        await audited(
            conn, caller, "webhook_delivery.redeliver", delivery_id, 202 if count else 404
        )
    if count == 0:
        raise Problem(404, "Not Found", f"no webhook delivery {delivery_id}")
    return Redelivered(redelivered=count)


@router.post(
    "/webhook-endpoints/{endpoint_id}/redeliver",
    response_model=Redelivered,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver again everything made for the endpoint since a time (a replay)",
)
async def redeliver_since(
    endpoint_id: uuid.UUID, since: AwareDatetime, caller: CanAdmin, db: DB
) -> Redelivered:
    await _own_endpoint(db, caller.tenant, endpoint_id)
    async with db.begin() as conn:
        count = await repository.redeliver(
            conn, caller.tenant, utcnow(), endpoint_id=endpoint_id, since=since
        )
        await audited(
            conn,
            caller,
            "webhook_endpoint.replay",
            endpoint_id,
            202,
            detail={"since": since.isoformat(), "redelivered": count},
        )
    return Redelivered(redelivered=count)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=RotatedSecret,
    summary="A new signing secret; the old one signs beside it until the overlap ends",
)
async def rotate_endpoint_secret(
    endpoint_id: uuid.UUID, body: SecretRotation, caller: CanAdmin, db: DB, cipher: Cipher
) -> RotatedSecret:
    secret = new_secret()
    until = utcnow() + timedelta(hours=body.overlap_hours)
    async with db.begin() as conn:
        rotated = await repository.rotate_secret(
            conn, caller.tenant, endpoint_id, cipher.encrypt(secret.encode()).decode(), until
        )
        await audited(
            conn,
            caller,
            "webhook_endpoint.rotate_secret",
            endpoint_id,
            200 if rotated else 404,
            detail={"overlap_hours": body.overlap_hours},
        )
    if not rotated:
        raise Problem(404, "Not Found", f"no webhook endpoint {endpoint_id}")
    return RotatedSecret(secret=secret, previous_valid_until=until)


class TestFired(BaseModel):
    delivery_id: uuid.UUID = Field(description="Its webhook-id; see it in the delivery log")


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    response_model=TestFired,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the endpoint a signed `webhook.test` event (attempted while it is enabled)",
)
async def test_fire(endpoint_id: uuid.UUID, caller: CanAdmin, db: DB) -> TestFired:
    await _own_endpoint(db, caller.tenant, endpoint_id)
    delivery_id, event_id, now = uuid.uuid4(), uuid.uuid4(), utcnow()
    body = orjson.dumps(
        {
            "type": "webhook.test",
            "timestamp": now.isoformat(),
            "data": {"endpoint_id": str(endpoint_id), "event_id": str(event_id)},
        }
    )
    async with db.begin() as conn:
        await repository.enqueue_deliveries(
            conn,
            [
                {
                    "delivery_id": delivery_id,
                    "endpoint_id": endpoint_id,
                    "event_id": event_id,
                    "event_type": "webhook.test",
                    "body": body,
                    "status": "pending",
                    "next_attempt_at": now,
                }
            ],
        )
        await audited(conn, caller, "webhook_endpoint.test", endpoint_id, 202)
    return TestFired(delivery_id=delivery_id)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an endpoint, its deliveries and their log",
)
async def delete_webhook_endpoint(endpoint_id: uuid.UUID, caller: CanAdmin, db: DB) -> None:
    async with db.begin() as conn:
        deleted = await repository.delete_endpoint(conn, caller.tenant, endpoint_id)
        await audited(conn, caller, "webhook_endpoint.delete", endpoint_id, 204 if deleted else 404)
    if not deleted:
        raise Problem(404, "Not Found", f"no webhook endpoint {endpoint_id}")


class RouterStats(BaseModel):
    cases_by_priority: dict[Priority, int]
    webhook_deliveries: dict[str, int]


@router.get("/stats", response_model=RouterStats, summary="Cases per priority, deliveries")
async def stats(caller: CanRead, db: DB) -> RouterStats:
    async with db.begin() as conn:
        cases = await repository.case_counts(conn, caller.tenant, caller.queues)
        deliveries = await repository.delivery_counts(conn, caller.tenant)
    return RouterStats(
        cases_by_priority={p: cases.get(p.value, 0) for p in Priority},
        webhook_deliveries={s: deliveries.get(s, 0) for s in ("pending", "delivered", "failed")},
    )


# -- cases (read) ---------------------------------------------------------------------------

SlaState = Literal["none", "met", "missed", "running", "warning", "breached"]
CONVERSATION_LIMIT = 200
HISTORY_LIMIT = 500


class CaseSummary(BaseModel):
    case: Case
    sla_state: SlaState
    updated_at: AwareDatetime


class CasePage(BaseModel):
    items: list[CaseSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class ConversationEntry(BaseModel):
    mention: Mention
    classification: Classification | None
    routing: Routing | None = Field(description="How the playbook routed it (None: a reply)")


class HistoryEntry(BaseModel):
    event_id: uuid.UUID
    type: str
    occurred_at: AwareDatetime
    detail: dict[str, Any]


class CaseDetail(CaseSummary):
    conversation: list[ConversationEntry] = Field(description="Oldest first")
    conversation_truncated: bool
    history: list[HistoryEntry] = Field(description="The case's events, oldest first")
    customer: CustomerProfile | None = Field(
        default=None, description="The customer across channels (history, mood, reach, VIP)"
    )
    suggestions: list[Suggestion] = Field(
        default_factory=list,
        description="Answers to start from (playbook templates filled with the case's facts) "
        "and, when personal data is needed, the move to a private message",
    )


def encode_cursor(moment: datetime, item_id: uuid.UUID) -> str:
    """A keyset cursor (time, id) of the last item of a page, opaque to clients."""
    raw = orjson.dumps([moment.isoformat(), str(item_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The keyset a cursor stands for; a 422 naming `cursor` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated_at, case_id = orjson.loads(raw)
        moment = datetime.fromisoformat(updated_at)
        if moment.tzinfo is None:
            raise ValueError("naive time")
        return moment, uuid.UUID(case_id)
    except (ValueError, TypeError, binascii.Error):
        raise Problem(
            422,
            "Unprocessable Content",
            "cursor is not one this API gave out",
            errors=[{"field": "cursor", "message": "not a cursor from a previous page"}],
        ) from None


@router.get(
    "/cases",
    response_model=CasePage,
    summary="List cases, most recently changed first (cursor pagination)",
)
async def list_cases(
    caller: CanRead,
    db: DB,
    queue: QueueFilter = None,
    case_status: Annotated[CaseStatus | None, Query(alias="status")] = None,
    priority: Annotated[Priority | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
    language: Annotated[LanguageTag | None, Query()] = None,
    sla_state: Annotated[SlaState | None, Query()] = None,
    updated_since: Annotated[AwareDatetime | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> CasePage:
    where = repository.CaseFilter(
        queue=queue,
        status=case_status.value if case_status else None,
        priority=priority.value if priority else None,
        channel=channel.value if channel else None,
        language=language,
        sla_state=sla_state,
        updated_since=updated_since,
        queues=caller.queues,
    )
    after = decode_cursor(cursor) if cursor else None
    async with db.begin() as conn:
        found = await repository.list_cases(
            conn, caller.tenant, where, after=after, limit=limit + 1
        )
    page = found[:limit]
    return CasePage(
        items=[
            CaseSummary(case=f.case, sla_state=f.sla_state, updated_at=f.updated_at) for f in page
        ],
        next_cursor=(
            encode_cursor(page[-1].updated_at, page[-1].case.case_id)
            if len(found) > limit
            else None
        ),
    )


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="One case with its conversation, classifications, routing traces, clocks, history",
    responses={404: {"description": "No such case for this tenant"}},
)
async def get_case(case_id: uuid.UUID, caller: CanRead, db: DB, case_router: Router) -> CaseDetail:
    async with db.begin() as conn:
        found = await repository.case_by_id(conn, caller.tenant, case_id)
        if found is None or not caller.sees(found.case.queue):
            raise Problem(404, "Not Found", f"no case {case_id}")
        mentions = await repository.mentions_of_case(conn, case_id, CONVERSATION_LIMIT + 1)
        history = await repository.history_of_case(conn, case_id, HISTORY_LIMIT)
        customer = await context_store.profile_of_case(conn, caller.tenant, found.case)
    conversation = [
        ConversationEntry(
            mention=Mention.model_validate(m.mention),
            classification=(
                Classification.model_validate(m.classification) if m.classification else None
            ),
            routing=Routing.model_validate(m.routing) if m.routing else None,
        )
        for m in mentions[:CONVERSATION_LIMIT]
    ]
    return CaseDetail(
        case=found.case,
        sla_state=found.sla_state,
        updated_at=found.updated_at,
        conversation=conversation,
        conversation_truncated=len(mentions) > CONVERSATION_LIMIT,
        history=[HistoryEntry(**vars(h)) for h in history],
        customer=customer,
        suggestions=_suggestions(case_router.playbook, found.case, conversation, customer),
    )


def _suggestions(
    playbook: Playbook,
    case: Case,
    conversation: list[ConversationEntry],
    customer: CustomerProfile | None,
) -> list[Suggestion]:
    """Templates for the case's intents so far; the move to private, with why, if needed."""
    said = [(e.mention, e.classification) for e in conversation if e.classification]
    intents = list(dict.fromkeys(i for _, c in said for i in c.intents))
    reason = next(
        (r for m, c in said if (r := personal_data_reason(m, c)) is not None),
        None,
    )
    return suggestions(
        playbook,
        case,
        intents or [Intent.OTHER],
        utcnow(),
        private_reason=reason,
        display_name=customer.display_name if customer else None,
    )


# -- cases (agent actions) ------------------------------------------------------------------


class CaseActionIn(BaseModel):
    """One action on a case. `actor` names the agent; the audit log keeps it beside the key."""

    model_config = ConfigDict(extra="forbid")

    action: ActionKind
    actor: str = Field(default="admin", min_length=1, max_length=128)
    assignee: str | None = Field(default=None, min_length=1, max_length=128)
    priority: Priority | None = None
    target: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="escalate: an escalation target; handoff: private_message, phone, email, "
        "store, legal, marketing or queue",
    )
    queue: str | None = Field(default=None, min_length=1, max_length=64, description="handoff")
    outcome: Literal["resolved", "returned"] | None = Field(
        default=None, description="handoff_outcome: what the target reports"
    )
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    other: uuid.UUID | None = Field(
        default=None,
        description="merge: the case this one absorbs (the same customer on another channel)",
    )
    conversation_id: Identifier | None = Field(
        default=None,
        description="link: the private thread (DM conversation id) on the case's platform",
    )

    @model_validator(mode="after")
    def _complete(self) -> CaseActionIn:
        needs = {
            ActionKind.NOTE: "text",
            ActionKind.REPLY: "text",
            ActionKind.PRIORITY: "priority",
            ActionKind.ESCALATE: "target",
            ActionKind.HANDOFF: "target",
            ActionKind.HANDOFF_OUTCOME: "outcome",
            ActionKind.MERGE: "other",
            ActionKind.LINK: "conversation_id",
        }.get(self.action)
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"{self.action.value} needs {needs}")
        return self


@router.post(
    "/cases/{case_id}/actions",
    response_model=CaseSummary,
    summary="Act on a case: assign, note, priority, escalate, reply, resolve, reopen, handoff, "
    "merge (absorb `other`), link (a private thread, `conversation_id`)",
    responses={
        404: {"description": "No such case for this tenant"},
        409: {"description": "The action does not apply to the case as it is"},
        422: {"description": "Incomplete action, or a target the playbook does not have"},
    },
)
async def act_on_case(
    case_id: uuid.UUID,
    body: CaseActionIn,
    caller: CanAct,
    db: DB,
    case_router: Router,
    idempotency_key: Annotated[uuid.UUID | None, Header()] = None,
) -> CaseSummary:
    """The action goes through the router's decider, so clocks, events and webhooks follow from
    it. `Idempotency-Key` (a UUID) makes a retried request announce nothing twice. Audited: in
    the action's transaction when it is done, on its own when it is refused."""
    action = AgentAction(
        action_id=idempotency_key or uuid.uuid4(),
        kind=body.action,
        actor=body.actor,
        at=utcnow(),
        assignee=body.assignee,
        priority=body.priority,
        target=body.target,
        text=body.text,
        outcome=body.outcome,
        other_case=body.other,
        conversation_id=body.conversation_id,
    )

    async def record(conn: AsyncConnection, status_code: int = 200) -> None:
        detail = body.model_dump(mode="json", exclude_none=True, exclude={"action", "actor"})
        if "text" in detail:
            detail["text"] = f"{len(body.text or '')} characters"  # the text is in the case
        await audited(
            conn,
            caller,
            f"case.{action.kind.value}",
            case_id,
            status_code,
            actor=body.actor,
            detail=detail | {"action_id": str(action.action_id)},
        )

    try:
        async with db.begin() as conn:
            found = await repository.case_by_id(conn, caller.tenant, case_id)
        if found is None or not caller.sees(found.case.queue):
            raise ActionRefused(f"no case {case_id}", status=404)
        if action.kind is ActionKind.REPLY:
            await case_router.reply(found.case, action, record=record)
        else:
            await case_router.act(
                caller.tenant,
                case_id,
                action,
                handoff_queue=body.queue,
                record=record,
                queues=caller.queues,
            )
    except ActionRefused as refused:
        async with db.begin() as conn:
            await record(conn, refused.status)
        title = {404: "Not Found", 409: "Conflict"}.get(refused.status, "Unprocessable Content")
        raise Problem(refused.status, title, str(refused)) from None
    async with db.begin() as conn:
        after = await repository.case_by_id(conn, caller.tenant, case_id)
    assert after is not None
    return CaseSummary(case=after.case, sla_state=after.sla_state, updated_at=after.updated_at)


# -- agents and assignment ------------------------------------------------------------------

AgentPathId = Annotated[
    str, FastApiPath(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
]


class AgentOut(Agent):
    load: int = Field(description="Open (or responded) cases assigned to the agent")


class PresenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presence: Presence


async def _agent_out(case_router: CaseRouter, tenant: str, agent_id: str) -> AgentOut:
    staff = await case_router.staff(tenant)
    agent = staff.agents.get(agent_id)
    if agent is None:
        raise Problem(404, "Not Found", f"no agent {agent_id}")
    return AgentOut(**agent.model_dump(), load=staff.load(agent_id))


@router.get(
    "/agents",
    response_model=list[AgentOut],
    summary="The agents (the playbook's and the API's; the API's definition wins), with loads",
)
async def list_agents(caller: CanRead, case_router: Router) -> list[AgentOut]:
    staff = await case_router.staff(caller.tenant)
    return [
        AgentOut(**agent.model_dump(), load=staff.load(agent.agent_id))
        for agent in staff.agents.values()
    ]


@router.get(
    "/agents/{agent_id}",
    response_model=AgentOut,
    summary="One agent with its load",
    responses={404: {"description": "No such agent"}},
)
async def get_agent(agent_id: AgentPathId, caller: CanRead, case_router: Router) -> AgentOut:
    return await _agent_out(case_router, caller.tenant, agent_id)


@router.put(
    "/agents/{agent_id}",
    response_model=AgentOut,
    summary="Create or replace an agent (replaces the playbook's agent of the same id)",
    responses={422: {"description": "A queue the playbook does not have"}},
)
async def put_agent(
    agent_id: AgentPathId, body: AgentProfile, caller: CanAdmin, db: DB, case_router: Router
) -> AgentOut:
    unknown = sorted(set(body.queues) - set(case_router.playbook.queues))
    if unknown:
        raise Problem(
            422,
            "Unprocessable Content",
            f"unknown queues {unknown}; the playbook has {sorted(case_router.playbook.queues)}",
            errors=[{"field": "queues", "message": f"unknown queues {unknown}"}],
        )
    async with db.begin() as conn:
        await repository.put_agent(conn, caller.tenant, agent_id, body)
        await audited(conn, caller, "agent.put", None, 200, detail={"agent_id": agent_id})
    return await _agent_out(case_router, caller.tenant, agent_id)


@router.patch(
    "/agents/{agent_id}/presence",
    response_model=AgentOut,
    summary="Set an agent online (takes cases), away (keeps its cases) or offline",
    responses={404: {"description": "No such agent"}},
)
async def set_agent_presence(
    agent_id: AgentPathId, body: PresenceIn, caller: CanAct, db: DB, case_router: Router
) -> AgentOut:
    agent = (await case_router.staff(caller.tenant)).agents.get(agent_id)
    # A key limited to queues sets the presence only of agents who work within them.
    if agent is None or (
        caller.queues is not None and not set(agent.queues or ["*"]) <= caller.queues
    ):
        raise Problem(404, "Not Found", f"no agent {agent_id}")
    async with db.begin() as conn:
        await repository.set_presence(conn, caller.tenant, agent_id, body.presence)
        await audited(conn, caller, "agent.presence", None, 200, detail={"agent_id": agent_id})
    return await _agent_out(case_router, caller.tenant, agent_id)


@router.post(
    "/agents/{agent_id}/next",
    response_model=CaseSummary,
    summary="Claim the open unassigned case closest to breach that the agent may take",
    responses={
        204: {"description": "No case for this agent now"},
        404: {"description": "No such agent"},
        409: {"description": "The agent is not online, or is at capacity"},
    },
)
async def claim_next_case(
    agent_id: AgentPathId, caller: CanAct, db: DB, case_router: Router
) -> CaseSummary | Response:
    """The case is assigned to the agent through the decider (a `case.updated` with the assign
    action). Two agents asking at once never get the same case."""
    try:
        claimed = await case_router.claim_next(caller.tenant, agent_id, caller.queues)
    except ActionRefused as refused:
        title = {404: "Not Found", 409: "Conflict"}.get(refused.status, "Unprocessable Content")
        raise Problem(refused.status, title, str(refused)) from None
    if claimed is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    async with db.begin() as conn:
        after = await repository.case_by_id(conn, caller.tenant, claimed.case_id)
        await audited(conn, caller, "case.next", claimed.case_id, 200, actor=agent_id)
    assert after is not None
    return CaseSummary(case=after.case, sla_state=after.sla_state, updated_at=after.updated_at)


# -- customers ------------------------------------------------------------------------------


class CustomerPatch(BaseModel):
    """What an agent knows better than the router: the relationship (null: back to what the
    router infers) and the VIP flag."""

    model_config = ConfigDict(extra="forbid")

    relationship: Relationship | None = None
    vip: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> CustomerPatch:
        if not self.model_fields_set:
            raise ValueError("give relationship and/or vip")
        if "vip" in self.model_fields_set and self.vip is None:
            raise ValueError("vip is true or false")
        return self


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerProfile,
    summary="A customer across channels: cases, sentiment trend, relationship, reach, VIP",
    responses={404: {"description": "No such customer for this tenant"}},
)
async def get_customer(customer_id: uuid.UUID, caller: CanRead, db: DB) -> CustomerProfile:
    async with db.begin() as conn:
        found = await context_store.profiles(conn, caller.tenant, [customer_id])
    if customer_id not in found:
        raise Problem(404, "Not Found", f"no customer {customer_id}")
    return found[customer_id]


@router.patch(
    "/customers/{customer_id}",
    response_model=CustomerProfile,
    summary="Set a customer's relationship (kept over what the router infers) or VIP flag",
    responses={404: {"description": "No such customer for this tenant"}},
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerPatch,
    caller: CanAct,
    db: DB,
    case_router: Router,
) -> CustomerProfile:
    async with db.begin() as conn:
        found = await context_store.profiles(conn, caller.tenant, [customer_id], lock=True)
        profile = found.get(customer_id)
        if profile is None:
            raise Problem(404, "Not Found", f"no customer {customer_id}")
        if profile.merged_into is not None:
            raise Problem(409, "Conflict", f"customer joined into {profile.merged_into}")
        update: dict[str, object] = {}
        if "relationship" in body.model_fields_set:
            update["relationship"] = body.relationship
            update["relationship_source"] = "agent" if body.relationship else None
        if body.vip is not None:
            update["vip"] = body.vip
        profile = profile.model_copy(update=update)
        if profile.relationship_source is None:
            profile = relate(profile, case_router.playbook)
        await context_store.save_profiles(conn, [profile])
        await audited(
            conn, caller, "customer.update", customer_id, 200, detail=body.model_dump(mode="json")
        )
    return profile
