"""The router's pure core: the playbook, business calendars and SLA clocks, escalation, and the
decider that turns a case and an input into the case's next state and a list of effects."""

from services.router.core.actions import ActionRefused
from services.router.core.calendar import BusinessCalendar
from services.router.core.cases import (
    ActionInput,
    Decision,
    Input,
    MentionInput,
    TimerInput,
    decide,
)
from services.router.core.effects import (
    AgentAssigned,
    CancelTimers,
    Effect,
    EmitCaseEvent,
    EmitCrisisEvent,
    RecordMention,
    SaveCrisis,
    StartTimer,
    Timer,
    TimerKind,
)
from services.router.core.playbook import Playbook

__all__ = [
    "ActionInput",
    "ActionRefused",
    "AgentAssigned",
    "BusinessCalendar",
    "CancelTimers",
    "Decision",
    "Effect",
    "EmitCaseEvent",
    "EmitCrisisEvent",
    "Input",
    "MentionInput",
    "Playbook",
    "RecordMention",
    "SaveCrisis",
    "StartTimer",
    "Timer",
    "TimerInput",
    "TimerKind",
    "decide",
]
