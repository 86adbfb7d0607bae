"""KPI maths over case facts: SLA attainment, response rate, response time, backlog.

First-response SLA attainment = cases answered within their deadline / cases whose clock has
stopped or run out (answered, or still open past the deadline). Open cases still within their
deadline are not counted yet: they can still go either way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime

from pydantic import AwareDatetime, BaseModel

from shared.events import Channel, Priority


class CaseFacts(BaseModel):
    case_id: str
    channel: Channel
    priority: Priority
    team: str
    opened_at: AwareDatetime
    first_response_due_at: AwareDatetime
    first_response_at: AwareDatetime | None = None


class SlaFigures(BaseModel):
    cases: int = 0
    responded: int = 0
    responded_within_sla: int = 0
    breached_open: int = 0
    backlog: int = 0
    total_first_response_seconds: float = 0.0

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

    def add(self, case: CaseFacts, now: datetime) -> None:
        self.cases += 1
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
