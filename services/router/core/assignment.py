"""Who works a case: skills and language match, capacity, presence, the case closest to breach
first. Pure: the agents and their loads are read by the edge at handling time and passed in.

A case needs the skills its queue declares in the playbook's `assignment.skills`, plus the skill
of each of its tags in `assignment.tag_skills` (a queue that declares none needs no skill). An
agent may take it when online, below capacity, serving its queue (or every queue) and its
language (a case of undetermined language is served in any), holding every needed skill as a
primary skill, or as a primary or secondary one once the case has waited `widen_after_minutes`
since it opened; an agent with the skills as primary ones is still preferred then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from services.router.core.agents import Agent, AgentProfile, Presence, base_language
from services.router.core.effects import AgentAssigned, Effect, StartTimer, Timer, TimerKind
from services.router.core.playbook import Assignment, Playbook
from services.router.core.sla import same_instant
from shared.events import Case, CaseStatus, ClockKind, ClockState, SlaClock

NEVER = datetime.min.replace(tzinfo=UTC)
FAR = datetime.max.replace(tzinfo=UTC)
# Statuses in which a case counts toward its assignee's load.
LOADED = frozenset({CaseStatus.OPEN, CaseStatus.RESPONDED})
RESPONSE_CLOCKS = (ClockKind.FIRST_RESPONSE, ClockKind.NEXT_RESPONSE)
ROUTER_ACTOR = "scs-router"


@dataclass(frozen=True)
class StoredAgent:
    """An agent's row: its definition when the API wrote one, presence set through the API, and
    its last assignment (kept for playbook agents too)."""

    agent_id: str
    profile: AgentProfile | None
    presence: Presence | None
    last_assigned_at: datetime | None


def roster(policy: Assignment, stored: Iterable[StoredAgent]) -> dict[str, Agent]:
    """The playbook's agents merged with the stored ones: a definition written through the API
    replaces the playbook's, a presence set through the API overrides the definition's."""
    rows = {row.agent_id: row for row in stored}
    agents: dict[str, Agent] = {}
    for agent_id in sorted(set(policy.agents) | set(rows)):
        row = rows.get(agent_id)
        profile = row.profile if row and row.profile else policy.agents.get(agent_id)
        if profile is None:
            continue  # a presence or assignment left behind by an agent no longer declared
        fields = profile.model_dump()
        if row is not None and row.presence is not None:
            fields["presence"] = row.presence
        agents[agent_id] = Agent(
            **fields,
            agent_id=agent_id,
            last_assigned_at=row.last_assigned_at if row else None,
            source="api" if row and row.profile else "playbook",
        )
    return agents


def counts_toward_load(case: Case) -> bool:
    return case.assignee is not None and case.status in LOADED


@dataclass(frozen=True)
class Staff:
    """The agents and their open cases (open or responded, assigned to them)."""

    agents: Mapping[str, Agent]
    loads: Mapping[str, int]

    def load(self, agent_id: str) -> int:
        return self.loads.get(agent_id, 0)

    def after(self, before: Case | None, after: Case | None, effects: Sequence[Effect]) -> Staff:
        """The staff once a decision is applied (the next decision of a batch sees it)."""
        loads = dict(self.loads)
        if before is not None and counts_toward_load(before):
            assert before.assignee is not None
            loads[before.assignee] = loads.get(before.assignee, 0) - 1
        if after is not None and counts_toward_load(after):
            assert after.assignee is not None
            loads[after.assignee] = loads.get(after.assignee, 0) + 1
        assigned = [
            e for e in effects if isinstance(e, AgentAssigned) and e.agent_id in self.agents
        ]
        if not assigned:
            return replace(self, loads=loads)
        agents = dict(self.agents)
        for effect in assigned:
            agents[effect.agent_id] = agents[effect.agent_id].model_copy(
                update={"last_assigned_at": effect.at}
            )
        return replace(self, agents=agents, loads=loads)


def widened(case: Case, policy: Assignment, now: datetime) -> bool:
    """Whether the case has waited long enough to go to agents with secondary skills."""
    wait = policy.widen_after_minutes
    return wait is not None and now >= case.opened_at + timedelta(minutes=wait)


@dataclass(frozen=True)
class Need:
    """What an agent must offer to take a case (worked out once, checked against each agent)."""

    queue: str
    language: str  # the base language
    skills: frozenset[str]

    @classmethod
    def of(cls, case: Case, policy: Assignment) -> Need:
        return cls(
            case.queue, base_language(case.language), policy.required_skills(case.queue, case.tags)
        )


def may_take(agent: Agent, need: Need, load: int, *, wide: bool) -> bool:
    return (
        agent.presence is Presence.ONLINE
        and load < agent.capacity
        and (not agent.queues or need.queue in agent.queues)
        and agent.serves_language(need.language)
        and all(s in agent.skills or (wide and s in agent.secondary_skills) for s in need.skills)
    )


@dataclass(frozen=True)
class Choice:
    agent_id: str
    wide: bool  # taken on a secondary skill

    def reason(self, policy: Assignment) -> str:
        return policy.policy + (", on a secondary skill" if self.wide else "")


def choose_agent(
    case: Case,
    staff: Staff,
    policy: Assignment,
    now: datetime,
    *,
    exclude: frozenset[str] = frozenset(),
) -> Choice | None:
    """The agent who gets the case, or None when nobody may take it now.

    least_loaded: the fewest open cases for the capacity (then the fewest cases); round_robin:
    the agent whose last case is oldest, whatever the load. Ties: the longest idle, then id."""
    need = Need.of(case, policy)
    for wide in (False, True) if widened(case, policy, now) else (False,):
        able = [
            agent
            for agent in staff.agents.values()
            if agent.agent_id not in exclude
            and may_take(agent, need, staff.load(agent.agent_id), wide=wide)
        ]
        if able:
            best = min(able, key=lambda agent: _turn(agent, staff, policy))
            return Choice(best.agent_id, wide)
    return None


def _turn(agent: Agent, staff: Staff, policy: Assignment) -> tuple[float, int, datetime, str]:
    idle = agent.last_assigned_at or NEVER
    if policy.policy == "round_robin":
        return (0.0, 0, idle, agent.agent_id)
    load = staff.load(agent.agent_id)
    return (load / agent.capacity, load, idle, agent.agent_id)


def breach_order(case: Case) -> tuple[datetime, int, datetime, str]:
    """Closest to breach first: the earliest deadline of a running clock, then the priority,
    then the oldest case."""
    deadlines = [c.due_at for c in case.clocks if c.running]
    return (min(deadlines, default=FAR), case.priority.rank, case.opened_at, str(case.case_id))


def next_case_for(
    agent: Agent, cases: Iterable[Case], staff: Staff, policy: Assignment, now: datetime
) -> Case | None:
    """The open unassigned case the agent may take that is closest to breach (None: none, or
    the agent is not online or is at capacity)."""
    load = staff.load(agent.agent_id)
    takeable = [
        case
        for case in cases
        if case.status is CaseStatus.OPEN
        and case.assignee is None
        and may_take(agent, Need.of(case, policy), load, wide=widened(case, policy, now))
    ]
    return min(takeable, key=breach_order, default=None)


# -- what follows from an assignment, for the decider ----------------------------------------


def on_assigned(case: Case, playbook: Playbook, at: datetime) -> list[Effect]:
    """The agent's last assignment, and the timer that hands the case to someone else if the
    agent has not answered `reassign_before_warning_minutes` before the response clock's warning
    (none when that moment has already passed: the warning's escalation takes over)."""
    if case.assignee is None:
        return []
    effects: list[Effect] = [AgentAssigned(case.assignee, at)]
    before = playbook.assignment.reassign_before_warning_minutes
    clock = _unwarned_response_clock(case)
    if before is None or clock is None:
        return effects
    due = clock.warning_at - timedelta(minutes=before)
    if due.astimezone(UTC) <= at.astimezone(UTC):
        return effects
    timer = Timer.make(
        TimerKind.REASSIGN,
        owner=case.case_id,
        anchor=clock.warning_at,
        due_at=due,
        tenant=case.tenant,
        subject=case.conversation_key,
        case_id=case.case_id,
        clock=clock.kind,
        round=case.assignee,
    )
    return [*effects, StartTimer(timer)]


def _unwarned_response_clock(case: Case) -> SlaClock | None:
    return next(
        (
            c
            for c in case.clocks
            if c.kind in RESPONSE_CLOCKS and c.running and c.state is ClockState.RUNNING
        ),
        None,
    )


def widen_timer(case: Case, policy: Assignment) -> list[Effect]:
    """When nobody could take the case on a primary skill: look again once it may widen."""
    if policy.widen_after_minutes is None:
        return []
    due = case.opened_at + timedelta(minutes=policy.widen_after_minutes)
    timer = Timer.make(
        TimerKind.WIDEN,
        owner=case.case_id,
        anchor=case.opened_at,
        due_at=due,
        tenant=case.tenant,
        subject=case.conversation_key,
        case_id=case.case_id,
    )
    return [StartTimer(timer)]


def reassign_is_current(case: Case, timer: Timer) -> bool:
    """The assignee the timer watched still has the case and the clock has not warned yet."""
    clock = case.clock(timer.clock) if timer.clock else None
    return (
        case.status is CaseStatus.OPEN
        and case.assignee is not None
        and case.assignee == timer.round
        and clock is not None
        and clock.running
        and clock.state is ClockState.RUNNING
        and same_instant(clock.warning_at, timer.anchor)
    )
