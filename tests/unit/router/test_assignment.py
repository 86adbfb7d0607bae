"""Assignment: who may take a case (language, skills, queue, capacity, presence), who gets it
(least loaded or round robin, widening to secondary skills), the case offered first (closest to
breach), and what the decider does with it (automatic assignment, reassignment, widening)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.router.core import (
    ActionInput,
    AgentAssigned,
    EmitCaseEvent,
    MentionInput,
    StartTimer,
    Timer,
    TimerInput,
    TimerKind,
    decide,
)
from services.router.core.agents import Agent, AgentProfile, Presence, base_language
from services.router.core.assignment import (
    Need,
    Staff,
    StoredAgent,
    breach_order,
    choose_agent,
    may_take,
    next_case_for,
    roster,
    widened,
)
from services.router.core.playbook import Playbook, PlaybookError, parse_playbook
from shared.events import ActionKind, AgentAction, Case, CaseStatus, EventType, Priority
from tests.unit.router.builders import SAMPLE, classified, reply

AT = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)  # a Wednesday, in hours in Madrid and London
# The sample playbook without its assignment section, which each test writes its own way.
BASE = SAMPLE.read_text(encoding="utf-8").split("\nassignment:")[0] + "\n"

ASSIGNMENT = """
assignment:
  automatic: {automatic}
  policy: {policy}
  widen_after_minutes: 20
  reassign_before_warning_minutes: 30
  skills:
    care-es: [care]
    care-en: [care]
  tag_skills:
    vip: vip
