"""Two tenants on one stack, each with its own ingest token, send the very same platform items
(same ids, same conversation, same text): each tenant gets its own mentions, case, crisis
velocity, webhooks and KPI figures, and nothing of one is counted in the other's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.events import Channel, Mention
from tests.integration.conftest import (
    INGEST_AUTH,
    OTHER_INGEST_AUTH,
    OTHER_TENANT,
    TENANT,
    Receiver,
    Stack,
    eventually,
)
from tests.integration.test_crisis_velocity import LEAK
from tests.integration.test_pipeline import mention_body
from tests.integration.test_playbook_clocks import COMPLAINT, case_events

# The sample playbook opens a crisis at the 5th similar high-risk mention of a topic.
OPEN_AT_SIMILAR = 5
SHARED = 3  # of them, the other tenant receives this many too


def the_items(run: str) -> list[dict[str, Any]]:
    """One conversation's leak reports, a second apart, on a topic of this run only (its own
    brand), so no other test's mentions count in its velocity."""
    start = datetime.now(UTC) - timedelta(seconds=OPEN_AT_SIMILAR)
    items = []
    for n in range(OPEN_AT_SIMILAR):
        body = mention_body(f"tenants-{run}", LEAK)
        body |= {
            "id": f"tenants-{run}-{n}",
            "brand": f"Brand {run}",
            "created_at": (start + timedelta(seconds=n)).isoformat(),
        }
        items.append(body)
    return items


async def send(stack: Stack, auth: dict[str, str], items: list[dict[str, Any]]) -> list[str]:
    ids = []
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=auth) as client:
        for item in items:
            response = await client.post("/v1/mentions", json=item)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return ids


async def query(stack: Stack, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(text(sql), params))
    finally:
        await engine.dispose()


async def routed(stack: Stack, conversation_key: str) -> dict[str, list[int]]:
    """Per tenant, the velocity (similar_recent) of each mention of the conversation's case,
    oldest first."""
    rows = await query(
        stack,
        "SELECT c.tenant, (m.classification->>'similar_recent')::int AS similar "
        "FROM router_case_mentions m JOIN router_cases c USING (case_id) "
        "WHERE c.conversation_key = :key ORDER BY c.tenant, m.created_at",
        key=conversation_key,
    )
    by_tenant: dict[str, list[int]] = {}
    for row in rows:
        by_tenant.setdefault(row.tenant, []).append(row.similar)
    return by_tenant


async def settle(stack: Stack, conversation: str) -> None:
    """Wait until the conversation's cases have nothing more to say (no due timer, nothing in the
    outbox) and the KPI service applied all of it, so no event of this test is still on its way
    when the next test begins (e.g. one that restarts the KPI service)."""

    async def settled() -> bool:
        (waiting,) = await query(
            stack,
            "SELECT (SELECT count(*) FROM router_timers t JOIN router_cases c USING (case_id) "
            "WHERE t.fired_at IS NULL AND t.due_at <= now() AND c.conversation_key = :key) "
            "+ (SELECT count(*) FROM router_outbox WHERE published_at IS NULL)",
            key=f"x:{conversation}",
        )
        if waiting[0]:
            return False
        ids = list({uuid.UUID(e["id"]) for e in await case_events(stack, {conversation})})
        (applied,) = await query(
            stack, "SELECT count(*) FROM kpi_applied_events WHERE event_id = ANY(:ids)", ids=ids
        )
        return bool(applied[0] == len(ids))

    await eventually(settled, what=f"{conversation}: every event out and applied by the KPIs")


async def sla(stack: Stack, tenant: str | None = None) -> httpx.Response:
    params = {"tenant": tenant} if tenant else {}
    async with httpx.AsyncClient() as client:
        return await client.get(f"{stack.url('kpi')}/v1/kpis/sla", params=params)


async def kpi_cases(stack: Stack) -> dict[str, float]:
    """scs_kpi_cases of every tenant, all dimensions together, as Prometheus scrapes it."""
    async with httpx.AsyncClient() as client:
        exposition = (await client.get(f"{stack.url('kpi')}/metrics")).text
    return {
        sample.labels["tenant"]: sample.value
        for family in text_string_to_metric_families(exposition)
        if family.name == "scs_kpi_cases"
        for sample in family.samples
        if sample.labels["dimension"] == "all"
    }


