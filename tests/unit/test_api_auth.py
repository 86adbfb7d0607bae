from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from tests.unit.ingest.conftest import TOKEN, ingest_app

UNSIGNED_ENDPOINTS = [
    "/v1/mentions",
    "/v1/webhooks/youtube",
    "/v1/webhooks/reddit",
    "/v1/webhooks/google-business",
    "/v1/webhooks/trustpilot",
    "/v1/webhooks/email",
]
A_MENTION = {
    "channel": "web",
    "kind": "mention",
    "text": "hola",
    "author": {"handle": "ana"},
    "created_at": "2026-03-02T09:00:00+01:00",
    "conversation_id": "c-1",
}


def test_ingest_is_closed_unless_a_token_or_anonymous_access_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("SCS_INGEST_API_TOKEN", "SCS_INGEST_ALLOW_ANONYMOUS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match=r"SCS_INGEST_API_TOKEN.*SCS_INGEST_ALLOW_ANONYMOUS"):
        IngestSettings()
    monkeypatch.setenv("SCS_INGEST_API_TOKEN", "")  # compose's `${SCS_INGEST_API_TOKEN:-}`
    with pytest.raises(ValidationError, match="SCS_INGEST_API_TOKEN"):
        IngestSettings()
    monkeypatch.setenv("SCS_INGEST_ALLOW_ANONYMOUS", "true")
    assert IngestSettings().accepted_tokens() is None
    monkeypatch.setenv("SCS_INGEST_API_TOKEN", TOKEN)
    assert IngestSettings().accepted_tokens() == [TOKEN]  # a token closes it all the same


def test_ingest_without_token_stops_at_start_naming_both_variables() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scs_router.cli", "serve", "ingest"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SCS_INGEST_API_TOKEN" in result.stderr
    assert "SCS_INGEST_ALLOW_ANONYMOUS" in result.stderr


def test_empty_secrets_mean_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X_CONSUMER_SECRET", "META_APP_SECRET", "META_VERIFY_TOKEN"):
        monkeypatch.setenv(f"SCS_INGEST_{name}", "")
    monkeypatch.setenv("SCS_INGEST_API_TOKEN", TOKEN)
    settings = IngestSettings()
    assert settings.x_consumer_secret is None
    assert settings.meta_app_secret is None
    assert settings.meta_verify_token is None


def test_empty_platform_secrets_are_404_not_configured_never_500() -> None:
    client, _ = ingest_app(x_consumer_secret="", meta_app_secret="", meta_verify_token="")
    for method, path in (
        ("GET", "/v1/webhooks/x?crc_token=abc"),
        ("POST", "/v1/webhooks/x"),
        ("GET", "/v1/webhooks/meta?hub.mode=subscribe&hub.verify_token=&hub.challenge=1"),
        ("POST", "/v1/webhooks/meta"),
    ):
        response = client.request(method, path, content=b"{}")
        assert response.status_code == 404, (path, response.text)
        assert "not configured" in response.json()["detail"]


@pytest.mark.parametrize("path", UNSIGNED_ENDPOINTS)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"]
)
def test_unsigned_endpoints_need_the_token_before_the_body_is_read(
    path: str, authorization: str | None
) -> None:
    client, acceptor = ingest_app()
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    # Not JSON: were the body read first, this would be a 400 or 422, not a 401.
    response = client.post(path, content=b"{not json", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert acceptor.published == []


def test_the_token_opens_and_anonymous_mode_is_open_on_purpose() -> None:
    client, acceptor = ingest_app()
    assert client.post("/v1/mentions", json=A_MENTION).status_code == 401
    authorised = client.post(
        "/v1/mentions", json=A_MENTION, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert authorised.status_code == 202, authorised.text
    anonymous, _ = ingest_app(api_token=None, allow_anonymous=True)
    assert anonymous.post("/v1/mentions", json=A_MENTION).status_code == 202
    assert len(acceptor.published) == 1


# The router's admin key is checked before the body: tests/unit/router/test_api.py.
