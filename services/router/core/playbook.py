"""The SCS playbook: one brand's rules for queues, hours, SLAs, routing, escalation and crises.

Parsed from a versioned YAML document by the edge (`load_playbook_text`); the router's decider
only ever sees this validated model. Every cross-reference (a rule's queue, a queue's calendar
and ladder, an escalation target) is checked here, so a playbook that loads is one that routes.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from datetime import date, time
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from services.router.core.agents import AgentId, AgentProfile, Skill
from services.router.core.calendar import BusinessCalendar, HolidaySource, Shift, Weekday
from shared.events import Channel, ClockKind, Intent, MentionKind, Priority

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
# Every duration is finite and at most a year: a deadline must be a date the calendar can reach.
YEAR_HOURS = 366 * 24
YEAR_MINUTES = YEAR_HOURS * 60
Minutes = Annotated[float, Field(gt=0, le=YEAR_MINUTES, allow_inf_nan=False)]
Segment = Literal["potential", "current", "loyal", "former", "critic"]
Conversation = Literal["new", "follow_up", "reopened"]


Path = tuple[str | int, ...]
Problem = tuple[Path, str]


class PlaybookProblems(ValueError):
    """What the model validator found, each problem with the path to its value."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{_dotted(path)}: {message}" for path, message in problems))
        self.problems = problems


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in path)


