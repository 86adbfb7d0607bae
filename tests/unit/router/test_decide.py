"""The router's decider over the sample playbook: routing, hours, clocks, lifecycle, escalation
and crisis mode, as plain values (no database, no broker)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.router.core import (
    CancelTimers,
    Decision,
    EmitCaseEvent,
    EmitCrisisEvent,
    MentionInput,
    RecordMention,
    SaveCrisis,
    StartTimer,
    Timer,
    TimerInput,
    TimerKind,
    decide,
)
from services.router.core.effects import Effect
from shared.events import (
    Case,
    CaseStatus,
    ClockKind,
    ClockState,
    Crisis,
    EventType,
    Intent,
    MentionClassified,
    Priority,
)
from tests.unit.router.builders import classified, reply, sample_playbook

MADRID = ZoneInfo("Europe/Madrid")
MEXICO = ZoneInfo("America/Mexico_City")
LONDON = ZoneInfo("Europe/London")
PLAYBOOK = sample_playbook()
# A Wednesday in hours everywhere: 11:00 Madrid, 10:00 London, 04:00 Mexico City.
WEDNESDAY = datetime(2026, 11, 4, 11, 0, tzinfo=MADRID)


def mention(
    case: Case | None, item: MentionClassified, *, crisis: Crisis | None = None
) -> Decision:
    now = item.mention.created_at
    return decide(case, MentionInput(item, "acme", crisis=crisis), PLAYBOOK, now)


def fire(case: Case | None, timer: Timer, crisis: Crisis | None = None) -> Decision:
    return decide(case, TimerInput(timer, crisis=crisis), PLAYBOOK, timer.due_at)


def events(effects: list[Effect]) -> list[EventType]:
    return [e.event_type for e in effects if isinstance(e, EmitCaseEvent | EmitCrisisEvent)]


def timers(effects: list[Effect], kind: TimerKind | None = None) -> list[Timer]:
    found = [e.timer for e in effects if isinstance(e, StartTimer)]
    return [t for t in found if kind is None or t.kind is kind]


def created(decision: Decision) -> Case:
    assert decision.case is not None
    return decision.case


# -- routing --------------------------------------------------------------------------------


def test_segmentation_by_language_and_geography() -> None:
    spain = created(mention(None, classified(WEDNESDAY)))
    mexico = created(
        mention(None, classified(WEDNESDAY, location="Monterrey, NL", platform_id="2"))
    )
    tagged = created(mention(None, classified(WEDNESDAY, language="es-MX", platform_id="3")))
    english = created(mention(None, classified(WEDNESDAY, language="en", platform_id="4")))
    other = created(mention(None, classified(WEDNESDAY, language="fr", platform_id="5")))
    assert [c.queue for c in (spain, mexico, tagged, english, other)] == [
        "care-es",
        "care-mx",
        "care-mx",
        "care-en",
        "care-en",
    ]
    assert (spain.country, mexico.country) == (None, "MX")


def test_p1_goes_to_the_crisis_desk_with_fifteen_minutes_around_the_clock() -> None:
    sunday_night = datetime(2026, 11, 29, 3, 0, tzinfo=MADRID)
    case = created(mention(None, classified(sunday_night, Priority.P1)))
    assert case.queue == "community-managers"
    assert case.first_response_due_at == sunday_night + timedelta(minutes=15)


def test_spam_praise_and_plain_references_are_recorded_without_a_case() -> None:
    for item, rule in [
        (classified(WEDNESDAY, Priority.P4, intents=(Intent.SPAM,)), "spam"),
        (
            classified(WEDNESDAY, Priority.P4, intents=(Intent.PRAISE,), sentiment="positive"),
            "praise",
        ),
        (
            classified(WEDNESDAY, Priority.P4, intents=(Intent.OTHER,), sentiment="neutral"),
            "plain-reference",
        ),
    ]:
        decision = mention(None, item)
        assert decision.case is None
        (record,) = decision.effects
        assert isinstance(record, RecordMention) and record.routing is not None
        assert record.routing.record_only
        assert [t.rule for t in record.routing.trace if t.matched] == [rule]


def test_a_question_in_praise_still_opens_a_case() -> None:
    item = classified(
        WEDNESDAY, Priority.P3, intents=(Intent.PRAISE, Intent.QUESTION), sentiment="positive"
    )
    assert mention(None, item).case is not None


def test_the_trace_names_every_rule_and_why() -> None:
    decision = mention(None, classified(WEDNESDAY, text="Mi abogado os va a demandar"))
    record = decision.effects[0]
    assert isinstance(record, RecordMention) and record.routing is not None
    trace = {t.rule: t for t in record.routing.trace}
    assert [t.rule for t in record.routing.trace] == [r.name for r in PLAYBOOK.rules]
    assert trace["legal-threat"].matched
    assert trace["legal-threat"].applied == ["priority=P2", "escalate=legal", "tag=legal"]
    assert not trace["spam"].matched and "intents" in trace["spam"].why
    assert events(decision.effects) == [EventType.CASE_CREATED, EventType.CASE_ESCALATED]
    assert created(decision).escalated_to == ["legal"]


# -- hours and deadlines --------------------------------------------------------------------


def test_saturday_night_in_madrid_is_acknowledged_and_due_in_monday_hours() -> None:
    saturday = datetime(2026, 11, 28, 23, 0, tzinfo=MADRID)
    decision = mention(None, classified(saturday))
    case = created(decision)
    record = decision.effects[0]
    assert isinstance(record, RecordMention) and record.routing is not None
    assert record.routing.out_of_hours
    assert record.routing.next_open_at == datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)
    assert record.routing.acknowledgement is not None
    assert "30/11 09:00" in record.routing.acknowledgement
    assert case.first_response_due_at == datetime(2026, 11, 30, 10, 0, tzinfo=MADRID)
    assert case.first_response_due_at.utcoffset() == timedelta(hours=1)
    assert "out-of-hours" in case.tags


def test_the_eve_of_a_national_holiday_lands_after_it() -> None:
    # Tuesday 6 January 2026 (Epiphany) is a national holiday in Spain.
    eve = datetime(2026, 1, 5, 18, 30, tzinfo=MADRID)
    case = created(mention(None, classified(eve)))
    assert case.first_response_due_at == datetime(2026, 1, 7, 9, 30, tzinfo=MADRID)


def test_mexico_and_london_count_their_own_hours() -> None:
    friday_evening = datetime(2026, 11, 27, 19, 30, tzinfo=MEXICO)
    mx = created(mention(None, classified(friday_evening, location="CDMX")))
    assert mx.first_response_due_at == datetime(2026, 11, 28, 8, 30, tzinfo=MEXICO)
    friday_late = datetime(2026, 11, 27, 17, 0, tzinfo=LONDON)
    uk = created(mention(None, classified(friday_late, language="en", platform_id="2")))
    assert uk.first_response_due_at == datetime(2026, 11, 30, 9, 30, tzinfo=LONDON)


def test_a_late_delivery_fires_at_once_unless_a_replay_opts_out() -> None:
    old = WEDNESDAY - timedelta(days=2)
    item = classified(old)
    now = WEDNESDAY
    live = decide(None, MentionInput(item, "acme"), PLAYBOOK, now)
    assert {t.kind for t in timers(live.effects) if t.due_at <= now} == {
        TimerKind.SLA_WARNING,
        TimerKind.SLA_BREACH,
    }
    replay = decide(None, MentionInput(item, "acme", alert_past_deadlines=False), PLAYBOOK, now)
    assert all(t.due_at > now for t in timers(replay.effects))


# -- clocks and lifecycle -------------------------------------------------------------------


def test_the_brand_reply_stops_the_first_response_clock() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    answered = mention(case, reply(WEDNESDAY + timedelta(minutes=20)))
    after = created(answered)
    clock = after.clock(ClockKind.FIRST_RESPONSE)
    assert clock is not None and clock.state is ClockState.MET
    assert after.status is CaseStatus.RESPONDED
    assert after.first_response_at == WEDNESDAY + timedelta(minutes=20)
    assert events(answered.effects) == [EventType.CASE_RESPONDED]
    assert CancelTimers(case.case_id, ClockKind.FIRST_RESPONSE) in answered.effects
    (inactivity,) = timers(answered.effects, TimerKind.INACTIVITY)
    assert inactivity.due_at == WEDNESDAY + timedelta(minutes=20, hours=72)


def test_a_customer_writing_after_the_answer_starts_the_next_response_clock() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    case = created(mention(case, reply(WEDNESDAY + timedelta(minutes=20))))
    again = mention(case, classified(WEDNESDAY + timedelta(hours=1), platform_id="2"))
    after = created(again)
    clock = after.clock(ClockKind.NEXT_RESPONSE)
    assert after.status is CaseStatus.OPEN and after.mention_count == 2
    assert clock is not None and clock.due_at == WEDNESDAY + timedelta(hours=2)
    assert {t.kind for t in timers(again.effects)} == {TimerKind.SLA_WARNING, TimerKind.SLA_BREACH}


def test_inactivity_resolves_and_a_later_message_reopens_or_opens_a_new_case() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    answered = mention(case, reply(WEDNESDAY + timedelta(minutes=20)))
    (inactivity,) = timers(answered.effects, TimerKind.INACTIVITY)
    resolved_decision = fire(created(answered), inactivity)
    resolved = created(resolved_decision)
    assert resolved.status is CaseStatus.RESOLVED
    assert events(resolved_decision.effects) == [EventType.CASE_RESOLVED]
    assert fire(resolved, inactivity).effects == []  # fired twice: nothing more

    soon = mention(resolved, classified(inactivity.due_at + timedelta(days=1), platform_id="2"))
    reopened = created(soon)
    assert events(soon.effects) == [EventType.CASE_REOPENED]
    assert (reopened.case_id, reopened.status, reopened.reopened_count) == (
        case.case_id,
        CaseStatus.OPEN,
        1,
    )
    assert reopened.clock(ClockKind.NEXT_RESPONSE) is not None

    late = mention(resolved, classified(inactivity.due_at + timedelta(days=8), platform_id="3"))
    fresh = created(late)
    assert events(late.effects)[0] is EventType.CASE_CREATED
    assert fresh.case_id != case.case_id and fresh.generation == 1
    assert fresh.conversation_key == case.conversation_key


def test_a_late_reply_does_not_resolve_a_case_the_customer_wrote_in_again() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    answered = mention(case, reply(WEDNESDAY + timedelta(minutes=20)))
    (inactivity,) = timers(answered.effects, TimerKind.INACTIVITY)
    again = created(
        mention(created(answered), classified(WEDNESDAY + timedelta(hours=1), platform_id="2"))
    )
    assert fire(again, inactivity).effects == []


# -- SLA timers and escalation ----------------------------------------------------------------


def test_warning_and_breach_fire_once_and_climb_the_ladder() -> None:
    opened = mention(None, classified(WEDNESDAY))
    case = created(opened)
    warning = timers(opened.effects, TimerKind.SLA_WARNING)[0]
    breach = timers(opened.effects, TimerKind.SLA_BREACH)[0]
    assert warning.due_at == WEDNESDAY + timedelta(minutes=48)
    warned = fire(case, warning)
    assert events(warned.effects) == [EventType.SLA_WARNING, EventType.CASE_ESCALATED]
    case = created(warned)
    assert case.escalated_to == ["team-lead"]
    assert fire(case, warning).effects == []
    breached = fire(case, breach)
    assert events(breached.effects) == [EventType.SLA_BREACHED, EventType.CASE_ESCALATED]
    case = created(breached)
    clock = case.clock(ClockKind.FIRST_RESPONSE)
    assert clock is not None and clock.state is ClockState.BREACHED
    assert fire(case, breach).effects == []
    (step,) = timers(breached.effects, TimerKind.ESCALATION)
    assert step.due_at == breach.due_at + timedelta(minutes=60)
    marketing = fire(case, step)
    assert created(marketing).escalated_to == ["team-lead", "team-lead", "marketing"]


def test_an_answer_makes_the_clock_timers_stale() -> None:
    opened = mention(None, classified(WEDNESDAY))
    answered = created(mention(created(opened), reply(WEDNESDAY + timedelta(minutes=5))))
    first_response = [t for t in timers(opened.effects) if t.clock is ClockKind.FIRST_RESPONSE]
    assert len(first_response) == 2
    for timer in first_response:
        assert fire(answered, timer).effects == []


def test_an_escalation_counts_the_new_deadline_from_the_escalation_never_the_past() -> None:
    case = created(mention(None, classified(WEDNESDAY, Priority.P3)))
    assert case.first_response_due_at == WEDNESDAY + timedelta(hours=4)
    later = WEDNESDAY + timedelta(hours=3)
    raised = mention(case, classified(later, Priority.P1, platform_id="2"))
    after = created(raised)
    assert after.priority is Priority.P1 and after.queue == "community-managers"
    assert after.first_response_due_at == later + timedelta(minutes=15)
    breaches = timers(raised.effects, TimerKind.SLA_BREACH)
    assert {t.clock: t.due_at for t in breaches} == {
        ClockKind.FIRST_RESPONSE: later + timedelta(minutes=15),
        ClockKind.RESOLUTION: later + timedelta(minutes=480),  # P1 resolves in 8 h
    }


# -- crisis mode ------------------------------------------------------------------------------


def storm(at: datetime, **overrides: object) -> MentionClassified:
    """A high-risk mention on the brand's safety topic, 4 similar ones just before it."""
    return classified(
        at,
        Priority.P2,
        crisis_risk=0.8,
        topic_key="acme|crisis:safety",
        similar_recent=4,
        **overrides,  # type: ignore[arg-type]
    )


