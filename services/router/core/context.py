"""One customer, one case: merging the same complaint made on two channels, linking a public
thread to its private continuation, and seeing when a public conversation should move to a
private one (personal data or account details are needed).

A merge keeps the earliest promise of both cases: for each clock, the running one due first.
The absorbed case closes (`merged`, pointing at the survivor); its conversations and mentions
join the survivor, so a later mention there lands in the survivor too.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from services.router.core.actions import ActionRefused
from services.router.core.effects import (
    Effect,
    EmitCaseEvent,
    JoinConversations,
    SaveCase,
)
from services.router.core.sla import cancel, clock_timers, stop_clock
from shared.events import (
    ActionKind,
    AgentAction,
    Case,
    CaseEvent,
    CaseStatus,
    Classification,
    ClockKind,
    CustomerProfile,
    EventType,
    Mention,
    MentionKind,
    Routing,
    SlaClock,
)

# The case's tag when a public conversation should continue in private; a playbook rule may set
# it too (`then: {tags: [personal-data]}`).
PERSONAL_DATA_TAG = "personal-data"
PRIVATE_THREAD_TAG = "private-thread"
MERGED_TAG = "merged"


def private_key(case: Case, conversation_id: str) -> str:
    """The conversation key of a private thread on the case's platform."""
    return f"{case.channel.value}:{conversation_id}"


def join_cases(case: Case, action: AgentAction, other: Case | None) -> tuple[Case, list[Effect]]:
    """A merge (`other`: the case to absorb) or a link (`other`: the private thread's own case,
    if it has one) on an open, handed-off or answered case."""
    if case.status is CaseStatus.MERGED:
        raise ActionRefused(f"case {case.case_id} is merged into {case.merged_into}", status=409)
    if case.status is CaseStatus.RESOLVED:
        raise ActionRefused(f"case {case.case_id} is resolved: reopen it first", status=409)
    if action.kind is ActionKind.MERGE:
        return merge(case, other, action)
    return link(case, other, action)


def merge(case: Case, other: Case | None, action: AgentAction) -> tuple[Case, list[Effect]]:
    """`case` absorbs `other`: the earliest running clocks of both, the higher priority, every
    mention and conversation; `other` closes as merged into `case`."""
    if other is None:
        raise ActionRefused(f"no case {action.other_case} to merge", status=404)
    if other.case_id == case.case_id:
        raise ActionRefused("a case cannot absorb itself", status=422)
    for found in (case, other):
        if found.status is CaseStatus.MERGED:
            raise ActionRefused(
                f"case {found.case_id} is already merged into {found.merged_into}", status=409
            )
    at = action.at
    clocks = _earliest_clocks(case, other)
    changed = [c for c in clocks if c not in case.clocks]
    # The first answer owed is the one of the clock kept.
    first = next((c for c in changed if c.kind is ClockKind.FIRST_RESPONSE), None)
    owes = any(c.running and c.kind is not ClockKind.RESOLUTION for c in clocks)
    status = CaseStatus.OPEN if owes and case.status is CaseStatus.RESPONDED else case.status
    joined = [case.conversation_key, *case.linked_conversations]
    added = _union([other.conversation_key, *other.linked_conversations])
    added = [key for key in added if key not in joined]
    survivor = case.model_copy(
        update={
            "clocks": clocks,
            "status": status,
            "opened_at": min(case.opened_at, other.opened_at, key=lambda t: t.astimezone(UTC)),
            "first_response_due_at": min(
                case.first_response_due_at,
                other.first_response_due_at,
                key=lambda t: t.astimezone(UTC),
            ),
            "first_response_at": other.first_response_at if first else case.first_response_at,
            "priority": min(case.priority, other.priority, key=lambda p: p.rank),
            "mention_count": case.mention_count + other.mention_count,
            "tags": _union(case.tags, other.tags, [MERGED_TAG]),
            "last_customer_at": _latest(case.last_customer_at, other.last_customer_at),
            "last_brand_at": _latest(case.last_brand_at, other.last_brand_at),
            "assignee": case.assignee or other.assignee,
            "escalation_level": max(case.escalation_level, other.escalation_level),
            "escalated_to": _union(case.escalated_to, other.escalated_to),
            "crisis_id": case.crisis_id or other.crisis_id,
            "linked_conversations": [*case.linked_conversations, *added],
        }
    )
    absorbed = other.model_copy(
        update={
            "status": CaseStatus.MERGED,
            "merged_into": case.case_id,
            "clocks": [stop_clock(c, at) if c.running else c for c in other.clocks],
        }
    )
    cause = str(action.action_id)
    effects: list[Effect] = [
        SaveCase(absorbed),
        EmitCaseEvent(EventType.CASE_MERGED, CaseEvent(case=absorbed, action=action), cause),
        EmitCaseEvent(EventType.CASE_UPDATED, CaseEvent(case=survivor, action=action), cause),
        JoinConversations(case.tenant, case.case_id, tuple(added), absorbed=other.case_id),
        # Cancels first: the applier drops pending timers of a cancelled clock it holds.
        *[cancel(other.case_id, c.kind) for c in other.clocks if c.running],
        *[cancel(case.case_id, c.kind) for c in changed if case.clock(c.kind) is not None],
    ]
    for clock in changed:
        effects += clock_timers(survivor, clock)
    resolution = survivor.clock(ClockKind.RESOLUTION)
    if status is not case.status and resolution is not None and resolution.running:
        # Skipped while the survivor waited on its customer: owed again now.
        effects += clock_timers(survivor, resolution, round=cause)
    return survivor, effects