def _reason(error: ValueError | ValidationError) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{_dotted(d['loc'])}: {d['msg']}" if d["loc"] else d["msg"] for d in error.errors()
        )
    return str(error)


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt condition must not silently match everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_shift(text: str) -> Shift:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text.strip())
    if not match:
        raise ValueError(f"shift {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    end = time.max if (h2, m2) == (24, 0) else time(h2, m2)
    return Shift(start=time(h1, m1), end=end)


class CalendarSpec(Strict):
    """How a calendar is written: `hours: {mon: ["09:00-14:00", "16:00-19:00"], ...}`."""

    timezone: str
    always_open: bool = False
    hours: dict[Weekday, list[str]] = Field(default_factory=dict)
    holidays: HolidaySource | None = None
    closed_dates: list[date] = Field(default_factory=list)

    def build(self) -> BusinessCalendar:
        return BusinessCalendar(
            timezone=self.timezone,
            always_open=self.always_open,
            hours={day: [_parse_shift(s) for s in shifts] for day, shifts in self.hours.items()},
            holidays=self.holidays,
            closed_dates=self.closed_dates,
        )


class Queue(Strict):
    """A team that owns cases: who it serves (languages, countries) and when it works."""

    description: str = ""
    languages: list[str] = Field(default_factory=list)
    countries: list[str] = Field(default_factory=list)
    calendar: Name
    ladder: Name | None = None
    kind: Literal["social_agents", "community_managers", "specialists"] = "social_agents"


class SlaTarget(Strict):
    """Minutes to each answer for the cases it matches; business minutes of the owning queue
    unless `business_time` is false (around the clock)."""

    priority: list[Priority] = Field(default_factory=list)
    channel: list[Channel] = Field(default_factory=list)
    kind: list[MentionKind] = Field(default_factory=list)
    first_response_minutes: Minutes
    next_response_minutes: Minutes | None = None
    resolution_minutes: Minutes | None = None
    business_time: bool = True
    # The sla.warning fires when this share of the allowed time has passed.
    warning_at: float = Field(default=0.8, gt=0, lt=1)

    def matches(self, priority: Priority, channel: Channel, kind: MentionKind) -> bool:
        return (
            (not self.priority or priority in self.priority)
            and (not self.channel or channel in self.channel)
            and (not self.kind or kind in self.kind)
        )

    def minutes(self, clock: ClockKind) -> float | None:
        return {
            ClockKind.FIRST_RESPONSE: self.first_response_minutes,
            ClockKind.NEXT_RESPONSE: self.next_response_minutes or self.first_response_minutes,
            ClockKind.RESOLUTION: self.resolution_minutes,
        }[clock]


class Condition(Strict):
    """Every field given must hold (AND); lists mean "any of". Empty: always."""

    channel: list[Channel] | None = None
    kind: list[MentionKind] | None = None
    language: list[str] | None = None
    country: list[str] | None = None
    brand: list[str] | None = None
    priority: list[Priority] | None = Field(default=None, description="The classifier's")
    intents_any: list[Intent] | None = None
    intents_none: list[Intent] | None = None
    sentiment: list[Literal["negative", "neutral", "positive"]] | None = None
    complaint: bool | None = None
    crisis_risk_at_least: float | None = Field(default=None, ge=0, le=1)
    followers_at_least: int | None = Field(default=None, ge=0)
    verified: bool | None = None
    segment: list[Segment] | None = None
    vip: bool | None = None
    conversation: list[Conversation] | None = None
    in_hours: bool | None = Field(default=None, description="The owning queue is open")
    crisis_active: bool | None = None
    text_matches: str | None = Field(
        default=None, description="Case-insensitive regular expression over the text"
    )

    @field_validator("text_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"not a regular expression: {error}") from None
        return value


class Actions(Strict):
    queue: Name | None = None
    priority: Priority | None = None
    tags: list[str] = Field(default_factory=list)
    record_only: bool = Field(
        default=False, description="Store the mention, open no case (spam, plain references)"
    )
    acknowledge: bool = False
    escalate: Name | None = Field(default=None, description="An escalation target, at once")


class Rule(Strict):
    name: Name
    description: str = ""
    when: Condition = Field(default_factory=Condition)
    then: Actions
    # Stop looking at later rules once this one matched.
    stop: bool = False


class LadderStep(Strict):
    trigger: Literal["warning", "breach", "crisis"]
    after_minutes: float = Field(default=0, ge=0, le=YEAR_MINUTES, allow_inf_nan=False)
    to: Name
    # Move the case to this queue as well (e.g. the crisis desk); otherwise it stays.
    queue: Name | None = None


class Customers(Strict):
    """The brand's customer knowledge the router may use (handles, lower-cased, without @)."""

    vip: list[str] = Field(default_factory=list)
    segments: dict[Segment, list[str]] = Field(default_factory=dict)


class CrisisPolicy(Strict):
    """When related high-risk mentions become an incident, and when it is over."""

    open_at_similar: int = Field(default=5, ge=1, description="Similar mentions in the window")
    min_crisis_risk: float = Field(default=0.6, ge=0, le=1)
    close_after_quiet_minutes: Minutes = 120
    ladder: Name | None = None
    queue: Name | None = None
    priority: Priority = Priority.P1


class Lifecycle(Strict):
    resolve_after_inactive_hours: float = Field(
        default=72, gt=0, le=YEAR_HOURS, allow_inf_nan=False
    )
    reopen_within_hours: float = Field(default=168, ge=0, le=YEAR_HOURS, allow_inf_nan=False)


class OutOfHours(Strict):
    """The acknowledgement suggested when a queue is closed, per language; `{next_open}` is
    replaced by the next opening in the queue's time zone."""

    acknowledgement: dict[str, str] = Field(default_factory=dict)


class Assignment(Strict):
    """Who gets a case. A case needs the skills of its queue (`skills`) and of its tags
    (`tag_skills`); an agent takes it when online, serving its queue and language, holding those
    skills as primary ones (or as secondary ones once the case has waited `widen_after_minutes`
    since it opened) and below capacity. `least_loaded` picks the agent with the fewest open
    cases for its capacity, `round_robin` the one whose last case is oldest; ties go to the
    longest idle, then the id."""

    automatic: bool = Field(default=False, description="Assign cases as they open")
    policy: Literal["least_loaded", "round_robin"] = "least_loaded"
    widen_after_minutes: Minutes | None = None
    # An assignee who has not answered this long before the response clock's warning loses the
    # case to another eligible agent (0: at the warning; null: never).
    reassign_before_warning_minutes: float | None = Field(
        default=None, ge=0, le=YEAR_MINUTES, allow_inf_nan=False
    )
    skills: dict[Name, list[Skill]] = Field(default_factory=dict, description="Per queue")
    tag_skills: dict[str, Skill] = Field(default_factory=dict, description="Tag -> skill")
    agents: dict[AgentId, AgentProfile] = Field(default_factory=dict)

    def required_skills(self, queue: str, tags: Sequence[str]) -> frozenset[str]:
        return frozenset(self.skills.get(queue, [])) | {
            self.tag_skills[t] for t in tags if t in self.tag_skills
        }


# Facts a response template may name (`$customer` or `${customer}`): string.Template over this
# whitelist, so a template can never reach an attribute or anything beyond these strings.
TEMPLATE_FACTS = {
    "customer": "the customer's handle, with @",
    "customer_name": "their display name (else the handle)",
    "case_ref": "a short case reference to quote, e.g. C-1A2B3C4D",
    "agent": "the assigned agent (never in an automatic template: nobody is yet)",
    "brand": "the playbook's brand",
    "queue": "the owning queue",
    "channel": "the platform",
    "next_open": "the owning queue's next opening, when it is closed",
}


class ResponseTemplate(Strict):
    """An answer an agent may start from, per case type (intents, kind), channel and language.
    Only an `auto` acknowledgement is ever sent without an agent; the rest are suggestions."""

    name: Name
    purpose: Literal["acknowledgement", "answer", "private_message"] = "answer"
    language: str = Field(pattern=r"^[a-z]{2,8}$", description="Base language, e.g. es")
    intents: list[Intent] = Field(default_factory=list, description="Any of (empty: any)")
    kinds: list[MentionKind] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    auto: bool = Field(default=False, description="Send on a new case (acknowledgements only)")
    text: str = Field(min_length=1, max_length=2000)

    def placeholders(self) -> list[str]:
        return string.Template(self.text).get_identifiers()

    def matches(self, intents: Sequence[Intent], kind: MentionKind, channel: Channel) -> bool:
        return (
            (not self.intents or any(i in self.intents for i in intents))
            and (not self.kinds or kind in self.kinds)
            and (not self.channels or channel in self.channels)
        )


def _template_problems(templates: list[ResponseTemplate]) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, template in enumerate(templates):
        path: Path = ("templates", index)
        if template.name in seen:
            problems.append(((*path, "name"), f"duplicate template name {template.name!r}"))
        seen.add(template.name)
        if not string.Template(template.text).is_valid():
            problems.append(((*path, "text"), "a $ that is not a fact: write $$ for a dollar"))
        for name in template.placeholders():
            if name not in TEMPLATE_FACTS:
                problems.append(
                    ((*path, "text"), f"unknown fact ${name}; known: {sorted(TEMPLATE_FACTS)}")
                )
        if template.auto and template.purpose != "acknowledgement":
            problems.append(((*path, "auto"), "only an acknowledgement may be sent automatically"))
        if template.auto and "agent" in template.placeholders():
            problems.append(((*path, "text"), "an automatic template cannot name the $agent"))
        if MentionKind.REPLY in template.kinds:
            problems.append(((*path, "kinds"), "templates answer customers: not for kind reply"))
    return problems


class Playbook(Strict):
    format: Literal[1] = 1
    brand: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    calendars: dict[Name, CalendarSpec]
    queues: dict[Name, Queue]
    default_queue: Name
    # Where locations point: {"MX": ["mexico", "cdmx", ...]} matched in the author's location.
    geography: dict[str, list[str]] = Field(default_factory=dict)
    escalation_targets: list[Name] = Field(default_factory=list)
    ladders: dict[Name, list[LadderStep]] = Field(default_factory=dict)
    sla: list[SlaTarget]
    rules: list[Rule] = Field(default_factory=list)
    customers: Customers = Field(default_factory=Customers)
    crisis: CrisisPolicy = Field(default_factory=CrisisPolicy)
    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    out_of_hours: OutOfHours = Field(default_factory=OutOfHours)
    # Suggested when a rule says `acknowledge` while the queue is open, per language.
    acknowledgements: dict[str, str] = Field(default_factory=dict)
    assignment: Assignment = Field(default_factory=Assignment)
    # Answers offered with a case, filled with its facts (see ResponseTemplate).
    templates: list[ResponseTemplate] = Field(default_factory=list)
    _calendars: dict[str, BusinessCalendar] = PrivateAttr(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.brand}@{self.version}"

    @model_validator(mode="after")
    def _references(self) -> Playbook:
        """Cross-references, rule names, SLA coverage and calendars: every problem at once,
        each with the path to the value at fault (the loader turns paths into lines)."""
        problems: list[Problem] = []

        def need(kind: str, name: str | None, known: Any, path: Path) -> None:
            if name is not None and name not in known:
                problems.append((path, f"unknown {kind} {name!r}"))

        need("queue", self.default_queue, self.queues, ("default_queue",))
        for name, queue in self.queues.items():
            need("calendar", queue.calendar, self.calendars, ("queues", name, "calendar"))
            need("ladder", queue.ladder, self.ladders, ("queues", name, "ladder"))
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            need("queue", rule.then.queue, self.queues, ("rules", index, "then", "queue"))
            need(
                "escalation target",
                rule.then.escalate,
                self.escalation_targets,
                ("rules", index, "then", "escalate"),
            )
            if rule.name in seen:
                problems.append((("rules", index, "name"), f"duplicate rule name {rule.name!r}"))
            seen.add(rule.name)
        for ladder, steps in self.ladders.items():
            for index, step in enumerate(steps):
                path: Path = ("ladders", ladder, index)
                need("escalation target", step.to, self.escalation_targets, (*path, "to"))
                need("queue", step.queue, self.queues, (*path, "queue"))
        need("ladder", self.crisis.ladder, self.ladders, ("crisis", "ladder"))
        need("queue", self.crisis.queue, self.queues, ("crisis", "queue"))
        for skilled in self.assignment.skills:
            need("queue", skilled, self.queues, ("assignment", "skills", skilled))
        for agent_id, agent in self.assignment.agents.items():
            for served in agent.queues:
                need("queue", served, self.queues, ("assignment", "agents", agent_id, "queues"))
        problems += [(("sla",), gap) for gap in self._sla_gaps()]
        problems += _template_problems(self.templates)
        # Shifts and zones are checked here, once; the decider reuses the built calendars.
        self._calendars = {}
        for name, spec in self.calendars.items():
            try:
                self._calendars[name] = spec.build()
            except (ValueError, ValidationError) as error:
                problems.append((("calendars", name), f"calendar {name!r}: {_reason(error)}"))
        if problems:
            raise PlaybookProblems(problems)
        return self

    def _sla_gaps(self) -> list[str]:
        """Cases no SLA target would cover (every one must have a clock), one line per priority."""
        kinds = [k for k in MentionKind if k is not MentionKind.REPLY]
        gaps: list[str] = []
        for priority in Priority:
            missing = [
                (channel, kind)
                for channel in Channel
                for kind in kinds
                if not any(t.matches(priority, channel, kind) for t in self.sla)
            ]
            if missing:
                channels = sorted({c.value for c, _ in missing})
                which = sorted({k.value for _, k in missing})
                gaps.append(f"no target for {priority.value} on {channels} for {which}")
        if len(gaps) == len(Priority) and not self.sla:
            return ["no target at all: every case needs one"]
        return gaps

    def owning(self, queue: str) -> str:
        """The queue itself, or the default queue for one this playbook does not declare (a
        case routed by an earlier playbook version whose queue was renamed or removed)."""
        return queue if queue in self.queues else self.default_queue

    def calendar(self, queue: str) -> BusinessCalendar:
        return self._calendars[self.queues[self.owning(queue)].calendar]

    def ladder(self, queue: str) -> str | None:
        return self.queues[self.owning(queue)].ladder

    def sla_for(self, priority: Priority, channel: Channel, kind: MentionKind) -> SlaTarget:
        """The first target that matches: specific targets are written before general ones."""
        for target in self.sla:
            if target.matches(priority, channel, kind):
                return target
        raise LookupError(f"no SLA target for {priority} {channel} {kind}")  # refused at load


class PlaybookError(ValueError):
    """A playbook that does not load, with every problem and the line it is on."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_playbook(text: str) -> Playbook:
    """The playbook in a YAML document; PlaybookError names each problem with its line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PlaybookError(
            [f"{where}not valid YAML: {getattr(error, 'problem', error)}"]
        ) from None
    if not isinstance(data, dict):
        raise PlaybookError(["line 1: a playbook is a mapping (format, brand, version, ...)"])
    try:
        return Playbook.model_validate(data)
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            found = detail.get("ctx", {}).get("error")
            pairs = (
                found.problems
                if isinstance(found, PlaybookProblems)
                else [(tuple(detail["loc"]), detail["msg"])]
            )
            for path, message in pairs:
                where = _dotted(path) or "playbook"
                problems.append(f"line {_line_of(root, path)}: {where}: {message}")
        raise PlaybookError(problems) from None


class _UniqueKeys(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice (PyYAML keeps the last one silently: a second
    `when:` in a rule would replace the first unseen)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _line_of(node: yaml.Node | None, loc: Sequence[int | str]) -> int:
    """The line of the deepest YAML node on the error's path (1-based)."""
    line = 1 if node is None else node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if str(k.value) == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            child = node.value[part] if part < len(node.value) else None
        if child is None:
            break
        node, line = child, child.start_mark.line + 1
    return line
