"""A burst of GET /v1/kpis/sla shares one computation: one query over the window, not one per
request (the endpoint is open to whoever reaches the port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from services.kpi import repository
from services.kpi.handlers import KpiProjector


class NoDatabase:
    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield None


async def test_concurrent_refreshes_share_one_query(monkeypatch: pytest.MonkeyPatch) -> None:
    queries = 0

    async def slow_facts(*args: Any) -> list[Any]:
        nonlocal queries
        queries += 1
        await asyncio.sleep(0.05)
        return []

    monkeypatch.setattr(repository, "facts_since", slow_facts)
    projector = KpiProjector(NoDatabase(), ["default"], timedelta(hours=1))  # type: ignore[arg-type]
    reports = await asyncio.gather(*(projector.refresh() for _ in range(50)))
    assert queries == 1 and all(report is reports[0] for report in reports)
    await projector.refresh()  # a later request computes afresh
    assert queries == 2
