from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kpi.core import CaseFacts, sla_report
from shared.events import Channel, Priority

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def facts(
    n: int,
    *,
    channel: Channel = Channel.X,
    priority: Priority = Priority.P2,
    answered_after: timedelta | None = None,
    due_after: timedelta = timedelta(hours=1),
) -> CaseFacts:
    return CaseFacts(
        case_id=str(n),
        channel=channel,
        priority=priority,
        team="care-es",
        opened_at=OPENED,
        first_response_due_at=OPENED + due_after,
        first_response_at=OPENED + answered_after if answered_after is not None else None,
    )


def test_attainment_counts_answered_and_overdue_but_not_open_within_deadline() -> None:
    cases = [
        facts(1, answered_after=timedelta(minutes=10)),  # on time
        facts(2, answered_after=timedelta(minutes=90)),  # late
        facts(3),  # open, overdue at `now`
        facts(4, due_after=timedelta(hours=5)),  # open, still within deadline
        facts(5, channel=Channel.FACEBOOK, answered_after=timedelta(minutes=30)),
    ]
    report = sla_report(cases, now=OPENED + timedelta(hours=2))
    overall = report.overall
    assert (overall.cases, overall.responded, overall.responded_within_sla) == (5, 3, 2)
    assert (overall.breached_open, overall.backlog) == (1, 2)
    assert overall.attainment == pytest.approx(2 / 4)
    assert overall.response_rate == pytest.approx(3 / 5)
    assert overall.average_first_response_seconds == pytest.approx((10 + 90 + 30) * 60 / 3)
    assert report.by_channel[Channel.FACEBOOK].attainment == 1.0
    assert report.by_channel[Channel.X].attainment == pytest.approx(1 / 3)


def test_no_decided_case_means_no_attainment_yet() -> None:
    report = sla_report([facts(1, due_after=timedelta(hours=5))], now=OPENED)
    assert report.overall.attainment is None
    assert report.overall.average_first_response_seconds is None
    assert sla_report([], now=OPENED).overall.cases == 0
