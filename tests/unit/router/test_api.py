"""The router's HTTP edge: the admin key is checked before a body is read, on every /v1 route
(stats included), and webhook URLs that point inside the network are refused with a 422 that
names the reason."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.router.config import RouterSettings
from services.router.main import create_app
from tests.unit.router.conftest import ADMIN_AUTH


@pytest.fixture
def client(router_env: None) -> TestClient:
    # No lifespan: nothing connects to Kafka or PostgreSQL, and no route used here needs them.
    return TestClient(create_app(RouterSettings()), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/webhook-endpoints"),
        ("GET", "/v1/webhook-endpoints"),
        ("PATCH", "/v1/webhook-endpoints/6f1c1f5e-0d3c-4c52-9d55-0e6f1c5d2b11"),
        ("GET", "/v1/stats"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key-0123456789", "Basic x"])
def test_admin_routes_refuse_before_reading_the_body(
    client: TestClient, method: str, path: str, authorization: str | None
) -> None:
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization
    # An invalid body: validated first, it would give 422; authenticated first, 401.
    response = client.request(method, path, content=b"{not json", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://localhost:8443/hooks", "loopback"),
        ("https://[::1]/hooks", "loopback"),
        ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
        ("https://10.0.0.5/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://100.64.0.1/hooks", "CGNAT"),
        ("https://0.0.0.0/hooks", "unspecified"),
        ("https://224.0.0.1/hooks", "multicast"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("http://93.184.215.14/hooks", "https"),
        ("https://no-such-host.invalid/hooks", "does not resolve"),
    ],
)
def test_webhook_urls_inside_the_network_are_refused_naming_why(
    client: TestClient, url: str, reason: str
) -> None:
    response = client.post(
        "/v1/webhook-endpoints", headers=ADMIN_AUTH, json={"url": url, "events": ["case.created"]}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "url"
    assert reason in problem["errors"][0]["message"] and reason in problem["detail"]


def test_every_v1_route_refuses_a_request_without_the_key(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    routes = [(m, p) for p, item in paths.items() if p.startswith("/v1") for m in item]
    assert len(routes) >= 12
    for method, path in routes:
        concrete = path.replace("{case_id}", "c").replace("{endpoint_id}", "e")
        concrete = concrete.replace("{delivery_id}", "d").replace("{key_id}", "k")
        assert client.request(method, concrete).status_code == 401, (method, path)


def test_the_openapi_document_describes_every_webhook_a_desktop_can_register(
    client: TestClient,
) -> None:
    from services.router.api import WEBHOOK_EVENT_TYPES

    webhooks = client.get("/openapi.json").json()["webhooks"]
    assert sorted(webhooks) == WEBHOOK_EVENT_TYPES
    created = webhooks["case.created"]["post"]["requestBody"]["content"]["application/json"]
    assert created["schema"]["$ref"].endswith("Webhook_case_created")