"""


@cache
def playbook(automatic: bool = True, policy: str = "least_loaded") -> Playbook:
    return parse_playbook(BASE + ASSIGNMENT.format(automatic=str(automatic).lower(), policy=policy))


def agent(agent_id: str, **fields: Any) -> Agent:
    values: dict[str, Any] = {
        "languages": ["es"],
        "skills": ["care"],
        "capacity": 3,
        "presence": Presence.ONLINE,
    }
    return Agent(agent_id=agent_id, **(values | fields))


def staff(*agents: Agent, **loads: int) -> Staff:
    return Staff({a.agent_id: a for a in agents}, loads)


def opened(
    language: str = "es", priority: Priority = Priority.P3, at: datetime = AT, **fields: Any
) -> Case:
    item = classified(at, priority, language=language, conversation=str(uuid.uuid4()))
    case = decide(None, MentionInput(item, "t"), playbook(), at).case
    assert case is not None
    return case.model_copy(update=fields)


POLICY = playbook().assignment


# -- who may take a case, and who gets it ---------------------------------------------------


def test_the_case_goes_to_an_agent_of_its_language() -> None:
    team = staff(agent("ana", languages=["es"]), agent("bob", languages=["en"]))
    for language, expected in (("es", "ana"), ("en", "bob")):
        choice = choose_agent(opened(language), team, POLICY, AT)
        assert choice is not None and choice.agent_id == expected


def test_an_undetermined_language_is_served_in_any() -> None:
    choice = choose_agent(opened("und"), staff(agent("bob", languages=["en"])), POLICY, AT)
    assert choice is not None and choice.agent_id == "bob"


def test_least_loaded_for_capacity_then_longest_idle_then_id() -> None:
    case = opened()
    earlier, later = AT - timedelta(hours=2), AT - timedelta(hours=1)
    team = staff(
        agent("ana", capacity=2, last_assigned_at=earlier),
        agent("bob", capacity=10, last_assigned_at=later),
        ana=1,
        bob=1,
    )
    assert choose_agent(case, team, POLICY, AT) == choose_agent(case, team, POLICY, AT)
    assert _chosen(case, team) == "bob"  # 1/10 below 1/2
    team = staff(agent("ana", last_assigned_at=later), agent("bob", last_assigned_at=earlier))
    assert _chosen(case, team) == "bob"  # idle longer
    assert _chosen(case, staff(agent("bob"), agent("ana"))) == "ana"  # never assigned: by id


def test_round_robin_takes_turns_whatever_the_load() -> None:
    policy = playbook(policy="round_robin").assignment
    case = opened()
    team = staff(
        agent("ana", capacity=10, last_assigned_at=AT - timedelta(minutes=1)),
        agent("bob", capacity=10, last_assigned_at=AT - timedelta(minutes=5)),
        bob=2,
        ana=0,
    )
    order = []
    for minute in range(4):
        choice = choose_agent(case, team, policy, AT)
        assert choice is not None
        order.append(choice.agent_id)
        at = AT + timedelta(minutes=minute)
        team = team.after(None, case.model_copy(update={"assignee": choice.agent_id}), [])
        team = team.after(None, None, [AgentAssigned(choice.agent_id, at)])
    assert order == ["bob", "ana", "bob", "ana"]


def test_full_away_offline_or_other_queue_agents_take_nothing() -> None:
    case = opened()
    for unable in (
        agent("ana", capacity=2),  # at capacity below
        agent("ana", presence=Presence.AWAY),
        agent("ana", presence=Presence.OFFLINE),
        agent("ana", queues=["care-mx"]),
        agent("ana", capacity=0),
    ):
        assert choose_agent(case, staff(unable, ana=2), POLICY, AT) is None
    assert _chosen(case, staff(agent("ana", queues=["care-es"]))) == "ana"


def test_a_secondary_skill_counts_once_the_case_has_waited_and_primary_is_preferred() -> None:
    case = opened(tags=["vip"])  # needs care and vip
    secondary = agent("sec", skills=["care"], secondary_skills=["vip"])
    primary = agent("pri", skills=["care", "vip"], capacity=1)
    assert choose_agent(case, staff(secondary), POLICY, AT) is None
    later = AT + timedelta(minutes=20)
    assert widened(case, POLICY, later)
    choice = choose_agent(case, staff(secondary), POLICY, later)
    assert choice is not None and (choice.agent_id, choice.wide) == ("sec", True)
    choice = choose_agent(case, staff(secondary, primary), POLICY, later)
    assert choice is not None and (choice.agent_id, choice.wide) == ("pri", False)
    assert choose_agent(case, staff(secondary, primary, pri=1), POLICY, later) == choice.__class__(
        "sec", True
    )


def test_reassignment_excludes_the_current_assignee() -> None:
    case = opened()
    team = staff(agent("ana"), agent("bob"), ana=0, bob=2)
    assert _chosen(case, team) == "ana"
    choice = choose_agent(case, team, POLICY, AT, exclude=frozenset({"ana"}))
    assert choice is not None and choice.agent_id == "bob"


def _chosen(case: Case, team: Staff) -> str | None:
    choice = choose_agent(case, team, POLICY, AT)
    return choice.agent_id if choice else None


# -- the case offered first ------------------------------------------------------------------


def test_next_offers_the_case_closest_to_breach_then_the_higher_priority() -> None:
    ana = agent("ana", languages=["es", "en"])
    p3 = opened(priority=Priority.P3)
    p2_later = opened(priority=Priority.P2, at=AT + timedelta(minutes=30))  # 60 min: 11:30
    p4 = opened(priority=Priority.P4)
    english = opened("en", priority=Priority.P1, at=AT - timedelta(hours=1))  # 15 min: 09:15
    taken = opened(priority=Priority.P2, at=AT - timedelta(hours=3), assignee="bob")
    answered = opened(at=AT - timedelta(hours=3), status=CaseStatus.RESPONDED)
    cases = [p3, p4, p2_later, english, taken, answered]
    team = staff(ana)
    assert next_case_for(ana, cases, team, POLICY, AT) == english
    assert next_case_for(ana.model_copy(update={"languages": ["es"]}), cases, team, POLICY, AT) == (
        p2_later
    )
    # Same deadline: the higher priority first.
    twin = p3.model_copy(update={"case_id": uuid.uuid4(), "priority": Priority.P2})
    assert next_case_for(ana, [p3, twin], team, POLICY, AT) == twin


def test_next_offers_nothing_to_an_agent_away_or_at_capacity() -> None:
    cases = [opened()]
    assert next_case_for(agent("ana"), cases, staff(agent("ana")), POLICY, AT) == cases[0]
    assert next_case_for(agent("ana"), cases, staff(agent("ana"), ana=3), POLICY, AT) is None
    away = agent("ana", presence=Presence.AWAY)
    assert next_case_for(away, cases, staff(away), POLICY, AT) is None
    assert next_case_for(agent("ana"), [], staff(agent("ana")), POLICY, AT) is None


# -- the playbook's agents and the API's ------------------------------------------------------


def test_the_api_definition_wins_and_api_presence_overrides() -> None:
    text = BASE + (
        "assignment:\n  agents:\n"
        "    ana: {languages: [es], skills: [care], capacity: 2, presence: online}\n"
        "    bob: {languages: [en], capacity: 4}\n"
        "    cy: {languages: [en]}\n"
    )
    policy = parse_playbook(text).assignment
    api_bob = AgentProfile(languages=["en", "es"], capacity=9)
    stored = [
        StoredAgent("ana", None, Presence.AWAY, AT),
        StoredAgent("bob", api_bob, None, None),
        StoredAgent("dee", AgentProfile(languages=["fr"]), Presence.ONLINE, None),
        StoredAgent("gone", None, Presence.ONLINE, AT),  # no definition anywhere
    ]
    agents = roster(policy, stored)
    assert sorted(agents) == ["ana", "bob", "cy", "dee"]
    assert (agents["ana"].presence, agents["ana"].capacity, agents["ana"].source) == (
        Presence.AWAY,
        2,
        "playbook",
    )
    assert agents["ana"].last_assigned_at == AT
    assert (agents["bob"].languages, agents["bob"].capacity, agents["bob"].source) == (
        ["en", "es"],
        9,
        "api",
    )
    assert agents["cy"].presence is Presence.OFFLINE
    assert agents["dee"].presence is Presence.ONLINE


def test_assignment_problems_are_named_with_their_lines() -> None:
    text = BASE + (
        "assignment:\n"
        "  policy: fastest\n"
        "  skills: {care-fr: [care]}\n"
        "  agents:\n"
        "    ana: {languages: [es], queues: [nowhere]}\n"
    )
    with pytest.raises(PlaybookError) as error:
        parse_playbook(text)
    lines = len(BASE.splitlines())
    problems = error.value.problems
    assert any(p.startswith(f"line {lines + 2}: assignment.policy") for p in problems), problems
    text = text.replace("  policy: fastest\n", "")
    with pytest.raises(PlaybookError) as error:
        parse_playbook(text)
    assert error.value.problems == [
        f"line {lines + 2}: assignment.skills.care-fr: unknown queue 'care-fr'",
        f"line {lines + 4}: assignment.agents.ana.queues: unknown queue 'nowhere'",
    ]


# -- the decider -------------------------------------------------------------------------------


def _events(effects: list[Any]) -> list[EmitCaseEvent]:
    return [e for e in effects if isinstance(e, EmitCaseEvent)]


def _timers(effects: list[Any], kind: TimerKind) -> list[Timer]:
    return [e.timer for e in effects if isinstance(e, StartTimer) and e.timer.kind is kind]


def test_a_new_case_is_assigned_through_the_assign_action() -> None:
    item = classified(AT, Priority.P3, language="en")
    team = staff(agent("ana"), agent("bob", languages=["en"]))
    decision = decide(None, MentionInput(item, "t"), playbook(), AT, team)
    case = decision.case
    assert case is not None and case.assignee == "bob"
    created, assigned = _events(decision.effects)
    assert created.event_type is EventType.CASE_CREATED and created.payload.case.assignee is None
    assert assigned.event_type is EventType.CASE_UPDATED
    action = assigned.payload.action
    assert action is not None and action.kind is ActionKind.ASSIGN
    assert (action.assignee, action.actor, action.text) == (
        "bob",
        "scs-router",
        "automatic: least_loaded",
    )
    assert AgentAssigned("bob", AT) in decision.effects
    (reassign,) = _timers(decision.effects, TimerKind.REASSIGN)
    clock = case.clocks[0]
    assert (reassign.round, reassign.clock) == ("bob", clock.kind)
    assert reassign.due_at == clock.warning_at - timedelta(minutes=30)
    # Without staff, or when assignment is not automatic, nobody is assigned.
    for pb, given_staff in ((playbook(), None), (playbook(automatic=False), team)):
        unassigned = decide(None, MentionInput(item, "t"), pb, AT, given_staff).case
        assert unassigned is not None and unassigned.assignee is None


def test_a_case_nobody_may_take_waits_for_widening_then_goes_to_a_secondary_skill() -> None:
    item = classified(AT, Priority.P3, language="es")
    team = staff(agent("sec", skills=[], secondary_skills=["care"]))
    decision = decide(None, MentionInput(item, "t"), playbook(), AT, team)
    case = decision.case
    assert case is not None and case.assignee is None
    (widen,) = _timers(decision.effects, TimerKind.WIDEN)
    assert widen.due_at == AT + timedelta(minutes=20)
    fired = decide(case, TimerInput(widen), playbook(), widen.due_at, team)
    assert fired.case is not None and fired.case.assignee == "sec"
    (event,) = _events(fired.effects)
    assert event.payload.action is not None
    assert event.payload.action.text == "automatic: least_loaded, on a secondary skill"


def test_an_assignee_who_has_not_answered_before_the_warning_loses_the_case() -> None:
    item = classified(AT, Priority.P3, language="es")
    team = staff(agent("ana"), agent("bob", capacity=1))
    first = decide(None, MentionInput(item, "t"), playbook(), AT, team)
    assert first.case is not None and first.case.assignee == "ana"
    team = team.after(None, first.case, first.effects)
    (timer,) = _timers(first.effects, TimerKind.REASSIGN)
    moved = decide(first.case, TimerInput(timer), playbook(), timer.due_at, team)
    assert moved.case is not None and moved.case.assignee == "bob"
    (event,) = _events(moved.effects)
    assert event.payload.action is not None and event.payload.action.text is not None
    assert event.payload.action.text.startswith("reassigned: ana had not answered")
    # Bob has until the warning itself: from there the escalation ladder takes over.
    assert _timers(moved.effects, TimerKind.REASSIGN) == []
    assert AgentAssigned("bob", timer.due_at) in moved.effects
    # Stale: the brand answered, or someone else has it; and nobody else free: it stays.
    answered = decide(
        first.case, MentionInput(reply(AT + timedelta(minutes=5)), "t"), playbook(), AT, team
    ).case
    assert decide(answered, TimerInput(timer), playbook(), timer.due_at, team).effects == []
    assert decide(moved.case, TimerInput(timer), playbook(), timer.due_at, team).effects == []
    switched_off = parse_playbook(
        BASE
        + ASSIGNMENT.format(automatic="true", policy="round_robin").replace(
            "  reassign_before_warning_minutes: 30\n", ""
        )
    )
    assert decide(first.case, TimerInput(timer), switched_off, timer.due_at, team).effects == []
    alone = staff(agent("ana"))
    stays = decide(first.case, TimerInput(timer), playbook(), timer.due_at, alone)
    assert stays.case == first.case and stays.effects == []


def test_a_manual_assignment_arms_the_reassignment_timer_too() -> None:
    case = decide(None, MentionInput(classified(AT), "t"), playbook(automatic=False), AT).case
    action = AgentAction(
        action_id=uuid.uuid4(), kind=ActionKind.ASSIGN, actor="cy", at=AT + timedelta(minutes=1)
    )
    decision = decide(case, ActionInput(action), playbook(automatic=False), action.at)
    assert decision.case is not None and decision.case.assignee == "cy"
    assert [t.round for t in _timers(decision.effects, TimerKind.REASSIGN)] == ["cy"]
    assert AgentAssigned("cy", action.at) in decision.effects


# -- properties --------------------------------------------------------------------------------

agents_strategy = st.lists(
    st.builds(
        lambda i, langs, skills, secondary, capacity, presence: agent(
            f"a{i}",
            languages=langs,
            skills=skills,
            secondary_skills=secondary,
            capacity=capacity,
            presence=presence,
        ),
        st.integers(0, 999),
        st.lists(st.sampled_from(["es", "en", "pt"]), min_size=1, max_size=2),
        st.lists(st.sampled_from(["care", "vip"]), max_size=2),
        st.lists(st.sampled_from(["care", "vip"]), max_size=2),
        st.integers(0, 3),
        st.sampled_from(list(Presence)),
    ),
    max_size=6,
    unique_by=lambda a: a.agent_id,
)
cases_strategy = st.lists(
    st.tuples(
        st.sampled_from(["es", "en", "pt", "und"]),
        st.sampled_from(list(Priority)),
        st.booleans(),  # vip
        st.integers(0, 120),  # minutes waited
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(team=agents_strategy, arrivals=cases_strategy)
def test_never_over_capacity_never_a_mismatch_and_nobody_left_who_could_take_it(
    team: list[Agent], arrivals: list[tuple[str, Priority, bool, int]]
) -> None:
    current = staff(*team)
    by_id = {a.agent_id: a for a in team}
    now = AT + timedelta(hours=3)
    for language, priority, vip, waited in arrivals:
        case = _case(language, priority, vip, now - timedelta(minutes=waited))
        choice = choose_agent(case, current, POLICY, now)
        if choice is None:
            assert not any(
                may_take(
                    a,
                    Need.of(case, POLICY),
                    current.load(a.agent_id),
                    wide=widened(case, POLICY, now),
                )
                for a in team
            )
            continue
        chosen = by_id[choice.agent_id]
        assert chosen.presence is Presence.ONLINE
        assert chosen.serves_language(base_language(case.language))
        skills = set(chosen.skills) | (set(chosen.secondary_skills) if choice.wide else set())
        assert POLICY.required_skills(case.queue, case.tags) <= skills
        assert not choice.wide or widened(case, POLICY, now)
        assigned = case.model_copy(update={"assignee": choice.agent_id})
        current = current.after(None, assigned, [AgentAssigned(choice.agent_id, now)])
        assert current.load(choice.agent_id) <= chosen.capacity
    assert all(current.load(a.agent_id) <= a.capacity for a in team)


@settings(max_examples=150, deadline=None)
@given(team=agents_strategy, arrivals=cases_strategy)
def test_next_is_a_case_the_agent_may_take_and_none_is_closer_to_breach(
    team: list[Agent], arrivals: list[tuple[str, Priority, bool, int]]
) -> None:
    now = AT + timedelta(hours=3)
    cases = [
        _case(language, priority, vip, now - timedelta(minutes=waited))
        for language, priority, vip, waited in arrivals
    ]
    current = staff(*team)
    for member in team:
        offered = next_case_for(member, cases, current, POLICY, now)
        able = [
            c
            for c in cases
            if may_take(member, Need.of(c, POLICY), 0, wide=widened(c, POLICY, now))
        ]
        if offered is None:
            assert not able
            continue
        assert offered in able
        assert all(breach_order(offered) <= breach_order(c) for c in able)


def _case(language: str, priority: Priority, vip: bool, at: datetime) -> Case:
    return opened(language, priority, at=at, tags=["vip"] if vip else [])
