"""API keys on the real stack: keys of two tenants and three scopes, 401/403/404 per route,
queue restriction, rotation with an overlap, revocation, the audit log, and `scs keys`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.integration.conftest import ADMIN_AUTH, ADMIN_KEY, Receiver, Stack, eventually
from tests.integration.test_case_api import open_case, scs

OTHER_TENANT = "beta"


async def call(
    stack: Stack, token: str | None, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers) as client:
        return await client.request(method, f"{stack.url('router')}{path}", **kwargs)


async def new_key(stack: Stack, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(headers=auth) as client:
        response = await client.post(f"{stack.url('router')}/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["token"].startswith("scs_")
    return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['token']}"}


async def test_scopes_tenants_and_queues_decide_every_route(
    stack: Stack, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    case_id = await open_case(stack, receiver, f"keys-{suffix}")
    assert (await call(stack, None, "GET", "/v1/cases")).status_code == 401
    reader = await new_key(stack, ADMIN_AUTH, name=f"reader-{suffix}", scope="read")
    agent = await new_key(stack, ADMIN_AUTH, name=f"agent-{suffix}", scope="act")
    admin = await new_key(stack, ADMIN_AUTH, name=f"admin-{suffix}", scope="admin")
    other = await new_key(
        stack, ADMIN_AUTH, name=f"beta-{suffix}", scope="admin", tenant=OTHER_TENANT
    )
    assert other["tenant"] == OTHER_TENANT and admin["tenant"] == reader["tenant"]
    case = (await call(stack, reader["token"], "GET", f"/v1/cases/{case_id}")).json()["case"]
    mine = await new_key(
        stack, ADMIN_AUTH, name=f"mine-{suffix}", scope="act", queues=[case["queue"]]
    )
    elsewhere = await new_key(
        stack, ADMIN_AUTH, name=f"elsewhere-{suffix}", scope="act", queues=["no-such-queue"]
    )
    actions = f"/v1/cases/{case_id}/actions"
    note = {"action": "note", "actor": "ana", "text": "llamar mañana"}

    # read: reads, may not act nor administer (403 problem naming the scope needed).
    for path in ("/v1/cases", f"/v1/cases/{case_id}", "/v1/stats"):
        assert (await call(stack, reader["token"], "GET", path)).status_code == 200, path
    refused = await call(stack, reader["token"], "POST", actions, json=note)
    assert refused.status_code == 403 and "act" in refused.json()["detail"]
    assert refused.headers["content-type"] == "application/problem+json"
    for method, path in (
        ("GET", "/v1/webhook-endpoints"),
        ("GET", "/v1/api-keys"),
        ("GET", "/v1/audit"),
        ("POST", "/v1/api-keys"),
    ):
        forbidden = await call(stack, reader["token"], method, path, json={})
        assert forbidden.status_code == 403, (method, path, forbidden.text)
    # act: acts, may not administer.
    acted = await call(stack, agent["token"], "POST", actions, json=note)
    assert acted.status_code == 200, acted.text
    assert (await call(stack, agent["token"], "GET", "/v1/webhook-endpoints")).status_code == 403
    # admin: everything of its tenant.
    assert (await call(stack, admin["token"], "GET", "/v1/webhook-endpoints")).status_code == 200
    assert (await call(stack, admin["token"], "POST", actions, json=note)).status_code == 200

    # Another tenant's key: the case does not exist for it, nor its endpoints.
    assert (await call(stack, other["token"], "GET", f"/v1/cases/{case_id}")).status_code == 404
    assert (await call(stack, other["token"], "POST", actions, json=note)).status_code == 404
    listed = (await call(stack, other["token"], "GET", "/v1/cases", params={"limit": 200})).json()
    assert case_id not in [i["case"]["case_id"] for i in listed["items"]]
    stats = (await call(stack, other["token"], "GET", "/v1/stats")).json()
    assert sum(stats["cases_by_priority"].values()) == 0
    theirs = await call(
        stack,
        other["token"],
        "POST",
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "events": ["case.created"]},
    )
    assert theirs.status_code == 201, theirs.text
    endpoint = theirs.json()["id"]
    ours = (await call(stack, admin["token"], "GET", "/v1/webhook-endpoints")).json()
    assert endpoint not in [e["id"] for e in ours]
    for method, path in (
        ("PATCH", f"/v1/webhook-endpoints/{endpoint}"),
        ("GET", f"/v1/webhook-endpoints/{endpoint}/deliveries"),
        ("POST", f"/v1/webhook-endpoints/{endpoint}/test"),
        ("DELETE", f"/v1/webhook-endpoints/{endpoint}"),
    ):
        hidden = await call(stack, admin["token"], method, path, json={"enabled": False})
        assert hidden.status_code == 404, (method, path, hidden.text)
    # Keys: an admin key manages its tenant's keys only; the bootstrap key any tenant's.
    cross = await call(
        stack,
        other["token"],
        "POST",
        "/v1/api-keys",
        json={"name": "x", "scope": "read", "tenant": reader["tenant"]},
    )
    assert cross.status_code == 403
    assert (
        await call(stack, other["token"], "POST", f"/v1/api-keys/{reader['id']}/rotate")
    ).status_code == 404
    assert (
        await call(stack, other["token"], "DELETE", f"/v1/api-keys/{reader['id']}")
    ).status_code == 404
    their_keys = (await call(stack, other["token"], "GET", "/v1/api-keys")).json()
    assert {k["tenant"] for k in their_keys} == {OTHER_TENANT}
    everyone = (await call(stack, ADMIN_KEY, "GET", "/v1/api-keys")).json()
    assert {reader["id"], other["id"]} <= {k["id"] for k in everyone}
    assert all("token" not in k and "token_hash" not in k for k in everyone)
    assert (
        await call(stack, admin["token"], "DELETE", f"/v1/webhook-endpoints/{endpoint}")
    ).status_code == 404
    assert (
        await call(stack, other["token"], "DELETE", f"/v1/webhook-endpoints/{endpoint}")
    ).status_code == 204
    logged = (await call(stack, other["token"], "GET", "/v1/audit", params={"limit": 500})).json()
    assert [
        (e["operation"], e["status_code"], e["key_id"])
        for e in reversed(logged["items"])
        if e["target_id"] == endpoint
    ] == [
        ("webhook_endpoint.create", 201, other["id"]),
        ("webhook_endpoint.delete", 204, other["id"]),
    ]
    ours_logged = (
        await call(stack, admin["token"], "GET", "/v1/audit", params={"limit": 500})
    ).json()
    assert ("webhook_endpoint.delete", 404) in [
        (e["operation"], e["status_code"])
        for e in ours_logged["items"]
        if e["target_id"] == endpoint
    ]

    # Queues: a key of the case's queue sees and acts on it; a key of another queue does not.
    assert (await call(stack, mine["token"], "POST", actions, json=note)).status_code == 200
    page = (await call(stack, mine["token"], "GET", "/v1/cases", params={"limit": 200})).json()
    assert case_id in [i["case"]["case_id"] for i in page["items"]]
    assert {i["case"]["queue"] for i in page["items"]} == {case["queue"]}
    assert (await call(stack, elsewhere["token"], "GET", f"/v1/cases/{case_id}")).status_code == 404
    assert (await call(stack, elsewhere["token"], "POST", actions, json=note)).status_code == 404
    empty = (await call(stack, elsewhere["token"], "GET", "/v1/cases")).json()
    assert empty["items"] == []
    queued_admin = await call(
        stack,
        ADMIN_KEY,
        "POST",
        "/v1/api-keys",
        json={"name": "x", "scope": "admin", "queues": ["care"]},
    )
    assert queued_admin.status_code == 422  # admin keys are tenant-wide

    # Unknown and malformed keys: 401.
    for token in ("scs_" + "A" * 43, "not-a-key", reader["token"] + "x"):
        assert (await call(stack, token, "GET", "/v1/cases")).status_code == 401


async def copy_to_tenant(stack: Stack, case_id: str, tenant: str) -> str:
    """The same case stored for another tenant (as another tenant's router would store it)."""
    copy = uuid.uuid4()
    engine = create_async_engine(stack.infra.database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO router_cases (case_id, tenant, conversation_key, generation, channel,"
                " priority, status, queue, language, author_handle, opened_at,"
                " first_response_due_at, mention_count, document, sla_state, updated_at)"
                " SELECT :copy, CAST(:tenant AS varchar), conversation_key, generation, channel,"
                " priority, status, queue, language, author_handle, opened_at,"
                " first_response_due_at, mention_count, document || jsonb_build_object("
                "'tenant', CAST(:tenant AS varchar), 'case_id', CAST(:copy_text AS varchar)),"
                " sla_state, updated_at FROM router_cases WHERE case_id = :case_id"
            ),
            {"copy": copy, "copy_text": str(copy), "tenant": tenant, "case_id": uuid.UUID(case_id)},
        )
    await engine.dispose()
    return str(copy)


async def test_another_tenants_case_is_a_404_and_its_own_agents_work_it_apart(
    stack: Stack, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    ours = await open_case(stack, receiver, f"tenants-{suffix}")
    theirs = await copy_to_tenant(stack, ours, OTHER_TENANT)
    beta = await new_key(
        stack, ADMIN_AUTH, name=f"beta-agent-{suffix}", scope="act", tenant=OTHER_TENANT
    )
    alpha = await new_key(stack, ADMIN_AUTH, name=f"alpha-agent-{suffix}", scope="act")
    seen = await call(stack, beta["token"], "GET", f"/v1/cases/{theirs}")
    assert seen.status_code == 200 and seen.json()["case"]["tenant"] == OTHER_TENANT
    listed = (await call(stack, beta["token"], "GET", "/v1/cases", params={"limit": 200})).json()
    assert [i["case"]["case_id"] for i in listed["items"]] == [theirs]
    for token in (alpha["token"], ADMIN_KEY):
        assert (await call(stack, token, "GET", f"/v1/cases/{theirs}")).status_code == 404
        refused = await call(
            stack, token, "POST", f"/v1/cases/{theirs}/actions", json={"action": "resolve"}
        )
        assert refused.status_code == 404
    # The router serves every tenant: beta's agent works beta's copy, and its reply is threaded
    # into beta's conversation, never into ours of the same conversation key.
    before = (await call(stack, alpha["token"], "GET", f"/v1/cases/{ours}")).json()
    for body in (
        {"action": "reply", "actor": "bea", "text": "Hola desde beta"},
        {"action": "resolve", "actor": "bea"},
    ):
        done = await call(stack, beta["token"], "POST", f"/v1/cases/{theirs}/actions", json=body)
        assert done.status_code == 200, done.text
    after = (await call(stack, alpha["token"], "GET", f"/v1/cases/{ours}")).json()
    assert after["conversation"] == before["conversation"]
    assert after["case"]["status"] == before["case"]["status"]
    worked = (await call(stack, beta["token"], "GET", f"/v1/cases/{theirs}")).json()
    assert worked["case"]["status"] == "resolved"
    assert "Hola desde beta" in [entry["mention"]["text"] for entry in worked["conversation"]]


async def test_rotation_with_an_overlap_then_revocation(stack: Stack) -> None:
    key = await new_key(stack, ADMIN_AUTH, name=f"rotated-{uuid.uuid4().hex[:8]}", scope="read")
    old = key["token"]
    assert (await call(stack, old, "GET", "/v1/stats")).status_code == 200
    rotated = await call(
        stack,
        ADMIN_KEY,
        "POST",
        f"/v1/api-keys/{key['id']}/rotate",
        json={"overlap_seconds": 3},
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["token"]
    assert new != old and rotated.json()["id"] == key["id"]
    assert rotated.json()["previous_token_until"] is not None
    assert (await call(stack, new, "GET", "/v1/stats")).status_code == 200
    assert (await call(stack, old, "GET", "/v1/stats")).status_code == 200  # in the overlap

    async def old_refused() -> bool:
        return (await call(stack, old, "GET", "/v1/stats")).status_code == 401

    await eventually(old_refused, timeout=10, what="the old token refused after the overlap")
    assert (await call(stack, new, "GET", "/v1/stats")).status_code == 200

    again = await call(stack, ADMIN_KEY, "POST", f"/v1/api-keys/{key['id']}/rotate")
    newest = again.json()["token"]
    assert (await call(stack, new, "GET", "/v1/stats")).status_code == 401  # no overlap: at once
    assert (await call(stack, newest, "GET", "/v1/stats")).status_code == 200

    revoked = await call(stack, ADMIN_KEY, "DELETE", f"/v1/api-keys/{key['id']}")
    assert revoked.status_code == 204
    assert (await call(stack, newest, "GET", "/v1/stats")).status_code == 401  # at once
    listed = {k["id"]: k for k in (await call(stack, ADMIN_KEY, "GET", "/v1/api-keys")).json()}
    assert listed[key["id"]]["revoked_at"] is not None
    assert listed[key["id"]]["last_used_at"] is not None
    resurrect = await call(stack, ADMIN_KEY, "POST", f"/v1/api-keys/{key['id']}/rotate")
    assert resurrect.status_code == 409
    unknown = await call(stack, ADMIN_KEY, "DELETE", f"/v1/api-keys/{uuid.uuid4()}")
    assert unknown.status_code == 404


async def test_actions_and_admin_operations_are_audited_with_who_what_when_outcome(
    stack: Stack, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    started = datetime.now(UTC) - timedelta(seconds=1)
    case_id = await open_case(stack, receiver, f"audit-{suffix}")
    agent = await new_key(stack, ADMIN_AUTH, name=f"agent-{suffix}", scope="act")
    auditor = await new_key(stack, ADMIN_AUTH, name=f"auditor-{suffix}", scope="admin")
    actions = f"/v1/cases/{case_id}/actions"
    for body in (
        {"action": "assign", "actor": "ana", "assignee": "ana"},
        {"action": "reply", "actor": "ana", "text": "Hola, lo miramos ahora mismo."},
        {"action": "reopen", "actor": "ana"},  # not resolved: 409, audited all the same
    ):
        await call(stack, agent["token"], "POST", actions, json=body)

    response = await call(stack, auditor["token"], "GET", "/v1/audit", params={"case_id": case_id})
    assert response.status_code == 200, response.text
    entries = response.json()["items"]
    assert [(e["operation"], e["status_code"]) for e in reversed(entries)] == [
        ("case.assign", 200),
        ("case.reply", 200),
        ("case.reopen", 409),
    ]
    for entry in entries:
        assert entry["key_id"] == agent["id"] and entry["key_name"] == agent["name"]
        assert entry["actor"] == "ana" and entry["target_id"] == case_id
        assert started <= datetime.fromisoformat(entry["at"]) <= datetime.now(UTC)
    assert entries[-1]["detail"]["assignee"] == "ana"
    assert "Hola" not in orjson.dumps(entries).decode()  # the reply's text stays in the case

    # Admin operations: the key's creation by the bootstrap key, filtered by key and time.
    by_bootstrap = (
        await call(
            stack,
            auditor["token"],
            "GET",
            "/v1/audit",
            params={"since": started.isoformat(), "limit": 500},
        )
    ).json()["items"]
    created = [e for e in by_bootstrap if e["target_id"] == agent["id"]]
    assert [(e["operation"], e["key_name"], e["key_id"], e["status_code"]) for e in created] == [
        ("api_key.create", "bootstrap", None, 201)
    ]
    assert created[0]["detail"] == {"name": agent["name"], "scope": "act", "queues": None}
    mine = (
        await call(stack, auditor["token"], "GET", "/v1/audit", params={"key_id": agent["id"]})
    ).json()["items"]
    assert {e["operation"] for e in mine} == {"case.assign", "case.reply", "case.reopen"}

    # Pages: one entry at a time, each once, newest first.
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"case_id": case_id, "limit": 1} | (
            {"cursor": cursor} if cursor else {}
        )
        page = (await call(stack, auditor["token"], "GET", "/v1/audit", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["id"] for e in entries]

    # Another tenant's admin sees none of it.
    other = await new_key(
        stack, ADMIN_AUTH, name=f"beta-{suffix}", scope="admin", tenant=OTHER_TENANT
    )
    theirs = (
        await call(stack, other["token"], "GET", "/v1/audit", params={"case_id": case_id})
    ).json()
    assert theirs["items"] == []


async def test_operators_manage_keys_from_the_command_line(stack: Stack) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = await scs(stack, "keys", "create", name, "--scope", "act", "--queue", "care")
    assert created.returncode == 0, created.stderr
    key = orjson.loads(created.stdout)
    assert key["token"].startswith("scs_") and key["queues"] == ["care"]
    listed = await scs(stack, "keys", "list")
    assert listed.returncode == 0 and key["id"] in listed.stdout and name in listed.stdout
    assert key["token"] not in listed.stdout
    rotated = await scs(stack, "keys", "rotate", key["id"])
    assert rotated.returncode == 0, rotated.stderr
    token = orjson.loads(rotated.stdout)["token"]
    assert (await call(stack, token, "GET", "/v1/cases")).status_code == 200
    revoked = await scs(stack, "keys", "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert (await call(stack, token, "GET", "/v1/cases")).status_code == 401
    refused = await scs(stack, "keys", "revoke", str(uuid.uuid4()))
    assert refused.returncode == 1 and "404" in refused.stderr


async def move_to_queue(stack: Stack, case_id: str, queue: str) -> None:
    """Put a case in another queue, as a rule or a handoff would have."""
    engine = create_async_engine(stack.infra.database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE router_cases SET queue = CAST(:q AS varchar), document = document"
                " || jsonb_build_object('queue', CAST(:q AS varchar)) WHERE case_id = :id"
            ),
            {"q": queue, "id": uuid.UUID(case_id)},
        )
    await engine.dispose()


async def test_a_queue_key_reaches_no_other_queue_through_merge_next_or_presence(
    stack: Stack, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    ours = await open_case(stack, receiver, f"queue-merge-a-{suffix}")
    hidden = await open_case(stack, receiver, f"queue-merge-b-{suffix}")
    await move_to_queue(stack, hidden, "community-managers")
    queue = (await call(stack, ADMIN_KEY, "GET", f"/v1/cases/{ours}")).json()["case"]["queue"]
    agent_key = await new_key(stack, ADMIN_AUTH, name=f"q-{suffix}", scope="act", queues=[queue])

    absorb = {"action": "merge", "other": hidden, "actor": "ana"}
    path = f"/v1/cases/{ours}/actions"
    refused = await call(stack, agent_key["token"], "POST", path, json=absorb)
    assert refused.status_code == 404, refused.text
    untouched = (await call(stack, ADMIN_KEY, "GET", f"/v1/cases/{hidden}")).json()["case"]
    assert untouched["status"] == "open" and untouched.get("merged_into") is None
    assert (await call(stack, ADMIN_KEY, "POST", path, json=absorb)).status_code == 200

    # An agent who serves every queue, asked for through a key of one queue, gets none of the
    # others' cases; its presence is not this key's to set.
    agent = f"qa-{suffix}"
    profile = {
        "name": "QA",
        "languages": ["es", "en"],
        "skills": ["care", "community", "legal", "vip"],
        "queues": [],
        "capacity": 500,
        "presence": "online",
    }
    assert (await call(stack, ADMIN_KEY, "PUT", f"/v1/agents/{agent}", json=profile)).is_success
    try:
        lone = await new_key(
            stack, ADMIN_AUTH, name=f"cm-{suffix}", scope="act", queues=["community-managers"]
        )
        for _ in range(3):
            claimed = await call(stack, lone["token"], "POST", f"/v1/agents/{agent}/next")
            assert claimed.status_code in (200, 204), claimed.text
            if claimed.status_code == 204:
                break
            assert claimed.json()["case"]["queue"] == "community-managers"
        away = await call(
            stack, lone["token"], "PATCH", f"/v1/agents/{agent}/presence", json={"presence": "away"}
        )
        assert away.status_code == 404
    finally:
        offline = {**profile, "presence": "offline"}
        await call(stack, ADMIN_KEY, "PUT", f"/v1/agents/{agent}", json=offline)


async def test_one_idempotency_key_on_two_cases_records_both_replies(
    stack: Stack, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    cases = [await open_case(stack, receiver, f"reply-key-{n}-{suffix}") for n in range(2)]
    same = {"Idempotency-Key": str(uuid.uuid4())}
    for case_id in cases:
        reply = {"action": "reply", "actor": "ana", "text": f"Te escribimos ya ({case_id[:8]})"}
        answered = await call(
            stack, ADMIN_KEY, "POST", f"/v1/cases/{case_id}/actions", json=reply, headers=same
        )
        assert answered.status_code == 200, answered.text
    for case_id in cases:
        detail = (await call(stack, ADMIN_KEY, "GET", f"/v1/cases/{case_id}")).json()
        texts = [entry["mention"]["text"] for entry in detail["conversation"]]
        assert f"Te escribimos ya ({case_id[:8]})" in texts
        assert detail["case"]["first_response_at"] is not None