def test_a_burst_opens_a_crisis_that_groups_cases_and_closes_when_quiet() -> None:
    first = mention(None, storm(WEDNESDAY))
    case = created(first)
    (saved,) = [e.crisis for e in first.effects if isinstance(e, SaveCrisis)]
    assert EventType.CRISIS_OPENED in events(first.effects)
    assert case.crisis_id == saved.crisis_id and case.queue == "community-managers"
    assert case.priority is Priority.P1 and "crisis-room" in case.escalated_to
    assert {t.kind for t in timers(first.effects)} >= {TimerKind.CRISIS_QUIET, TimerKind.ESCALATION}

    joined = mention(
        None,
        storm(WEDNESDAY + timedelta(minutes=5), platform_id="2", conversation="other"),
        crisis=saved,
    )
    other = created(joined)
    assert EventType.CRISIS_OPENED not in events(joined.effects)
    assert other.crisis_id == saved.crisis_id and other.priority is Priority.P1
    (grown,) = [e.crisis for e in joined.effects if isinstance(e, SaveCrisis)]
    assert grown.case_count == 2

    (stale_quiet,) = timers(first.effects, TimerKind.CRISIS_QUIET)
    assert fire(None, stale_quiet, grown).effects == []  # a signal came after it
    (quiet,) = timers(joined.effects, TimerKind.CRISIS_QUIET)
    closed = fire(None, quiet, grown)
    assert events(closed.effects) == [EventType.CRISIS_CLOSED]


