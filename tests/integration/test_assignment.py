"""Agents and assignment on the real stack: cases go to an agent of their language within
capacity, `next` offers the case closest to breach and never the same case twice, and an
assignee who has not answered before the SLA warning loses the case.

The router runs with a test playbook for this module: the sample's, with the cases whose text
says ASSIGNLAB routed to a queue of their own (only this module's agents serve it, so cases of
other tests never reach them), one 60-minute wall-clock SLA, and automatic assignment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import ADMIN_AUTH, Receiver, Stack, eventually
from tests.integration.test_case_api import act, get, post
from tests.integration.test_pipeline import for_conversation, mention_body

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "playbooks" / "sample.yaml"
QUEUE = "agents-lab"
SLA_MINUTES = 60
WARNING_AT = 0.8
REASSIGN_BEFORE_WARNING = 5
TEXTS = {
    "es": "ASSIGNLAB llevo tres días sin fibra y nadie me da solución, quiero una reclamación",
    "en": "ASSIGNLAB my fibre has been down for three days and nobody answers, I want to complain",
    "pt": "ASSIGNLAB estou sem internet há três dias e ninguém me responde",
    "it": "ASSIGNLAB sono senza fibra da tre giorni e nessuno mi risponde",
}


def assignment_playbook(path: Path) -> Path:
    document = yaml.safe_load(SAMPLE.read_text(encoding="utf-8"))
    document["queues"][QUEUE] = {"calendar": "around-the-clock", "languages": []}
    document["rules"].insert(
        0,
        {
            "name": "agents-lab",
            "when": {"text_matches": "ASSIGNLAB"},
            "then": {"queue": QUEUE},
            "stop": True,
        },
    )
    document["sla"] = [
        {
            "first_response_minutes": SLA_MINUTES,
            "resolution_minutes": 10 * SLA_MINUTES,
            "business_time": False,
            "warning_at": WARNING_AT,
        }
    ]
    document["assignment"] = {
        "automatic": True,
        "policy": "least_loaded",
        "reassign_before_warning_minutes": REASSIGN_BEFORE_WARNING,
        "skills": {QUEUE: ["care"]},
        "agents": {"playbook-fr": {"languages": ["fr"], "skills": ["care"], "queues": [QUEUE]}},
    }
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
async def assigning(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The router restarted on the test playbook for this module, then on its own again."""
    router = stack.services["router"]
    playbook = assignment_playbook(tmp_path_factory.mktemp("assignment") / "playbook.yaml")
    router.terminate()
    router.start(SCS_ROUTER_PLAYBOOK=str(playbook))
    await router.wait_ready()
    try:
        yield uuid.uuid4().hex[:6]
    finally:
        router.terminate()
        router.start()
        await router.wait_ready()


