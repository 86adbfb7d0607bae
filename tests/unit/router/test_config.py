"""Router settings that guard webhooks fail fast, naming the variable."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from services.router.config import RouterSettings
from shared.settings import load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SCS_ROUTER_WEBHOOK_SECRETS_KEY", None),
        ("SCS_ROUTER_WEBHOOK_SECRETS_KEY", "not-a-fernet-key"),
        ("SCS_ROUTER_WEBHOOK_SECRETS_KEY", f"{Fernet.generate_key().decode()},short"),
        ("SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS", '["10.0.0.0/33"]'),
        ("SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS", "10.0.0.0/8"),
        ("SCS_ROUTER_WEBHOOK_ENDPOINT_CONCURRENCY", "0"),
        ("SCS_ROUTER_OUTBOX_RELAY_SECONDS", "0"),
    ],
)
def test_bad_router_settings_stop_the_start_naming_the_variable(
    router_env: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(RouterSettings)
    assert stopped.value.code == 2
    assert variable in capsys.readouterr().err


def test_secrets_keys_rotate_the_first_encrypts_all_decrypt(
    router_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("SCS_ROUTER_WEBHOOK_SECRETS_KEY", old)
    stored = RouterSettings().secrets_cipher().encrypt(b"whsec_x")
    monkeypatch.setenv("SCS_ROUTER_WEBHOOK_SECRETS_KEY", f"{new}, {old}")
    rotated = RouterSettings().secrets_cipher()
    assert rotated.decrypt(stored) == b"whsec_x"
    assert Fernet(new).decrypt(rotated.rotate(stored)) == b"whsec_x"


def test_allowed_networks_and_lease_derive_from_settings(
    router_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS", '["127.0.0.0/8", "fd12::/16"]')
    monkeypatch.setenv("SCS_ROUTER_WEBHOOK_TIMEOUT_SECONDS", "2")
    settings = RouterSettings()
    assert [str(n) for n in settings.webhook_allowed_networks] == ["127.0.0.0/8", "fd12::/16"]
    assert settings.webhook_lease_seconds > settings.webhook_timeout_seconds