def test_a_calm_mention_on_a_crisis_topic_does_not_join() -> None:
    crisis = Crisis(
        crisis_id=uuid.uuid4(),
        tenant="acme",
        topic_key="acme|crisis:safety",
        opened_at=WEDNESDAY,
        last_signal_at=WEDNESDAY,
    )
    calm = classified(WEDNESDAY, crisis_risk=0.1, topic_key="acme|crisis:safety")
    assert created(mention(None, calm, crisis=crisis)).crisis_id is None


# -- found by review ----------------------------------------------------------------------------


def test_an_answer_after_the_deadline_still_announces_the_miss_once() -> None:
    opened = mention(None, classified(WEDNESDAY))  # P2: warning at 48 min, due at 60
    late = mention(created(opened), reply(WEDNESDAY + timedelta(minutes=70)))
    assert events(late.effects) == [
        EventType.SLA_WARNING,
        EventType.SLA_BREACHED,
        EventType.CASE_RESPONDED,
    ]
    # Their ids are the timers' own: a timer that fires anyway announces the same events.
    warning = timers(opened.effects, TimerKind.SLA_WARNING)[0]
    alert = next(e for e in late.effects if isinstance(e, EmitCaseEvent))
    assert alert.cause == str(warning.timer_id)
    # Announced by the timer already: the answer does not repeat it.
    warned = created(fire(created(opened), warning))
    after = mention(warned, reply(WEDNESDAY + timedelta(minutes=50)))
    assert events(after.effects) == [EventType.CASE_RESPONDED]


