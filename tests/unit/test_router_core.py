from __future__ import annotations

from datetime import timedelta

from services.router.core import Decision, RoutingPolicy, route
from shared.events import (
    CaseStatus,
    Classification,
    EventType,
    Intent,
    MentionClassified,
    MentionKind,
    Priority,
    Sentiment,
)
from tests.unit.test_events import a_mention

POLICY = RoutingPolicy()


def classified(
    priority: Priority,
    *,
    language: str = "es",
    intents: list[Intent] | None = None,
    kind: MentionKind = MentionKind.MENTION,
    minutes: int = 0,
    platform_id: str = "1",
) -> MentionClassified:
    base = a_mention()
    mention = base.model_copy(
        update={
            "kind": kind,
            "platform_id": platform_id,
            "mention_id": base.id_for(base.channel, platform_id),
            "created_at": base.created_at + timedelta(minutes=minutes),
        }
    )
    if kind is MentionKind.REPLY:
        return MentionClassified(mention=mention, classification=None)
    return MentionClassified(
        mention=mention,
        classification=Classification(
            language=language,
            sentiment=Sentiment(label="negative", score=-0.6),
            intents=intents or [Intent.COMPLAINT],
            is_complaint=True,
            crisis_risk=0.1,
            priority=priority,
            reasons=["test"],
            model="test",
        ),
    )


def test_first_mention_opens_a_case_with_deadline_by_priority() -> None:
    decision = route(classified(Priority.P2), None, tenant="t", policy=POLICY)
    assert decision.event_type is EventType.CASE_CREATED
    case = decision.case
    assert case is not None
    assert case.status is CaseStatus.OPEN
    assert case.team == "care-es"
    assert case.first_response_due_at - case.opened_at == timedelta(minutes=60)
    # The same conversation always maps to the same case id (idempotent replays).
    again = route(classified(Priority.P2), None, tenant="t", policy=POLICY)
    assert again.case is not None and again.case.case_id == case.case_id


def test_crisis_goes_to_community_managers_and_other_languages_to_intl() -> None:
    crisis = route(classified(Priority.P1), None, tenant="t", policy=POLICY).case
    french = route(classified(Priority.P3, language="fr"), None, tenant="t", policy=POLICY).case
    assert crisis is not None and crisis.team == "community-managers"
    assert french is not None and french.team == "care-intl"


def test_follow_up_escalates_priority_and_tightens_deadline_never_lowers() -> None:
    opened = route(classified(Priority.P3), None, tenant="t", policy=POLICY).case
    escalated = route(
        classified(Priority.P1, minutes=5, platform_id="2"), opened, tenant="t", policy=POLICY
    )
    assert escalated.event_type is EventType.CASE_UPDATED
    assert escalated.case is not None and escalated.case.priority is Priority.P1
    assert escalated.case.first_response_due_at - escalated.case.opened_at == timedelta(minutes=15)
    assert escalated.case.mention_count == 2
    calmer = route(
        classified(Priority.P4, minutes=9, platform_id="3"),
        escalated.case,
        tenant="t",
        policy=POLICY,
    )
    assert calmer.case is not None and calmer.case.priority is Priority.P1


def test_brand_reply_stops_the_clock_once() -> None:
    opened = route(classified(Priority.P2), None, tenant="t", policy=POLICY).case
    reply = route(
        classified(Priority.P2, kind=MentionKind.REPLY, minutes=20, platform_id="r1"),
        opened,
        tenant="t",
        policy=POLICY,
    )
    assert reply.event_type is EventType.CASE_RESPONDED
    assert reply.case is not None and reply.case.status is CaseStatus.RESPONDED
    assert reply.case.first_response_at == opened.opened_at + timedelta(minutes=20)  # type: ignore[union-attr]
    second = route(
        classified(Priority.P2, kind=MentionKind.REPLY, minutes=40, platform_id="r2"),
        reply.case,
        tenant="t",
        policy=POLICY,
    )
    assert second.event_type is None
    assert second.case is not None and second.case.first_response_at == reply.case.first_response_at


def test_reply_in_unknown_conversation_is_recorded_only() -> None:
    decision = route(
        classified(Priority.P2, kind=MentionKind.REPLY), None, tenant="t", policy=POLICY
    )
    assert decision == Decision(case=None, event_type=None)


def test_customer_writing_again_after_an_answer_reopens_the_case() -> None:
    opened = route(classified(Priority.P2), None, tenant="t", policy=POLICY).case
    answered = route(
        classified(Priority.P2, kind=MentionKind.REPLY, minutes=5, platform_id="r"),
        opened,
        tenant="t",
        policy=POLICY,
    ).case
    again = route(
        classified(Priority.P2, minutes=30, platform_id="2"), answered, tenant="t", policy=POLICY
    ).case
    assert again is not None and again.status is CaseStatus.OPEN
    assert again.first_response_at is not None  # the first-response SLA stays measured
