"""Apply case events to the KPI facts, once each, and recompute the live report."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from services.kpi import repository
from services.kpi.core import (
    SlaReport,
    left_channel,
    resolution_after,
    tenant_label,
    tenant_reports,
)
from services.kpi.metrics import FIRST_RESPONSE_SECONDS
from shared.db import Database
from shared.events import CaseEvent, Envelope, EventType, utcnow

log = logging.getLogger(__name__)
# Event ids are remembered while Kafka may still redeliver them: the topics keep 7 days.
APPLIED_EVENTS_KEPT = timedelta(days=8)


class KpiProjector:
    """Facts of every tenant's cases; figures per listed tenant (`tenants`), the others under
    "other" (see `tenant_reports`)."""

    def __init__(self, db: Database, tenants: Collection[str], window: timedelta) -> None:
        self._db = db
        self._tenants = frozenset(tenants)
        self._window = window
        self.reports: dict[str, SlaReport] | None = None
        self._computing: asyncio.Future[dict[str, SlaReport]] | None = None

    async def handle(self, envelopes: list[Envelope[CaseEvent]]) -> None:
        # Observed only after the commit: a batch retried after a failed commit would count
        # its answers twice.
        first_responses: list[tuple[str, str, str, float]] = []
        async with self._db.begin() as conn:
            fresh = await repository.claim_events(conn, [e.id for e in envelopes])
            # Latest state per case in this batch; merge_facts makes the order irrelevant.
            rows: dict[Any, dict[str, Any]] = {}
            # A case absorbed by a merge is no longer a case: the survivor carries its promise
            # (the earlier deadline), so it is not counted twice (nor as an unanswered miss).
            merged = {
                e.data.case.case_id
                for e in envelopes
                if e.id in fresh and e.type is EventType.CASE_MERGED
            }
            for envelope in envelopes:
                if envelope.id not in fresh or envelope.data.case.case_id in merged:
                    continue
                case = envelope.data.case
                earlier = rows.get(case.case_id, {})
                handed_off_at = (
                    envelope.occurred_at if left_channel(envelope.type, envelope.data) else None
                )
                resolution = resolution_after(envelope.type, envelope.data)
                rows[case.case_id] = {
                    "case_id": case.case_id,
                    "tenant": envelope.tenant,
                    "channel": case.channel.value,
                    "priority": case.priority.value,
                    "team": case.queue,
                    "opened_at": case.opened_at,
                    "first_response_due_at": case.first_response_due_at,
                    "first_response_at": case.first_response_at,
                    "mention_count": case.mention_count,
                    "handed_off_at": min(
                        (t for t in (earlier.get("handed_off_at"), handed_off_at) if t),
                        default=None,
                    ),
                    # An event that does not tell leaves what an earlier one of the batch said.
                    "resolution": resolution or earlier.get("resolution"),
                    "sequence": case.sequence,
                }
                if envelope.type is EventType.CASE_RESPONDED and case.first_response_at:
                    first_responses.append(
                        (
                            tenant_label(envelope.tenant, self._tenants),
                            case.channel.value,
                            case.priority.value,
                            (case.first_response_at - case.opened_at).total_seconds(),
                        )
                    )
            await repository.merge_facts(conn, list(rows.values()))
            await repository.forget_cases(conn, sorted(merged))
        for tenant, channel, priority, seconds in first_responses:
            FIRST_RESPONSE_SECONDS.labels(tenant, channel, priority).observe(seconds)

    async def refresh(self) -> dict[str, SlaReport]:
        """The reports as of now, by tenant label; callers arriving while they are computed
        share them, so a burst of `GET /v1/kpis/sla` costs one query over the window, not one
        per request."""
        if self._computing is None or self._computing.done():
            self._computing = asyncio.ensure_future(self._compute())
        return await asyncio.shield(self._computing)

    async def _compute(self) -> dict[str, SlaReport]:
        now = utcnow()
        async with self._db.begin() as conn:
            facts = await repository.facts_since(conn, now - self._window)
        self.reports = tenant_reports(facts, self._tenants, now)
        return self.reports

    async def prune(self) -> None:
        async with self._db.begin() as conn:
            await repository.forget_applied(conn, utcnow() - APPLIED_EVENTS_KEPT)
