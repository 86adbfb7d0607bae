"""One customer, one case: merges keep the earliest clock, a linked private thread joins the
case, personal data suggests a private message, templates are filled safely, an automatic
acknowledgement stops no clock, and the webhook carries a bounded conversation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.router.applier import Applier, webhook_body
from services.router.config import RouterSettings
from services.router.core import (
    ActionInput,
    ActionRefused,
    CancelTimers,
    Decision,
    EmitCaseEvent,
    MentionInput,
    RecordMention,
    StartTimer,
    decide,
)
from services.router.core.context import (
    PERSONAL_DATA_TAG,
    WINDOW_MENTIONS,
    CaseContext,
    personal_data_reason,
    window,
)
from services.router.core.effects import JoinConversations, SaveCase, SendReply
from services.router.core.playbook import PlaybookError, parse_playbook
from services.router.core.templates import case_ref, fill, suggestions
from services.router.main import create_app
from services.router.repository import Subscription
from shared.events import (
    ActionKind,
    AgentAction,
    Case,
    CaseEvent,
    CaseStatus,
    Channel,
    ClockKind,
    EventType,
    Intent,
    MentionKind,
    Priority,
    TraceContext,
    new_envelope,
)
from tests.unit.router.builders import SAMPLE, classified, sample_playbook

PLAYBOOK = sample_playbook()
AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Madrid


def opened(
    at: datetime = AT,
    *,
    conversation: str = "public",
    channel: Channel = Channel.X,
    priority: Priority = Priority.P3,
    kind: MentionKind = MentionKind.MENTION,
    text: str = "Llevo tres días sin servicio y nadie me responde",
) -> Case:
    item = classified(
        at,
        priority,
        platform_id=f"{conversation}-1",
        conversation=conversation,
        channel=channel,
        kind=kind,
        text=text,
    )
    case = decide(None, MentionInput(item, "t"), PLAYBOOK, at).case
    assert case is not None
    return case


def action(kind: ActionKind, **fields: object) -> AgentAction:
    return AgentAction(
        action_id=uuid.uuid4(), kind=kind, actor="ana", at=AT + timedelta(minutes=90), **fields
    )


def join(case: Case, other: Case | None, kind: ActionKind, **fields: object) -> Decision:
    given = action(kind, **fields)
    return decide(case, ActionInput(given, other=other), PLAYBOOK, given.at)


def emitted(decision: Decision) -> list[tuple[EventType, uuid.UUID]]:
    return [
        (e.event_type, e.payload.case.case_id)
        for e in decision.effects
        if isinstance(e, EmitCaseEvent)
    ]


# -- merge ------------------------------------------------------------------------------------


def test_a_merge_keeps_the_earliest_clock_and_closes_the_absorbed_case() -> None:
    first = opened(AT, conversation="tweet", channel=Channel.X)
    later = opened(AT + timedelta(hours=1), conversation="post", channel=Channel.INSTAGRAM)
    assert first.first_response_due_at < later.first_response_due_at

    merged = join(later, first, ActionKind.MERGE, other_case=first.case_id)
    survivor = merged.case
    assert survivor is not None and survivor.case_id == later.case_id
    kept = survivor.clock(ClockKind.FIRST_RESPONSE)
    assert kept == first.clock(ClockKind.FIRST_RESPONSE)
    assert survivor.first_response_due_at == first.first_response_due_at
    assert survivor.opened_at == first.opened_at
    assert survivor.mention_count == 2
    assert survivor.linked_conversations == [first.conversation_key]

    absorbed = next(e.case for e in merged.effects if isinstance(e, SaveCase))
    assert absorbed.status is CaseStatus.MERGED and absorbed.merged_into == later.case_id
    assert not any(c.running for c in absorbed.clocks)
    assert emitted(merged) == [
        (EventType.CASE_MERGED, first.case_id),
        (EventType.CASE_UPDATED, later.case_id),
    ]
    (joined,) = [e for e in merged.effects if isinstance(e, JoinConversations)]
    assert joined.conversation_keys == (first.conversation_key,)
    assert joined.absorbed == first.case_id
    # The adopted deadline is armed for the survivor, after its own timers are cancelled.
    cancels = [e for e in merged.effects if isinstance(e, CancelTimers)]
    assert {(c.case_id, c.clock) for c in cancels} >= {
        (first.case_id, ClockKind.FIRST_RESPONSE),
        (later.case_id, ClockKind.FIRST_RESPONSE),
    }
    timers = [e.timer for e in merged.effects if isinstance(e, StartTimer)]
    breach = next(t for t in timers if t.clock is ClockKind.FIRST_RESPONSE and t.case_id)
    assert breach.case_id == later.case_id
    assert merged.effects.index(cancels[-1]) < merged.effects.index(
        next(e for e in merged.effects if isinstance(e, StartTimer))
    )


def test_either_way_round_the_merged_case_has_the_earliest_deadline() -> None:
    first = opened(AT, conversation="tweet")
    later = opened(AT + timedelta(hours=1), conversation="post", channel=Channel.FACEBOOK)
    merged = join(first, later, ActionKind.MERGE, other_case=later.case_id).case
    assert merged is not None
    assert merged.first_response_due_at == first.first_response_due_at
    assert merged.clock(ClockKind.FIRST_RESPONSE) == first.clock(ClockKind.FIRST_RESPONSE)


def test_a_later_mention_on_the_absorbed_conversation_lands_in_the_survivor() -> None:
    first = opened(AT, conversation="tweet")
    later = opened(AT + timedelta(hours=1), conversation="post", channel=Channel.INSTAGRAM)
    survivor = join(later, first, ActionKind.MERGE, other_case=first.case_id).case
    assert survivor is not None
    at = AT + timedelta(hours=2)
    again = classified(at, Priority.P3, platform_id="tweet-2", conversation="tweet")
    decision = decide(survivor, MentionInput(again, "t"), PLAYBOOK, at)
    assert decision.case is not None and decision.case.case_id == survivor.case_id
    assert decision.case.mention_count == survivor.mention_count + 1
    assert [t for t, _ in emitted(decision)] == [EventType.CASE_UPDATED]
    recorded = next(e for e in decision.effects if isinstance(e, RecordMention))
    assert recorded.case_id == survivor.case_id


def test_a_merge_is_refused_clearly() -> None:
    case = opened(conversation="a")
    other = opened(conversation="b")
    cases = [
        (None, 404),
        (case, 422),
        (other.model_copy(update={"status": CaseStatus.MERGED}), 409),
    ]
    for given, status in cases:
        with pytest.raises(ActionRefused) as refused:
            join(case, given, ActionKind.MERGE, other_case=other.case_id)
        assert refused.value.status == status
    resolved = case.model_copy(update={"status": CaseStatus.RESOLVED})
    with pytest.raises(ActionRefused) as refused:
        join(resolved, other, ActionKind.MERGE, other_case=other.case_id)
    assert refused.value.status == 409
    gone = other.model_copy(update={"status": CaseStatus.MERGED, "merged_into": case.case_id})
    with pytest.raises(ActionRefused) as refused:
        join(gone, None, ActionKind.NOTE, text="x")
    assert refused.value.status == 409


def test_a_conversation_back_after_its_merged_case_is_over_opens_its_own_next_generation() -> None:
    first = opened(AT, conversation="tweet")
    later = opened(AT + timedelta(hours=1), conversation="post", channel=Channel.INSTAGRAM)
    survivor = join(later, first, ActionKind.MERGE, other_case=first.case_id).case
    assert survivor is not None
    done = survivor.model_copy(update={"status": CaseStatus.RESOLVED, "resolved_at": AT})
    at = AT + timedelta(days=10)
    back = classified(at, Priority.P3, platform_id="tweet-9", conversation="tweet")
    fresh = decide(done, MentionInput(back, "t", own_generation=first.generation), PLAYBOOK, at)
    assert fresh.case is not None and fresh.case.case_id != survivor.case_id
    assert fresh.case.conversation_key == first.conversation_key
    assert fresh.case.generation == first.generation + 1


# -- link ---------------------------------------------------------------------------------------


def test_a_linked_private_thread_joins_the_case_and_its_dm_opens_no_second_case() -> None:
    case = opened(AT, conversation="public")
    linked = join(case, None, ActionKind.LINK, conversation_id="dm-thread")
    assert linked.case is not None
    assert linked.case.linked_conversations == ["x:dm-thread"]
    assert "private-thread" in linked.case.tags
    (joined,) = [e for e in linked.effects if isinstance(e, JoinConversations)]
    assert joined.conversation_keys == ("x:dm-thread",) and joined.absorbed is None

    at = AT + timedelta(hours=2)
    dm = classified(
        at, Priority.P3, platform_id="dm-1", conversation="dm-thread", kind=MentionKind.DM
    )
    decision = decide(linked.case, MentionInput(dm, "t"), PLAYBOOK, at)
    assert decision.case is not None and decision.case.case_id == case.case_id
    assert [t for t, _ in emitted(decision)] == [EventType.CASE_UPDATED]
    assert decision.case.clocks == linked.case.clocks  # no fresh clock
    assert not any(isinstance(e, SendReply) for e in decision.effects)


def test_a_link_is_refused_when_the_thread_is_already_there_or_has_its_own_case() -> None:
    case = opened(conversation="public")
    with pytest.raises(ActionRefused) as refused:
        join(case, None, ActionKind.LINK, conversation_id="public")
    assert refused.value.status == 409
    own = opened(conversation="dm-thread", kind=MentionKind.DM)
    with pytest.raises(ActionRefused) as refused:
        join(case, own, ActionKind.LINK, conversation_id="dm-thread")
    assert refused.value.status == 409 and "merge" in str(refused.value)


# -- personal data, templates, acknowledgements ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Escribidme a ana.perez@example.com que no me llega nada", "e-mail"),
        ("Llamadme al +34 612 345 678 por favor", "phone"),
        ("Mi número de pedido es el que os dije ayer", "order"),
        ("My booking ref is on the ticket, still no refund", "order"),
        ("Devolvedme ES91 2100 0418 4502 0005 1332 ya", "bank"),
        ("Llevo tres días sin servicio y nadie me responde", None),
        ("Pagué 1.250,00 euros el 02/12/2026", None),
    ],
)
def test_personal_data_in_public_suggests_a_private_message(text: str, found: str | None) -> None:
    item = classified(AT, text=text)
    assert item.classification is not None
    reason = personal_data_reason(item.mention, item.classification)
    assert (reason is None) if found is None else (reason is not None and found in reason)


def test_a_billing_incident_needs_the_account_but_a_dm_is_private_already() -> None:
    item = classified(AT, text="Otra vez me habéis cobrado")
    assert item.classification is not None
    billing = item.classification.model_copy(
        update={"reasons": ["incident (billing): 'me han cobrado'"]}
    )
    assert "billing" in (personal_data_reason(item.mention, billing) or "")
    dm = classified(AT, kind=MentionKind.DM, text="mi email es ana@example.com")
    assert dm.classification is not None
    assert personal_data_reason(dm.mention, dm.classification) is None


def test_the_case_carries_the_private_message_suggestion_filled_in_its_language() -> None:
    case = opened(text="Llamadme al 612 345 678, que nadie me responde")
    assert PERSONAL_DATA_TAG in case.tags
    offered = suggestions(PLAYBOOK, case, [Intent.COMPLAINT], AT, private_reason="phone")
    first = offered[0]
    assert first.kind == "move_to_private" and first.template == "move-to-dm-es"
    assert case_ref(case) in first.text and "@ana" in first.text and not first.missing
    sorry = next(s for s in offered if s.template == "sorry-es")
    assert sorry.missing == ["agent"] and "${agent}" in sorry.text
    assigned = case.model_copy(update={"assignee": "Lucía"})
    sorry = next(
        s
        for s in suggestions(PLAYBOOK, assigned, [Intent.COMPLAINT], AT)
        if s.template == "sorry-es"
    )
    assert "Soy Lucía" in sorry.text and not sorry.missing
    # Once the private thread is linked, the move is no longer suggested.
    linked = assigned.model_copy(update={"tags": [*assigned.tags, "private-thread"]})
    offered = suggestions(PLAYBOOK, linked, [Intent.COMPLAINT], AT)
    assert [s.kind for s in offered] == ["template"]


def test_english_cases_get_english_templates() -> None:
    item = classified(AT, language="en", text="No internet for three days, nobody answers")
    case = decide(None, MentionInput(item, "t"), PLAYBOOK, AT).case
    assert case is not None
    names = [s.template for s in suggestions(PLAYBOOK, case, [Intent.COMPLAINT], AT)]
    assert names == ["sorry-en"]


def test_filling_names_only_whitelisted_facts() -> None:
    text, missing = fill("Hola ${customer}, ${agent} ${unknown}", {"customer": "@ana"})
    assert text == "Hola @ana, ${agent} ${unknown}" and missing == ["agent", "unknown"]


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{name: t, language: es, text: 'Hola ${customer.__class__}'}", "a $ that is not a fact"),
        ("{name: t, language: es, text: 'Hola $password'}", "unknown fact $password"),
        ("{name: t, language: es, auto: true, text: 'Hola'}", "only an acknowledgement"),
        (
            "{name: t, language: es, purpose: acknowledgement, auto: true, text: 'Soy $agent'}",
            "cannot name the $agent",
        ),
        ("{name: t, language: es, kinds: [reply], text: 'Hola'}", "not for kind reply"),
    ],
)
def test_a_template_the_router_could_not_fill_safely_does_not_load(
    template: str, problem: str
) -> None:
    text = SAMPLE.read_text(encoding="utf-8") + f"\n  - {template}\n"
    with pytest.raises(PlaybookError) as refused:
        parse_playbook(text)
    (line,) = refused.value.problems
    assert problem in line and line.startswith("line ")


def test_a_new_dm_is_acknowledged_automatically_without_stopping_its_clock() -> None:
    now = AT + timedelta(seconds=5)
    dm = classified(AT, platform_id="dm-1", conversation="dm", kind=MentionKind.DM)
    decision = decide(None, MentionInput(dm, "t"), PLAYBOOK, now)
    case = decision.case
    assert case is not None and case.status is CaseStatus.OPEN
    assert all(c.running for c in case.clocks) and case.first_response_at is None
    (sent,) = [e for e in decision.effects if isinstance(e, SendReply)]
    assert sent.reply.kind is MentionKind.REPLY and case_ref(case) in sent.reply.text
    recorded = [e for e in decision.effects if isinstance(e, RecordMention)]
    assert [r.item.mention.kind for r in recorded] == [MentionKind.DM, MentionKind.REPLY]
    assert recorded[1].event_id is not None and recorded[1].case_id == case.case_id
    # Public mentions are only offered templates; a replay sends nothing.
    public = decide(None, MentionInput(classified(AT), "t"), PLAYBOOK, now)
    assert not any(isinstance(e, SendReply) for e in public.effects)
    replayed = decide(None, MentionInput(dm, "t", alert_past_deadlines=False), PLAYBOOK, now)
    assert not any(isinstance(e, SendReply) for e in replayed.effects)


# -- what the webhook carries -------------------------------------------------------------------


def entries(count: int) -> list[tuple[uuid.UUID, Any]]:
    """Stored conversation entries as the applier reads them: the mention's id and the entry
    as JSON text (without `raw`), copied into the body as it is."""
    stored = []
    for n in range(count):
        item = classified(AT + timedelta(minutes=n), platform_id=f"m{n}")
        entry = item.model_dump(mode="json") | {"routing": None}
        entry["mention"].pop("raw")
        stored.append((item.mention.mention_id, orjson.Fragment(orjson.dumps(entry))))
    return stored


def test_the_webhook_conversation_is_bounded_and_as_of_its_event() -> None:
    case_id = uuid.uuid4()
    many = entries(WINDOW_MENTIONS + 5)
    bounded = window(case_id, many, total=40)
    assert len(bounded["mentions"]) == WINDOW_MENTIONS
    assert bounded["total"] == 40 and bounded["truncated"]
    assert bounded["mentions"][-1] is many[-1][1] and bounded["href"] == f"/v1/cases/{case_id}"
    few = entries(3)
    as_of = window(case_id, few, total=3, upto=few[0][0])
    assert as_of["mentions"] == [few[0][1]]
    assert as_of["total"] == 1 and not as_of["truncated"]
    # What the webhook carries is what the OpenAPI document says (CaseContext).
    event = new_envelope(
        EventType.CASE_UPDATED,
        CaseEvent(case=opened()),
        tenant="t",
        subject="x:public",
        trace=TraceContext.new(),
    )
    body = orjson.loads(webhook_body(event, {"conversation": bounded, "customer": None}))
    context = CaseContext.model_validate(body["data"])
    assert context.conversation.total == 40 and len(context.conversation.mentions) == 20
    assert context.conversation.mentions[0].classification is not None
    assert context.conversation.mentions[-1].mention.mention_id == many[-1][0]


def test_a_merge_saves_both_cases_and_numbers_each_ones_events() -> None:
    first = opened(AT, conversation="tweet")
    later = opened(AT + timedelta(hours=1), conversation="post", channel=Channel.INSTAGRAM)
    merged = join(later, first, ActionKind.MERGE, other_case=first.case_id)
    applier = Applier("t", [Subscription(uuid.uuid4(), frozenset({"case.merged"}))])
    applier.apply(merged.case, merged.effects, TraceContext.new())
    assert applier.cases[first.case_id].status is CaseStatus.MERGED
    assert applier.cases[first.case_id].sequence == first.sequence + 1
    assert applier.cases[later.case_id].sequence == later.sequence + 1
    assert len(applier.joins) == 1
    # A case webhook's body waits for the flush, which adds the conversation and customer.
    (delivery,) = applier.deliveries
    assert delivery["body"] is None
    events = [orjson.loads(row["value"])["type"] for row in applier.outbox]
    assert events == ["case.merged", "case.updated"]


def test_the_openapi_webhooks_document_the_conversation_and_the_customer(router_env: None) -> None:
    document = create_app(RouterSettings()).openapi()
    assert "case.merged" in document["webhooks"]
    schemas = document["components"]["schemas"]
    data = schemas["CaseEventData"]["properties"]
    assert {"conversation", "customer", "case", "mention"} <= set(data)
    window_schema = schemas["ConversationWindow"]["properties"]
    assert {"mentions", "total", "truncated", "href"} <= set(window_schema)
    assert "sentiment_trend" in schemas["CustomerProfile"]["properties"]
    detail = schemas["CaseDetail"]["properties"]
    assert {"customer", "suggestions"} <= set(detail)


def test_due_at_the_same_opening_the_older_promise_is_kept() -> None:
    """Both written at night: both first responses are due when the queue opens; the merged
    case keeps the one the customer has waited on longer."""
    night = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
    first = opened(night, conversation="tweet", channel=Channel.X)
    later = opened(night + timedelta(minutes=30), conversation="post", channel=Channel.INSTAGRAM)
    assert first.first_response_due_at == later.first_response_due_at
    survivor = join(later, first, ActionKind.MERGE, other_case=first.case_id).case
    assert survivor is not None
    assert survivor.clock(ClockKind.FIRST_RESPONSE) == first.clock(ClockKind.FIRST_RESPONSE)