async def router_call(
    stack: Stack, method: str, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(headers=ADMIN_AUTH, timeout=30) as client:
        return await client.request(method, f"{stack.url('router')}{path}", json=body)


async def put_agent(stack: Stack, agent_id: str, **profile: Any) -> dict[str, Any]:
    body = {"skills": ["care"], "queues": [QUEUE], "presence": "online"} | profile
    response = await router_call(stack, "PUT", f"/v1/agents/{agent_id}", body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def open_case(
    stack: Stack, receiver: Receiver, language: str, *, created_at: datetime | None = None
) -> str:
    conversation = f"assign-{language}-{uuid.uuid4().hex[:10]}"
    body = mention_body(conversation, TEXTS[language], language=language)
    if created_at is not None:
        body["created_at"] = created_at.isoformat()
    await post(stack, body)
    created = for_conversation(conversation, "case.created")
    await eventually(lambda: bool(receiver.matching(created)), what=f"case.created {language}")
    case = receiver.matching(created)[0]["data"]["case"]
    assert case["queue"] == QUEUE, case
    return str(case["case_id"])


async def case_of(stack: Stack, case_id: str) -> dict[str, Any]:
    response = await get(stack, f"/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    return dict(response.json()["case"])


async def loads(stack: Stack) -> dict[str, int]:
    response = await get(stack, "/v1/agents")
    assert response.status_code == 200, response.text
    return {a["agent_id"]: a["load"] for a in response.json()}


async def claim(stack: Stack, agent_id: str) -> httpx.Response:
    return await router_call(stack, "POST", f"/v1/agents/{agent_id}/next")


async def test_cases_go_to_an_agent_of_their_language_within_capacity(
    stack: Stack, receiver: Receiver, assigning: str
) -> None:
    spanish, english = f"es-{assigning}", f"en-{assigning}"
    await put_agent(stack, spanish, languages=["es"], capacity=2, name="Lucía")
    await put_agent(stack, english, languages=["en"], capacity=1)

    es_case = await open_case(stack, receiver, "es")
    en_case = await open_case(stack, receiver, "en")
    waiting = await open_case(stack, receiver, "en")  # the English agent is full
    assert (await case_of(stack, es_case))["assignee"] == spanish
    assert (await case_of(stack, en_case))["assignee"] == english
    assert (await case_of(stack, waiting))["assignee"] is None
    assigned = [
        e
        for e in receiver.events
        if e["type"] == "case.updated" and e["data"]["case"]["case_id"] in (es_case, en_case)
    ]
    assert sorted(e["data"]["action"]["assignee"] for e in assigned) == sorted([spanish, english])
    assert {e["data"]["action"]["actor"] for e in assigned} == {"scs-router"}
    current = await loads(stack)
    assert (current[spanish], current[english]) == (1, 1)

    full = await claim(stack, english)
    assert full.status_code == 409, full.text
    assert "capacity" in full.json()["detail"]
    resolved = await act(stack, en_case, action="resolve", actor=english)
    assert resolved.status_code == 200, resolved.text
    claimed = await claim(stack, english)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["case"]["case_id"] == waiting
    assert claimed.json()["case"]["assignee"] == english

    away = await router_call(stack, "PATCH", f"/v1/agents/{spanish}/presence", {"presence": "away"})
    assert away.status_code == 200 and away.json()["presence"] == "away", away.text
    assert (await claim(stack, spanish)).status_code == 409
    later = await open_case(stack, receiver, "es")  # nobody online speaks Spanish now
    assert (await case_of(stack, later))["assignee"] is None
    unknown = await claim(stack, f"nobody-{assigning}")
    assert unknown.status_code == 404


async def test_next_offers_the_case_closest_to_breach_and_never_one_case_twice(
    stack: Stack, receiver: Receiver, assigning: str
) -> None:
    now = datetime.now(UTC)
    # Waiting 10, 30 and 20 minutes of a 60-minute SLA: the second is closest to breach.
    ages = [10, 30, 20, 5, 25, 15]
    cases = [
        await open_case(stack, receiver, "pt", created_at=now - timedelta(minutes=age))
        for age in ages
    ]
    assert all([(await case_of(stack, c))["assignee"] is None for c in cases])  # no agent yet
    agents = [f"pt{i}-{assigning}" for i in range(3)]
    for agent_id in agents:
        await put_agent(stack, agent_id, languages=["pt"], capacity=5)

    first = await claim(stack, agents[0])
    assert first.status_code == 200, first.text
    assert first.json()["case"]["case_id"] == cases[ages.index(max(ages))]

    # Eight claims at once for the five cases left: each case once, then nothing.
    answers = await asyncio.gather(*(claim(stack, agents[i % 3]) for i in range(8)))
    taken = [a.json()["case"]["case_id"] for a in answers if a.status_code == 200]
    assert sorted(a.status_code for a in answers) == [200] * 5 + [204] * 3, [
        a.text for a in answers
    ]
    assert len(taken) == len(set(taken)) == 5
    assert set(taken) | {first.json()["case"]["case_id"]} == set(cases)
    for answer in answers:
        if answer.status_code == 200:
            case = answer.json()["case"]
            assert (await case_of(stack, case["case_id"]))["assignee"] == case["assignee"]
    after = await loads(stack)
    assert sum(after[a] for a in agents) == len(cases)
    assert (await claim(stack, agents[0])).status_code == 204


async def test_an_assignee_who_does_not_answer_before_the_warning_loses_the_case(
    stack: Stack, receiver: Receiver, assigning: str
) -> None:
    slow, ready = f"it-a-{assigning}", f"it-b-{assigning}"
    await put_agent(stack, slow, languages=["it"], capacity=3)
    await put_agent(stack, ready, languages=["it"], capacity=3)
    # The reassignment is due REASSIGN_BEFORE_WARNING minutes before the warning: 20 s from now.
    due_in = timedelta(minutes=SLA_MINUTES * WARNING_AT - REASSIGN_BEFORE_WARNING)
    created_at = datetime.now(UTC) - due_in + timedelta(seconds=20)
    case_id = await open_case(stack, receiver, "it", created_at=created_at)
    assert (await case_of(stack, case_id))["assignee"] == slow  # equal loads: by id

    def reassigned() -> list[dict[str, Any]]:
        return [
            e
            for e in receiver.events
            if e["type"] == "case.updated"
            and e["data"]["case"]["case_id"] == case_id
            and e["data"]["case"]["assignee"] == ready
        ]

    assert not reassigned()
    await eventually(lambda: bool(reassigned()), timeout=90, what="the case reassigned")
    action = reassigned()[0]["data"]["action"]
    assert action["actor"] == "scs-router" and action["assignee"] == ready
    assert action["text"].startswith(f"reassigned: {slow} had not answered")
    assert (await case_of(stack, case_id))["assignee"] == ready
    assert (await loads(stack))[slow] == 0


async def test_playbook_and_api_agents_merge_and_bad_definitions_are_refused(
    stack: Stack, assigning: str
) -> None:
    def listed(agents: list[dict[str, Any]]) -> dict[str, Any]:
        return next(a for a in agents if a["agent_id"] == "playbook-fr")

    declared = listed((await get(stack, "/v1/agents")).json())
    assert (declared["source"], declared["presence"], declared["load"]) == (
        "playbook",
        "offline",
        0,
    )
    online = await router_call(
        stack, "PATCH", "/v1/agents/playbook-fr/presence", {"presence": "online"}
    )
    assert online.status_code == 200, online.text
    assert (online.json()["source"], online.json()["presence"]) == ("playbook", "online")
    replaced = await put_agent(stack, "playbook-fr", languages=["fr", "en"], presence="away")
    assert (replaced["source"], replaced["languages"], replaced["presence"]) == (
        "api",
        ["en", "fr"],
        "away",
    )
    assert listed((await get(stack, "/v1/agents")).json())["languages"] == ["en", "fr"]

    for body, field in (
        ({"languages": ["es"], "queues": ["nowhere"]}, "queues"),
        ({"languages": []}, "languages"),
        ({"languages": ["es"], "capacity": -1}, "capacity"),
        ({"languages": ["es"], "shoe_size": 44}, "shoe_size"),
    ):
        refused = await router_call(stack, "PUT", f"/v1/agents/bad-{assigning}", body)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    missing = await get(stack, f"/v1/agents/bad-{assigning}")
    assert missing.status_code == 404
    patched = await router_call(
        stack, "PATCH", f"/v1/agents/bad-{assigning}/presence", {"presence": "online"}
    )
    assert patched.status_code == 404
    assert (await get(stack, "/v1/agents/not a valid id")).status_code == 422
