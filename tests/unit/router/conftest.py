from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

ADMIN_KEY = "0123456789abcdef-admin"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
SECRETS_KEY = Fernet.generate_key().decode()


@pytest.fixture
def router_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables a router needs to start (no broker or database is contacted)."""
    monkeypatch.setenv("SCS_ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("SCS_ROUTER_WEBHOOK_SECRETS_KEY", SECRETS_KEY)
