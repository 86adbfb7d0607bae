"""Prometheus (the Debian package, started by deploy/local/prometheus.sh) scrapes every service
and loads the SLA alert rules: what an ops team's Grafana reads."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Stack, eventually


@pytest.fixture(scope="module")
def prometheus_url() -> str:
    url = os.environ.get("SCS_TEST_PROMETHEUS_URL")
    if not url:
        pytest.fail("SCS_TEST_PROMETHEUS_URL is not set: run the suite with `make test`")
    return url


async def _get(url: str, path: str, **params: str) -> Any:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get(path, params=params)
    response.raise_for_status()
    return response.json()["data"]


async def test_prometheus_scrapes_every_service_and_the_live_sla(
    stack: Stack, prometheus_url: str
) -> None:
    async def all_targets_up() -> bool:
        targets = (await _get(prometheus_url, "/api/v1/targets"))["activeTargets"]
        return len(targets) == 4 and all(t["health"] == "up" for t in targets)

    await eventually(all_targets_up, timeout=60, interval=1)

    async def sla_series_present() -> bool:
        result = (
            await _get(prometheus_url, "/api/v1/query", query='scs_kpi_cases{dimension="all"}')
        )["result"]
        return bool(result)

    await eventually(sla_series_present, timeout=60, interval=1)


async def test_sla_alert_rules_are_loaded(prometheus_url: str) -> None:
    groups = (await _get(prometheus_url, "/api/v1/rules"))["groups"]
    rules = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"FirstResponseSlaBelowTarget", "CrisisCaseOverdue"} <= rules