def _earliest_clocks(case: Case, other: Case) -> list[SlaClock]:
    """Per kind, the running clock due first of both cases (the one started first on a tie); a
    kind neither runs keeps the survivor's clock (or the other's, when the survivor has none)."""
    clocks: list[SlaClock] = []
    for kind in ClockKind:
        mine, theirs = case.clock(kind), other.clock(kind)
        running = [c for c in (mine, theirs) if c is not None and c.running]
        if running:
            # Due at the same moment (both waiting for the same opening): the older promise.
            clocks.append(
                min(running, key=lambda c: (c.due_at.astimezone(UTC), c.started_at.astimezone(UTC)))
            )
        elif (kept := mine or theirs) is not None:
            clocks.append(kept)
    return clocks


def link(case: Case, own: Case | None, action: AgentAction) -> tuple[Case, list[Effect]]:
    """A private thread on the same platform joins the case: a DM arriving there later is one
    more message of this case (no second case, no fresh clock). `own` is the case the thread
    already goes to, if any: then it is a merge, not a link."""
    if not action.conversation_id:
        raise ActionRefused("give the private thread's conversation_id", status=422)
    key = private_key(case, action.conversation_id)
    if key == case.conversation_key or key in case.linked_conversations:
        raise ActionRefused(f"{key} is already part of case {case.case_id}", status=409)
    if own is not None:
        raise ActionRefused(
            f"{key} already goes to case {own.case_id}: merge that case instead", status=409
        )
    linked = case.model_copy(
        update={
            "linked_conversations": [*case.linked_conversations, key],
            "tags": _union(case.tags, [PRIVATE_THREAD_TAG]),
        }
    )
    return linked, [
        EmitCaseEvent(
            EventType.CASE_UPDATED, CaseEvent(case=linked, action=action), str(action.action_id)
        ),
        JoinConversations(case.tenant, case.case_id, (key,)),
    ]


def _union(*lists: list[str]) -> list[str]:
    merged: list[str] = []
    for items in lists:
        merged += [i for i in items if i not in merged]
    return merged


def _latest(*times: datetime | None) -> datetime | None:
    present = [t for t in times if t is not None]
    return max(present, key=lambda t: t.astimezone(UTC)) if present else None


# -- should this continue in private? ---------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]*[a-z]", re.IGNORECASE)
# Nine or more digits, spaces, dots or dashes between them: a phone number, not a date or a sum.
_PHONE = re.compile(r"(?<![\w/])\+?\d(?:[\s.-]?\d){8,}(?![\w/])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}\b")
_REFERENCE = re.compile(
    r"\b(n[uú]mero de (pedido|cliente|cuenta|contrato|reserva|tarjeta|abonado)|"
    r"localizador|mi (dni|nie|iban|contrase[ñn]a)|"
    r"(order|booking|account|customer|card|reference) (number|no\.?|ref\.?|#)|"
    r"my (password|iban|passport|date of birth))\b",
    re.IGNORECASE,
)
# Incident topics of the classifier's reasons ("incident (billing): ...") that cannot be solved
# without the customer's account.
_ACCOUNT_INCIDENTS = ("incident (billing)", "incident (account)")


def personal_data_reason(mention: Mention, classification: Classification) -> str | None:
    """Why a public mention should continue in a private message, or None: the customer shared
    personal data in public, names an order/booking/account reference, or the classifier found
    a billing or account incident (solving it needs their account). DMs are private already."""
    if mention.kind is MentionKind.DM:
        return None
    text = mention.text
    if _EMAIL.search(text):
        return "the customer posted an e-mail address in public"
    if _IBAN.search(text):
        return "the customer posted a bank account number in public"
    if _PHONE.search(text):
        return "the customer posted a phone or account number in public"
    if _REFERENCE.search(text):
        return "the customer refers to an order, booking or account detail"
    found = next(
        (r for r in classification.reasons if r.startswith(_ACCOUNT_INCIDENTS)),
        None,
    )
    if found is not None:
        return f"solving it needs their account ({found.split(':')[0]})"
    return None


# -- the conversation a webhook carries ---------------------------------------------------------

# A webhook carries the latest mentions of its case; the rest is one GET away.
WINDOW_MENTIONS = 20


class ConversationEntry(BaseModel):
    mention: Mention
    classification: Classification | None = None
    routing: Routing | None = Field(default=None, description="How it was routed (None: a reply)")


class ConversationWindow(BaseModel):
    """The case's conversation so far, bounded: the latest mentions, oldest first."""

    mentions: list[ConversationEntry]
    total: int = Field(ge=0, description="Mentions in the case so far (its linked threads too)")
    truncated: bool = Field(description="Older mentions left out: read them at `href`")
    href: str = Field(description="The case in the API, with its whole conversation")


class CaseContext(BaseModel):
    """What every case webhook carries besides the event: the conversation and the customer."""

    conversation: ConversationWindow
    customer: CustomerProfile | None = None


# A stored conversation entry: its mention's id, and the entry ({"mention", "classification",
# "routing"}) as the webhook writes it. Entries are copied as stored (they were written from
# the models), never decoded and validated again for every event.
StoredEntry = tuple[uuid.UUID, Any]


def window(
    case_id: uuid.UUID,
    latest: list[StoredEntry],
    total: int,
    upto: uuid.UUID | None = None,
) -> dict[str, Any]:
    """The conversation as of the event (a ConversationWindow as JSON): `latest` (oldest
    first) cut after the event's mention when it is there (later mentions of the same batch
    are not part of it yet)."""
    position = next((i for i, (mention_id, _) in enumerate(latest) if mention_id == upto), None)
    if position is not None:
        total -= len(latest) - position - 1
        latest = latest[: position + 1]
    kept = [entry for _, entry in latest[-WINDOW_MENTIONS:]]
    return {
        "mentions": kept,
        "total": total,
        "truncated": total > len(kept),
        "href": f"/v1/cases/{case_id}",
    }
