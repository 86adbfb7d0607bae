"""One customer, one case, on the real stack: a merge keeps the earliest clock and the absorbed
conversation's later mentions land in the survivor; a linked private thread's DM joins its case;
the handoff package holds the public conversation and the private thread with the SLA state;
every case webhook carries the bounded conversation and the customer's profile."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from tests.integration.conftest import ADMIN_AUTH, Receiver, Stack, eventually
from tests.integration.test_case_api import COMPLAINT, act, case_events_of, get, post, scs
from tests.integration.test_pipeline import mention_body
from tests.integration.test_webhook_retries import query

AGAIN = (
    "@AuroraTelecom os escribí ayer en X y nadie me da solución, sigo sin fibra, "
    "quiero una reclamación"
)
LATER = "@AuroraTelecom ¿alguien me va a contestar? sigo sin fibra y nadie me da solución"


def on(channel: str, conversation: str, text: str, **fields: Any) -> dict[str, Any]:
    body = mention_body(conversation, text, **fields)
    body["channel"] = channel
    return body


def created_for(receiver: Receiver, key: str) -> list[dict[str, Any]]:
    return receiver.matching(
        lambda e: e["type"] == "case.created" and e["data"]["case"]["conversation_key"] == key
    )


async def opened(stack: Stack, receiver: Receiver, body: dict[str, Any]) -> dict[str, Any]:
    """Post a mention that opens a case; the case as its case.created webhook carried it."""
    await post(stack, body)
    key = f"{body['channel']}:{body['conversation_id']}"
    await eventually(lambda: bool(created_for(receiver, key)), what=f"case.created of {key}")
    case: dict[str, Any] = created_for(receiver, key)[0]["data"]["case"]
    return case


async def conversation_of(stack: Stack, case_id: str) -> list[dict[str, Any]]:
    detail = (await get(stack, f"/v1/cases/{case_id}")).json()
    entries: list[dict[str, Any]] = detail["conversation"]
    return entries


async def test_a_merge_keeps_the_earliest_clock_and_the_absorbed_conversation_follows(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:10]
    first = await opened(stack, receiver, on("x", f"merge-x-{run}", COMPLAINT, handle=f"ana_{run}"))
    later = await opened(
        stack, receiver, on("instagram", f"merge-ig-{run}", AGAIN, handle=f"ana.p_{run}")
    )
    assert first["first_response_due_at"] <= later["first_response_due_at"]

    merged = await act(stack, later["case_id"], action="merge", actor="ana", other=first["case_id"])
    assert merged.status_code == 200, merged.text
    survivor = merged.json()["case"]
    assert survivor["case_id"] == later["case_id"]
    first_clock = next(c for c in first["clocks"] if c["kind"] == "first_response")
    kept = next(c for c in survivor["clocks"] if c["kind"] == "first_response")
    assert (
        kept["due_at"] == first_clock["due_at"] and kept["started_at"] == first_clock["started_at"]
    )
    assert survivor["first_response_due_at"] == first["first_response_due_at"]
    assert survivor["linked_conversations"] == [first["conversation_key"]]
    absorbed = (await get(stack, f"/v1/cases/{first['case_id']}")).json()["case"]
    assert absorbed["status"] == "merged" and absorbed["merged_into"] == later["case_id"]
    again = await act(stack, first["case_id"], action="assign", actor="luis")
    assert again.status_code == 409  # the absorbed case is closed for good

    # Both cases announced it (the absorbed one with case.merged).
    merged_events = await case_events_of(stack, first["conversation_key"], "case.merged")
    assert [e["data"]["case"]["merged_into"] for e in merged_events] == [later["case_id"]]

    async def absorbed_left_the_kpis() -> bool:
        survivor_id, absorbed_id = uuid.UUID(later["case_id"]), uuid.UUID(first["case_id"])
        rows = await query(
            stack,
            "SELECT case_id FROM kpi_case_facts WHERE case_id IN (:a, :b)",
            a=survivor_id,
            b=absorbed_id,
        )
        return [row[0] for row in rows] == [survivor_id]

    # One customer, one promise: the absorbed case is not counted as a second (unanswered) one.
    await eventually(absorbed_left_the_kpis, what="the absorbed case out of the KPI facts")

    await post(stack, on("x", f"merge-x-{run}", LATER, handle=f"ana_{run}"))

    async def three_in_the_survivor() -> bool:
        return len(await conversation_of(stack, later["case_id"])) == 3

    await eventually(three_in_the_survivor, what="the later tweet in the surviving case")
    assert len(created_for(receiver, first["conversation_key"])) == 1  # no second case

    def updated_by_the_tweet(event: dict[str, Any]) -> bool:
        data = event["data"]
        return bool(
            event["type"] == "case.updated"
            and data["case"]["case_id"] == later["case_id"]
            and data.get("mention")
            and data["mention"]["text"] == LATER
        )

    await eventually(lambda: bool(receiver.matching(updated_by_the_tweet)), what="its webhook")
    data = receiver.matching(updated_by_the_tweet)[0]["data"]
    assert data["conversation"]["total"] == 3 and not data["conversation"]["truncated"]
    assert data["conversation"]["href"] == f"/v1/cases/{later['case_id']}"
    channels = {i["channel"] for i in data["customer"]["identities"]}
    assert channels == {"x", "instagram"}  # the merge joined the two identities
    assert data["customer"]["case_count"] == 2


async def test_a_linked_dm_joins_the_case_and_the_handoff_carries_both_threads(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:10]
    public = await opened(
        stack,
        receiver,
        on(
            "x",
            f"link-pub-{run}",
            "@AuroraTelecom me habéis cobrado dos veces la factura, "
            "mi número de cliente os lo paso",
            handle=f"luis_{run}",
        ),
    )
    case_id = public["case_id"]
    detail = (await get(stack, f"/v1/cases/{case_id}")).json()
    move = detail["suggestions"][0]
    assert move["kind"] == "move_to_private" and move["reason"]
    assert "privado" in move["text"] and not move["missing"]
    assert detail["customer"]["identities"] == [{"channel": "x", "handle": f"luis_{run}"}]

    dm_thread = f"link-dm-{run}"
    linked = await scs(stack, "cases", "act", case_id, "link", "--conversation-id", dm_thread)
    assert linked.returncode == 0, linked.stderr
    assert orjson.loads(linked.stdout)["case"]["linked_conversations"] == [f"x:{dm_thread}"]
    twice = await act(stack, case_id, action="link", actor="ana", conversation_id=dm_thread)
    assert twice.status_code == 409

    await post(
        stack,
        on(
            "x",
            dm_thread,
            "Hola, os escribo por aquí: mi número de cliente es 4481-22",
            kind="dm",
            handle=f"luis.private_{run}",  # another account of theirs: one customer
        ),
    )

    async def dm_in_the_case() -> bool:
        return len(await conversation_of(stack, case_id)) == 2

    await eventually(dm_in_the_case, what="the DM in the public case")
    assert not created_for(receiver, f"x:{dm_thread}")  # no second case, no fresh clock
    after = (await get(stack, f"/v1/cases/{case_id}")).json()
    clocks = {c["kind"]: c["started_at"] for c in after["case"]["clocks"]}
    assert clocks == {c["kind"]: c["started_at"] for c in detail["case"]["clocks"]}
    assert [e["mention"]["kind"] for e in after["conversation"]] == ["mention", "dm"]
    handles = {i["handle"] for i in after["customer"]["identities"]}
    assert handles == {f"luis_{run}", f"luis.private_{run}"}
    assert after["customer"]["mention_count"] == 2

    handed = await act(stack, case_id, action="handoff", actor="ana", target="phone")
    assert handed.status_code == 200, handed.text
    (event,) = await case_events_of(stack, public["conversation_key"], "case.handoff")
    package = event["data"]["handoff"]["package"]
    threads = [m["mention"]["conversation_id"] for m in package["conversation"]]
    assert threads == [f"link-pub-{run}", dm_thread]
    assert package["sla_state"] in ("running", "warning") and package["clocks"]
    assert len(package["customer"]["profile"]["identities"]) == 2


async def test_every_case_webhook_carries_a_bounded_conversation_and_the_profile(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:10]
    conversation = f"window-{run}"
    case = await opened(stack, receiver, on("x", conversation, COMPLAINT, handle=f"eva_{run}"))
    for n in range(21):
        await post(stack, on("x", conversation, f"{n}: {COMPLAINT}", handle=f"eva_{run}"))

    def the_last(event: dict[str, Any]) -> bool:
        mention = event["data"].get("mention") or {}
        return bool(
            event["type"] == "case.updated"
            and event["data"]["case"]["case_id"] == case["case_id"]
            and mention.get("text") == f"20: {COMPLAINT}"
        )

    await eventually(lambda: bool(receiver.matching(the_last)), what="the 22nd mention's webhook")
    data = receiver.matching(the_last)[0]["data"]
    window = data["conversation"]
    assert window["total"] == 22 and window["truncated"] and len(window["mentions"]) == 20
    assert window["mentions"][-1]["mention"]["text"] == f"20: {COMPLAINT}"
    assert "raw" not in window["mentions"][-1]["mention"]
    assert window["mentions"][0]["classification"]["reasons"]
    assert data["customer"]["mention_count"] >= 21 and data["customer"]["sentiment"]
    created = created_for(receiver, f"x:{conversation}")[0]["data"]
    assert created["conversation"]["total"] == 1 and created["customer"]["case_count"] == 1


async def test_customers_are_read_and_corrected_by_agents_and_dms_acknowledged(
    stack: Stack, receiver: Receiver
) -> None:
    run = uuid.uuid4().hex[:10]
    dm = await opened(
        stack,
        receiver,
        on(
            "x",
            f"ack-{run}",
            "Hola, no me funciona el router desde ayer",
            kind="dm",
            handle=f"sara_{run}",
        ),
    )
    detail = (await get(stack, f"/v1/cases/{dm['case_id']}")).json()
    kinds = [e["mention"]["kind"] for e in detail["conversation"]]
    assert kinds == ["dm", "reply"]  # the playbook's automatic acknowledgement
    reference = "C-" + uuid.UUID(dm["case_id"]).hex[:8].upper()
    assert reference in detail["conversation"][1]["mention"]["text"]
    assert detail["case"]["status"] == "open" and detail["case"]["first_response_at"] is None

    customer_id = detail["customer"]["customer_id"]
    url = f"{stack.url('router')}/v1/customers/{customer_id}"
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        loyal = await client.patch(url, json={"relationship": "loyal", "vip": True})
        read = await client.get(url)
        empty = await client.patch(url, json={})
        missing = await client.get(f"{stack.url('router')}/v1/customers/{uuid.uuid4()}")
    assert loyal.status_code == 200, loyal.text
    assert read.json()["relationship"] == "loyal" and read.json()["relationship_source"] == "agent"
    assert read.json()["vip"] is True
    assert empty.status_code == 422 and missing.status_code == 404
