"""KPI maths over case facts: SLA attainment, response rate, response time, backlog, and how
many cases stay in the social channel.

First-response SLA attainment = cases answered within their deadline / cases whose clock has
stopped or run out (answered, or still open past the deadline). Open cases still within their
deadline are not counted yet: they can still go either way.

Handoff rate = cases handed off out of the social channel (phone, e-mail, store, legal,
marketing; a private message or another queue stays in it) / cases. Social resolution rate =
cases resolved in the social channel / cases; a case its handoff target resolved is not one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel

from shared.events import CaseEvent, CaseStatus, Channel, EventType, Priority

# How a case stands: resolved in the social channel, resolved by its handoff's target, or not.
Resolution = Literal["social", "handoff", "none"]


class CaseFacts(BaseModel):
    case_id: str
    channel: Channel
    priority: Priority
    team: str
    opened_at: AwareDatetime
    first_response_due_at: AwareDatetime
    first_response_at: AwareDatetime | None = None
    handed_off_at: AwareDatetime | None = None
    resolution: Resolution | None = None


def left_channel(event_type: EventType, event: CaseEvent) -> bool:
    """A handoff out of the social channel: the router parks such a case as handed off (a
    private message or another queue keeps it open in the channel)."""
    return event_type is EventType.CASE_HANDOFF and event.case.status is CaseStatus.HANDED_OFF


def resolution_after(event_type: EventType, event: CaseEvent) -> Resolution | None:
    """How the case stands after the event; None when the event does not say (a note on a
    resolved case: the resolution it had stands)."""
    if event.case.status is not CaseStatus.RESOLVED:
        return "none"
    if event_type is not EventType.CASE_RESOLVED:
        return None
    by_target = event.handoff is not None and event.handoff.outcome == "resolved"
    return "handoff" if by_target else "social"


class SlaFigures(BaseModel):
    cases: int = 0
    responded: int = 0
    responded_within_sla: int = 0
    breached_open: int = 0
    backlog: int = 0
    total_first_response_seconds: float = 0.0
    handed_off: int = 0
    resolved_in_channel: int = 0
    resolved_by_handoff: int = 0

    @property
    def attainment(self) -> float | None:
        """None until at least one clock has stopped or run out."""
        decided = self.responded + self.breached_open
        return self.responded_within_sla / decided if decided else None

    @property
    def response_rate(self) -> float | None:
        return self.responded / self.cases if self.cases else None

    @property
    def average_first_response_seconds(self) -> float | None:
        return self.total_first_response_seconds / self.responded if self.responded else None

    @property
    def handoff_rate(self) -> float | None:
        return self.handed_off / self.cases if self.cases else None

    @property
    def social_resolution_rate(self) -> float | None:
        return self.resolved_in_channel / self.cases if self.cases else None

    def add(self, case: CaseFacts, now: datetime) -> None:
        self.cases += 1
        self.handed_off += case.handed_off_at is not None
        self.resolved_in_channel += case.resolution == "social"
        self.resolved_by_handoff += case.resolution == "handoff"
        if case.first_response_at is not None:
            self.responded += 1
            self.total_first_response_seconds += max(
                0.0, (case.first_response_at - case.opened_at).total_seconds()
            )
            if case.first_response_at <= case.first_response_due_at:
                self.responded_within_sla += 1
        else:
            self.backlog += 1
            if now > case.first_response_due_at:
                self.breached_open += 1

    def summary(self) -> dict[str, float | int | None]:
        return {
            "cases": self.cases,
            "responded": self.responded,
            "responded_within_sla": self.responded_within_sla,
            "breached_open": self.breached_open,
            "backlog": self.backlog,
            "sla_attainment": self.attainment,
            "response_rate": self.response_rate,
            "average_first_response_seconds": self.average_first_response_seconds,
            "handed_off": self.handed_off,
            "resolved_in_channel": self.resolved_in_channel,
            "resolved_by_handoff": self.resolved_by_handoff,
            "handoff_rate": self.handoff_rate,
            "social_resolution_rate": self.social_resolution_rate,
        }


class SlaReport(BaseModel):
    overall: SlaFigures
    by_priority: dict[Priority, SlaFigures]
    by_channel: dict[Channel, SlaFigures]


def sla_report(cases: Iterable[CaseFacts], now: datetime) -> SlaReport:
    overall = SlaFigures()
    by_priority: dict[Priority, SlaFigures] = defaultdict(SlaFigures)
    by_channel: dict[Channel, SlaFigures] = defaultdict(SlaFigures)
    for case in cases:
        for figures in (overall, by_priority[case.priority], by_channel[case.channel]):
            figures.add(case, now)
    return SlaReport(overall=overall, by_priority=dict(by_priority), by_channel=dict(by_channel))


# -- Per tenant ------------------------------------------------------------------------------
# Reports, and the `tenant` label of every KPI metric, name only tenants the operator listed;
# every other tenant's cases are counted together under this one: the label set stays closed.
OTHER_TENANTS = "other"


def tenant_label(tenant: str, tenants: Collection[str]) -> str:
    return tenant if tenant in tenants else OTHER_TENANTS


def tenant_reports(
    facts: Iterable[tuple[str, CaseFacts]], tenants: Collection[str], now: datetime
) -> dict[str, SlaReport]:
    """A report per listed tenant (also before its first case), and one for the unlisted ones
    together when there are any: no tenant's cases ever count in another listed tenant's."""
    grouped: dict[str, list[CaseFacts]] = {tenant: [] for tenant in tenants}
    for tenant, case in facts:
        grouped.setdefault(tenant_label(tenant, tenants), []).append(case)
    return {label: sla_report(cases, now) for label, cases in sorted(grouped.items())}
