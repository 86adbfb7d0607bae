"""The router's case API on the real stack: list with filters and cursor pages, and one case
with its conversation, routing traces, clocks and event history."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.topics import CASES
from tests.integration.conftest import (
    ADMIN_AUTH,
    ADMIN_KEY,
    INGEST_AUTH,
    SCS,
    Receiver,
    Stack,
    eventually,
    read_topic,
)
from tests.integration.test_pipeline import for_conversation, mention_body

COMPLAINT = (
    "@AuroraTelecom llevo tres días sin fibra y nadie me da solución, quiero una reclamación"
)


async def post(stack: Stack, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(f"{stack.url('ingest')}/v1/mentions", json=body)
    assert response.status_code == 202, response.text


async def open_case(stack: Stack, receiver: Receiver, conversation: str) -> str:
    """A complaint in a new conversation; the id of the case it opened."""
    await post(stack, mention_body(conversation, COMPLAINT))
    created = for_conversation(conversation, "case.created")
    await eventually(lambda: bool(receiver.matching(created)), what="case.created")
    return str(receiver.matching(created)[0]["data"]["case"]["case_id"])


async def get(stack: Stack, path: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        return await client.get(f"{stack.url('router')}{path}", params=params)


async def test_cases_are_listed_page_by_page_and_read_whole(
    stack: Stack, receiver: Receiver
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    conversations = [f"case-api-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for conversation in conversations:
        await post(stack, mention_body(conversation, COMPLAINT))
    for conversation in conversations:
        await eventually(
            lambda c=conversation: bool(receiver.matching(for_conversation(c, "case.created"))),
            what="case.created",
        )
    answered = conversations[0]
    await post(stack, mention_body(answered, "Hola, te escribimos por privado.", kind="reply"))
    await eventually(
        lambda: bool(receiver.matching(for_conversation(answered, "case.responded"))),
        what="case.responded",
    )

    seen: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"updated_since": since.isoformat(), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await get(stack, "/v1/cases", **params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen += [item["case"]["conversation_key"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ours = [key for key in seen if key in {f"x:{c}" for c in conversations}]
    assert sorted(ours) == sorted(f"x:{c}" for c in conversations)  # each once, none lost

    responded = (
        await get(stack, "/v1/cases", status="responded", updated_since=since.isoformat())
    ).json()
    assert f"x:{answered}" in [i["case"]["conversation_key"] for i in responded["items"]]
    case_id = next(
        i["case"]["case_id"]
        for i in responded["items"]
        if i["case"]["conversation_key"] == f"x:{answered}"
    )

    detail = (await get(stack, f"/v1/cases/{case_id}")).json()
    assert detail["case"]["status"] == "responded" and detail["sla_state"] in ("met", "running")
    kinds = [entry["mention"]["kind"] for entry in detail["conversation"]]
    assert kinds == ["mention", "reply"]
    first = detail["conversation"][0]
    assert first["classification"]["priority"] and first["routing"]["trace"]
    assert first["routing"]["queue"] == detail["case"]["queue"]
    assert [h["type"] for h in detail["history"]][:1] == ["case.created"]
    assert "case.responded" in [h["type"] for h in detail["history"]]
    assert {c["kind"] for c in detail["case"]["clocks"]} >= {"first_response"}


async def test_the_case_api_refuses_clearly(stack: Stack) -> None:
    missing = await get(stack, f"/v1/cases/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    bad_cursor = await get(stack, "/v1/cases", cursor="not-a-cursor")
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.text
    bad_status = await get(stack, "/v1/cases", status="sleeping")
    assert bad_status.status_code == 422
    async with httpx.AsyncClient() as client:
        anonymous = await client.get(f"{stack.url('router')}/v1/cases")
    assert anonymous.status_code == 401


async def act(stack: Stack, case_id: str, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        return await client.post(f"{stack.url('router')}/v1/cases/{case_id}/actions", json=body)


async def test_an_agent_claims_answers_resolves_and_reopens_a_case(
    stack: Stack, receiver: Receiver
) -> None:
    conversation = f"case-actions-{uuid.uuid4().hex[:10]}"
    case_id = await open_case(stack, receiver, conversation)

    claimed = await act(stack, case_id, action="assign", actor="ana")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["case"]["assignee"] == "ana"
    noted = await act(stack, case_id, action="note", actor="ana", text="pedir número de pedido")
    assert noted.status_code == 200
    answered = await act(
        stack, case_id, action="reply", actor="ana", text="Hola, te escribimos por privado."
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["case"]["status"] == "responded"
    await eventually(
        lambda: bool(receiver.matching(for_conversation(conversation, "case.responded"))),
        what="case.responded webhook of the agent's reply",
    )
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(headers={**ADMIN_AUTH, "Idempotency-Key": key}) as client:
        url = f"{stack.url('router')}/v1/cases/{case_id}/actions"
        resolved = await client.post(url, json={"action": "resolve", "actor": "ana"})
        again = await client.post(url, json={"action": "resolve", "actor": "ana"})
    assert resolved.status_code == 200 and resolved.json()["case"]["status"] == "resolved"
    assert again.status_code == 409  # already resolved: nothing announced twice
    assert (await act(stack, case_id, action="assign", actor="luis")).status_code == 409
    await eventually(
        lambda: kpi_resolution_is(stack, case_id, "social"), what="KPI: resolved in the channel"
    )
    reopened = await act(stack, case_id, action="reopen", actor="ana")
    assert reopened.json()["case"]["status"] == "open"
    await eventually(lambda: kpi_resolution_is(stack, case_id, "none"), what="KPI: reopened")

    detail = (await get(stack, f"/v1/cases/{case_id}")).json()
    history = [h["type"] for h in detail["history"]]
    assert history[0] == "case.created"
    for expected in ("case.updated", "case.responded", "case.resolved", "case.reopened"):
        assert expected in history, history
    notes = [h for h in detail["history"] if h["detail"].get("action", {}).get("kind") == "note"]
    assert notes and notes[0]["detail"]["action"]["text"] == "pedir número de pedido"
    assert [e["mention"]["kind"] for e in detail["conversation"]] == ["mention", "reply"]


async def test_actions_are_refused_clearly(stack: Stack) -> None:
    missing = await act(stack, str(uuid.uuid4()), action="resolve")
    assert missing.status_code == 404
    incomplete = await act(stack, str(uuid.uuid4()), action="note")
    assert incomplete.status_code == 422 and "text" in incomplete.text
    unknown = await act(stack, str(uuid.uuid4()), action="dance")
    assert unknown.status_code == 422


async def scs(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [str(SCS), *args],
        env={**os.environ, "SCS_ROUTER_URL": stack.url("router"), "SCS_ADMIN_API_KEY": ADMIN_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_operators_list_show_and_act_on_cases_from_the_command_line(
    stack: Stack, receiver: Receiver
) -> None:
    conversation = f"case-cli-{uuid.uuid4().hex[:10]}"
    case_id = await open_case(stack, receiver, conversation)
    listed = await scs(stack, "cases", "list", "--limit", "200")
    assert listed.returncode == 0, listed.stderr
    assert case_id in listed.stdout
    claimed = await scs(stack, "cases", "act", case_id, "assign", "--actor", "ana")
    assert claimed.returncode == 0, claimed.stderr
    assert '"assignee": "ana"' in claimed.stdout
    shown = await scs(stack, "cases", "show", case_id)
    assert shown.returncode == 0 and f"x:{conversation}" in shown.stdout
    refused = await scs(stack, "cases", "act", case_id, "escalate", "--target", "the-ceo")
    assert refused.returncode == 1 and "unknown escalation target" in refused.stderr
    endpoints = await scs(stack, "webhooks", "list")
    assert endpoints.returncode == 0 and receiver.url in endpoints.stdout


async def test_a_handoff_carries_the_whole_conversation_and_the_notes(
    stack: Stack, receiver: Receiver
) -> None:
    conversation = f"case-handoff-{uuid.uuid4().hex[:10]}"
    kpis_before = await kpi_overall(stack)
    case_id = await open_case(stack, receiver, conversation)
    await post(stack, mention_body(conversation, "Y encima me cobráis la factura completa"))

    async def both_mentions_in_the_case() -> bool:
        detail = (await get(stack, f"/v1/cases/{case_id}")).json()
        return len(detail["conversation"]) == 2

    await eventually(both_mentions_in_the_case, what="the follow-up in the case")
    await act(stack, case_id, action="note", actor="ana", text="pide que le llamen por la tarde")
    refused = await act(stack, case_id, action="handoff", actor="ana", target="pigeon")
    assert refused.status_code == 422 and "phone" in refused.text
    handed = await act(
        stack, case_id, action="handoff", actor="ana", target="phone", text="needs the account"
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["case"]["status"] == "handed_off"

    detail = (await get(stack, f"/v1/cases/{case_id}")).json()
    handoff = next(h for h in detail["history"] if h["type"] == "case.handoff")
    package = handoff["detail"]["action"]  # the action that handed it off
    assert package["target"] == "phone"
    events = await case_events_of(stack, f"x:{conversation}", "case.handoff")
    (event,) = events
    sent = event["data"]["handoff"]["package"]
    assert [m["mention"]["text"] for m in sent["conversation"]][-1].startswith("Y encima")
    assert len(sent["conversation"]) == 2 and sent["notes"] == ["pide que le llamen por la tarde"]
    assert sent["conversation"][0]["classification"]["reasons"]
    assert sent["customer"]["handle"] and sent["clocks"] and "Call" in sent["suggested_next_step"]

    back = await act(
        stack, case_id, action="handoff_outcome", actor="phone-team", outcome="resolved"
    )
    assert back.status_code == 200 and back.json()["case"]["status"] == "resolved"

    # The KPI service counts it as handed off and resolved by the target, not in the channel.
    await eventually(
        lambda: kpi_resolution_is(stack, case_id, "handoff"), what="KPI: resolved by the target"
    )
    kpis = await kpi_overall(stack)
    assert kpis["handed_off"] >= kpis_before["handed_off"] + 1
    assert kpis["resolved_by_handoff"] >= kpis_before["resolved_by_handoff"] + 1
    assert 0 < kpis["handoff_rate"] <= 1 and kpis["social_resolution_rate"] is not None
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{stack.url('kpi')}/metrics")).text
    assert 'scs_kpi_handoff_rate_ratio{dimension="all",tenant="default",value="all"}' in metrics
    assert "scs_kpi_social_resolution_rate_ratio" in metrics


async def case_events_of(stack: Stack, key: str, event_type: str) -> list[dict[str, Any]]:
    records = await read_topic(stack.infra.bootstrap, CASES.name)
    found = [orjson.loads(r.value) for r in records if r.key == key.encode()]
    return [e for e in found if e["type"] == event_type]


# -- what the KPI service made of the case's events ------------------------------------------


async def kpi_overall(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        report = (await client.get(f"{stack.url('kpi')}/v1/kpis/sla")).json()
    overall: dict[str, Any] = report["overall"]
    return overall


async def kpi_resolution_is(stack: Stack, case_id: str, resolution: str) -> bool:
    """True once the KPI facts of the case say `resolution` (and, for a handoff, that it left
    the social channel)."""
    engine = create_async_engine(stack.infra.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT resolution, handed_off_at FROM kpi_case_facts WHERE case_id = :id"
                    ),
                    {"id": case_id},
                )
            ).first()
    finally:
        await engine.dispose()
    if row is None or row.resolution != resolution:
        return False
    return resolution != "handoff" or row.handed_off_at is not None