async def test_two_tenants_sending_the_same_items_each_get_their_own_case_velocity_and_kpis(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:8]
    items = the_items(run)
    key = f"x:tenants-{run}"
    other_cases_before = int((await sla(stack, OTHER_TENANT)).json()["overall"]["cases"])

    own_ids = await send(stack, INGEST_AUTH, items)

    async def own_routed() -> bool:
        return len((await routed(stack, key)).get(TENANT, [])) == OPEN_AT_SIMILAR

    await eventually(own_routed, what="the first tenant's mentions in its case")
    other_ids = await send(stack, OTHER_INGEST_AUTH, items[:SHARED])

    async def other_routed() -> bool:
        return len((await routed(stack, key)).get(OTHER_TENANT, [])) == SHARED

    await eventually(other_routed, what="the other tenant's mentions in its own case")

    # The same items are two tenants' mentions: accepted by both, ids scoped to each tenant.
    assert own_ids == [str(Mention.id_for(Channel.X, i["id"], TENANT)) for i in items]
    assert (
        other_ids == [str(Mention.id_for(Channel.X, i["id"], OTHER_TENANT)) for i in items][:SHARED]
    )
    assert not set(own_ids) & set(other_ids)
    async with httpx.AsyncClient(base_url=stack.url("ingest"), headers=OTHER_INGEST_AUTH) as c:
        again = await c.post("/v1/mentions", json=items[0])
    assert again.status_code == 200 and again.json() == {"id": other_ids[0], "status": "duplicate"}

    # Velocity is each tenant's own: the other tenant's first report is its first, not a 6th.
    assert await routed(stack, key) == {
        TENANT: list(range(OPEN_AT_SIMILAR)),
        OTHER_TENANT: list(range(SHARED)),
    }
    crises = await query(
        stack,
        "SELECT tenant FROM router_crises WHERE topic_key = :topic",
        topic=f"brand {run}|crisis:data_breach",
    )
    assert [row.tenant for row in crises] == [TENANT]

    cases = {
        row.tenant: row
        for row in await query(
            stack,
            "SELECT case_id, tenant, mention_count FROM router_cases WHERE conversation_key = :k",
            k=key,
        )
    }
    assert {t: c.mention_count for t, c in cases.items()} == {
        TENANT: OPEN_AT_SIMILAR,
        OTHER_TENANT: SHARED,
    }
    # Webhooks go to the case's tenant's endpoints only (the receiver is the first tenant's).
    own_case, other_case = str(cases[TENANT].case_id), str(cases[OTHER_TENANT].case_id)
    await eventually(
        lambda: any(e["data"].get("case", {}).get("case_id") == own_case for e in receiver.events),
        what="the first tenant's case.created webhook",
    )
    deliveries_of_other = await query(
        stack,
        "SELECT delivery_id FROM webhook_deliveries WHERE position(:id in convert_from(body, "
        "'UTF8')) > 0",
        id=other_case,
    )
    assert deliveries_of_other == []

    # KPIs: facts under each case's tenant, figures and metrics per tenant.
    async def facts_of_both() -> bool:
        rows = await query(
            stack,
            "SELECT case_id::text AS case_id, tenant FROM kpi_case_facts "
            "WHERE case_id::text IN (:own, :other)",
            own=own_case,
            other=other_case,
        )
        return {row.case_id: row.tenant for row in rows} == {
            own_case: TENANT,
            other_case: OTHER_TENANT,
        }

    await eventually(facts_of_both, what="KPI facts of both cases")

    async def other_figures_counted() -> bool:
        report = (await sla(stack, OTHER_TENANT)).json()
        return bool(report["overall"]["cases"] == other_cases_before + 1)

    await eventually(other_figures_counted, what="the other tenant's KPI figures")
    own = (await sla(stack)).json()  # SCS_TENANT's unless another is asked for
    assert own["tenant"] == TENANT and own["overall"]["cases"] >= 1

    async def metrics_per_tenant() -> bool:
        return (await kpi_cases(stack)).get(OTHER_TENANT) == other_cases_before + 1

    await eventually(metrics_per_tenant, what="scs_kpi_cases{tenant=...}")
    assert set(await kpi_cases(stack)) <= {TENANT, OTHER_TENANT, "other"}

    assert (await sla(stack, "not-listed")).status_code == 404
    assert (await sla(stack, "Not A Tenant!")).status_code == 422
    await settle(stack, f"tenants-{run}")


async def test_the_timers_of_every_tenant_fire_under_their_tenant(stack: Stack) -> None:
    """A mention of the other tenant delivered two days late: its clock's timers are due at
    once, and a router fires them for that tenant's case."""
    conversation = f"tenant-late-{uuid.uuid4().hex[:12]}"
    late = datetime.now(UTC) - timedelta(days=2)
    body = mention_body(conversation, COMPLAINT) | {"created_at": late.isoformat()}
    await send(stack, OTHER_INGEST_AUTH, [body])

    async def breached() -> list[dict[str, Any]]:
        events = await case_events(stack, {conversation})
        return [e for e in events if e["type"] == "sla.breached"]

    async def fired() -> bool:
        return bool(await breached())

    await eventually(fired, what="an sla.breached of the other tenant's case")
    assert {(e["tenant"], e["data"]["case"]["tenant"]) for e in await breached()} == {
        (OTHER_TENANT, OTHER_TENANT)
    }
    await settle(stack, conversation)