def test_an_answered_case_waits_on_the_customer_without_breaching_its_resolution() -> None:
    opened = mention(None, classified(WEDNESDAY))
    answered = created(mention(created(opened), reply(WEDNESDAY + timedelta(minutes=5))))
    resolution = [t for t in timers(opened.effects) if t.clock is ClockKind.RESOLUTION]
    assert resolution and all(fire(answered, t).effects == [] for t in resolution)
    # The customer writes again after the resolution deadline: the brand owes it again, and
    # the resolution timers are armed anew (new ids), due at once.
    later = WEDNESDAY + timedelta(days=5)
    again = mention(answered, classified(later, platform_id="2"))
    rearmed = [t for t in timers(again.effects) if t.clock is ClockKind.RESOLUTION]
    assert {t.kind for t in rearmed} == {TimerKind.SLA_WARNING, TimerKind.SLA_BREACH}
    assert not {t.timer_id for t in rearmed} & {t.timer_id for t in resolution}
    assert all(t.due_at <= later for t in rearmed)
    breach = next(t for t in rearmed if t.kind is TimerKind.SLA_BREACH)
    assert EventType.SLA_BREACHED in events(fire(created(again), breach).effects)


def test_a_reply_older_than_the_customers_last_message_leaves_it_waiting() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    case = created(mention(case, classified(WEDNESDAY + timedelta(minutes=4), platform_id="2")))
    out_of_order = mention(case, reply(WEDNESDAY + timedelta(minutes=2)))
    after = created(out_of_order)
    waiting = after.clock(ClockKind.NEXT_RESPONSE)
    assert after.status is CaseStatus.OPEN and after.first_response_at is not None
    assert waiting is not None and waiting.started_at == WEDNESDAY + timedelta(minutes=4)
    assert not timers(out_of_order.effects, TimerKind.INACTIVITY)


