"""API keys without a database: scope order, the token's format and hash, the key resolver's
memory, and the table of every /v1 route's scope, checked before the body is read."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from fastapi.testclient import TestClient

from services.router.access import KeyResolver
from services.router.config import RouterSettings
from services.router.core.access import (
    Caller,
    Scope,
    looks_like_token,
    new_token,
    token_hash,
)
from services.router.main import create_app
from tests.unit.router.conftest import ADMIN_AUTH, ADMIN_KEY

# Every /v1 route and the scope it needs. A route added without a line here fails
# test_the_scope_table_is_every_v1_route; one that declares another scope fails it too.
SCOPES = {
    ("GET", "/v1/cases"): Scope.READ,
    ("GET", "/v1/cases/{case_id}"): Scope.READ,
    ("GET", "/v1/stats"): Scope.READ,
    ("POST", "/v1/cases/{case_id}/actions"): Scope.ACT,
    ("POST", "/v1/webhook-endpoints"): Scope.ADMIN,
    ("GET", "/v1/webhook-endpoints"): Scope.ADMIN,
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}"): Scope.ADMIN,
    ("DELETE", "/v1/webhook-endpoints/{endpoint_id}"): Scope.ADMIN,
    ("GET", "/v1/webhook-endpoints/{endpoint_id}/deliveries"): Scope.ADMIN,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/redeliver"): Scope.ADMIN,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"): Scope.ADMIN,
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/test"): Scope.ADMIN,
    ("POST", "/v1/webhook-deliveries/{delivery_id}/redeliver"): Scope.ADMIN,
    ("POST", "/v1/api-keys"): Scope.ADMIN,
    ("GET", "/v1/api-keys"): Scope.ADMIN,
    ("POST", "/v1/api-keys/{key_id}/rotate"): Scope.ADMIN,
    ("DELETE", "/v1/api-keys/{key_id}"): Scope.ADMIN,
    ("GET", "/v1/audit"): Scope.ADMIN,
    ("GET", "/v1/cases/stream"): Scope.READ,
    ("GET", "/v1/agents"): Scope.READ,
    ("GET", "/v1/agents/{agent_id}"): Scope.READ,
    ("PUT", "/v1/agents/{agent_id}"): Scope.ADMIN,
    ("PATCH", "/v1/agents/{agent_id}/presence"): Scope.ACT,
    ("POST", "/v1/agents/{agent_id}/next"): Scope.ACT,
    ("GET", "/v1/customers/{customer_id}"): Scope.READ,
    ("PATCH", "/v1/customers/{customer_id}"): Scope.ACT,
}
TOKENS = {scope: new_token() for scope in Scope}


def key_of(scope: Scope) -> Caller:
    return Caller(tenant="t", scope=scope, key_id=uuid.uuid5(uuid.NAMESPACE_URL, scope.value))


class Lookups:
    """A key store in memory: counts the lookups a resolver makes."""

    def __init__(self, known: dict[str, Caller]) -> None:
        self.known = known
        self.asked: list[str] = []

    async def __call__(self, hashed: str) -> Caller | None:
        self.asked.append(hashed)
        return self.known.get(hashed)


@pytest.fixture
def client(router_env: None, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """No lifespan, no database (a route that reaches for one fails with a 500, never touching
    a stack that may run on this machine): keys are looked up in memory, one per scope."""
    monkeypatch.setenv("SCS_DATABASE_URL", "postgresql+asyncpg://scs:scs@127.0.0.1:9/none")
    app = create_app(RouterSettings())
    known = {token_hash(TOKENS[scope]): key_of(scope) for scope in Scope}
    app.state.service.keys = KeyResolver(Lookups(known), ADMIN_KEY, "t", cache_seconds=0)
    return TestClient(app, raise_server_exceptions=False)


def test_scopes_are_ordered_admin_act_read() -> None:
    assert Scope.ADMIN.allows(Scope.ACT) and Scope.ADMIN.allows(Scope.READ)
    assert Scope.ACT.allows(Scope.READ) and Scope.ACT.allows(Scope.ACT)
    assert not Scope.ACT.allows(Scope.ADMIN)
    assert not Scope.READ.allows(Scope.ACT)
    # Not by name: "act" < "admin" < "read" alphabetically.
    assert max(Scope, key=lambda s: s.rank) is Scope.ADMIN


def test_tokens_are_prefixed_random_and_stored_as_their_sha256() -> None:
    token = new_token()
    assert token.startswith("scs_") and len(token) == 47 and looks_like_token(token)
    assert new_token() != token
    assert token_hash(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(token_hash(token)) == 64 and token not in token_hash(token)
    for other in ("scs_short", token + "x", "xyz_" + token[4:], token[:-1] + "!", ADMIN_KEY):
        assert not looks_like_token(other), other


def test_a_caller_with_queues_sees_only_their_cases() -> None:
    everything = Caller(tenant="t", scope=Scope.READ)
    some = Caller(tenant="t", scope=Scope.READ, key_id=uuid.uuid4(), queues=frozenset({"care"}))
    assert everything.sees("legal") and everything.bootstrap
    assert some.sees("care") and not some.sees("legal") and not some.bootstrap


async def test_the_resolver_remembers_a_key_briefly_and_forgets_it_on_revocation() -> None:
    now = [100.0]
    token = new_token()
    caller = key_of(Scope.ACT)
    lookups = Lookups({token_hash(token): caller})
    keys = KeyResolver(lookups, ADMIN_KEY, "t", cache_seconds=1.0, clock=lambda: now[0])
    bearer = f"Bearer {token}"
    assert await keys.caller(bearer) == caller
    assert await keys.caller(bearer) == caller
    assert len(lookups.asked) == 1  # remembered
    now[0] += 1.01
    assert await keys.caller(bearer) == caller
    assert len(lookups.asked) == 2  # looked up again after the cache time
    lookups.known.clear()  # revoked in another replica
    assert await keys.caller(bearer) == caller  # still remembered here, < 1 s
    now[0] += 1.01
    assert await keys.caller(bearer) is None
    lookups.known[token_hash(token)] = caller
    assert await keys.caller(bearer) == caller
    lookups.known.clear()
    assert caller.key_id is not None
    keys.forget(caller.key_id)  # revoked here: at once
    assert await keys.caller(bearer) is None


async def test_the_bootstrap_key_is_admin_of_its_tenant_and_garbage_costs_no_lookup() -> None:
    lookups = Lookups({})
    keys = KeyResolver(lookups, ADMIN_KEY, "acme", cache_seconds=1.0)
    bootstrap = await keys.caller(f"Bearer {ADMIN_KEY}")
    assert bootstrap == Caller(tenant="acme", scope=Scope.ADMIN) and bootstrap.bootstrap
    for header in (None, "", f"Basic {ADMIN_KEY}", "Bearer ", "Bearer not-a-key", ADMIN_KEY):
        assert await keys.caller(header) is None
    assert lookups.asked == []
    assert await keys.caller(f"Bearer {new_token()}") is None
    assert len(lookups.asked) == 1


def test_the_scope_table_is_every_v1_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    declared = {
        (method.upper(), path): operation.get("x-required-scope")
        for path, item in paths.items()
        if path.startswith("/v1")
        for method, operation in item.items()
    }
    assert set(declared) == set(SCOPES), "add the new route and its scope to SCOPES"
    for route, scope in SCOPES.items():
        assert declared[route] == scope.value, route


def concrete(path: str) -> str:
    for name in ("case_id", "endpoint_id", "delivery_id", "key_id", "agent_id", "customer_id"):
        path = path.replace("{" + name + "}", str(uuid.uuid4()))
    return path


@pytest.mark.parametrize(("method", "path"), sorted(SCOPES))
def test_every_route_refuses_a_lower_scope_with_403_before_reading_the_body(
    client: TestClient, method: str, path: str
) -> None:
    needed = SCOPES[(method, path)]
    url = concrete(path)
    headers = {"content-type": "application/json"}
    # Not JSON: were the body read first, this would be a 400.
    for scope in Scope:
        auth = {"authorization": f"Bearer {TOKENS[scope]}"}
        response = client.request(method, url, content=b"{not json", headers=headers | auth)
        if scope.allows(needed):
            assert response.status_code not in (401, 403), (scope, response.text)
        else:
            assert response.status_code == 403, (scope, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert needed.value in response.json()["detail"]
    unknown = client.request(
        method, url, content=b"{}", headers=headers | {"authorization": f"Bearer {new_token()}"}
    )
    assert unknown.status_code == 401
    bootstrap = client.request(method, url, content=b"{not json", headers=headers | ADMIN_AUTH)
    assert bootstrap.status_code not in (401, 403)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "desk", "scope": "act", "queues": ["care\udb30\udd19"]},  # schemathesis' 500
        {"name": "desk", "scope": "act", "queues": ["Care ES"]},
        {"name": "desk\udb30", "scope": "act"},
        {"name": "desk\nline", "scope": "read"},
    ],
)
def test_key_names_and_queues_that_no_column_holds_are_422(
    client: TestClient, body: dict[str, object]
) -> None:
    response = client.post(
        "/v1/api-keys",
        content=json.dumps(body),  # json keeps lone surrogates as \\u escapes, as a client may
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/api-keys", '{"name": "desk", "scope": "act", "queues": ["a\\udb30"]}'),
        ("/v1/agents/ana", '{"name": "Ana\\uDB30", "languages": ["es"], "capacity": 3}'),
        (
            "/v1/cases/00000000-0000-0000-0000-000000000001/actions",
            '{"action": "note", "text": "\\ud800"}',
        ),
    ],
)
def test_a_lone_surrogate_in_any_body_is_422_before_the_route(
    client: TestClient, path: str, body: str
) -> None:
    method = "PUT" if path.startswith("/v1/agents") else "POST"
    response = client.request(
        method,
        path,
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"]


def test_an_emoji_escaped_as_a_surrogate_pair_is_fine() -> None:
    from shared.http import refuse_lone_surrogates

    refuse_lone_surrogates(b'{"text": "\\ud83d\\ude00 gracias"}')


def test_an_agent_name_with_nul_is_422(client: TestClient) -> None:
    """Schemathesis' 500: PostgreSQL's jsonb cannot hold NUL."""
    response = client.put(
        "/v1/agents/marta",
        json={"name": "\u0000", "languages": ["es"], "capacity": 3},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "params", [{"language": "\u00c5\u0000"}, {"queue": "care\u0000"}, {"queue": "Care ES"}]
)
def test_case_filters_that_name_nothing_are_422(client: TestClient, params: dict[str, str]) -> None:
    """Schemathesis' 500: a NUL in a filter reached PostgreSQL."""
    response = client.get(
        "/v1/cases", params=params, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert response.status_code == 422, response.text