def test_two_replies_at_the_same_time_arm_two_inactivity_timers() -> None:
    case = created(mention(None, classified(WEDNESDAY)))
    at = WEDNESDAY + timedelta(minutes=5)
    first = mention(case, reply(at, platform_id="r1"))
    second = mention(created(first), reply(at, platform_id="r2"))
    (one,) = timers(first.effects, TimerKind.INACTIVITY)
    (two,) = timers(second.effects, TimerKind.INACTIVITY)
    assert one.timer_id != two.timer_id


def test_a_replay_keeps_the_crisis_quiet_timer() -> None:
    first = storm(WEDNESDAY)
    now = WEDNESDAY + timedelta(days=2)
    decision = decide(None, MentionInput(first, "acme", alert_past_deadlines=False), PLAYBOOK, now)
    kinds = {t.kind for t in timers(decision.effects)}
    assert TimerKind.CRISIS_QUIET in kinds
    assert not {
        t for t in timers(decision.effects) if t.kind is TimerKind.SLA_BREACH and t.due_at <= now
    }


def test_a_case_of_a_queue_the_playbook_no_longer_has_is_owned_by_the_default_queue() -> None:
    opened = mention(None, classified(WEDNESDAY))
    legacy = created(opened).model_copy(update={"queue": "care-intl"})
    warning = timers(opened.effects, TimerKind.SLA_WARNING)[0]
    assert events(fire(legacy, warning).effects)[0] is EventType.SLA_WARNING
    follow = mention(
        legacy, classified(WEDNESDAY + timedelta(minutes=1), Priority.P1, platform_id="2")
    )
    assert created(follow).queue == "community-managers"
