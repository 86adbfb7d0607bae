from __future__ import annotations

import subprocess
import sys

import pytest

from services.ingest.config import IngestSettings
from services.router.config import RouterSettings
from shared.events import Priority


def test_service_and_common_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCS_INGEST_PORT", "9101")
    monkeypatch.setenv("SCS_KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("SCS_INGEST_X_CONSUMER_SECRET", "s3cret")
    settings = IngestSettings()
    assert settings.port == 9101
    assert settings.kafka_bootstrap_servers == "broker-a:9092,broker-b:9092"
    assert settings.x_consumer_secret is not None
    assert settings.x_consumer_secret.get_secret_value() == "s3cret"


def test_router_targets_can_be_set_and_must_cover_every_priority(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCS_ADMIN_API_KEY", "0123456789abcdef")
    monkeypatch.setenv(
        "SCS_ROUTER_WEBHOOK_SECRETS_KEY", "dGVzdC13ZWJob29rLXNlY3JldHMta2V5LTAxMjM0NTY="
    )
    monkeypatch.setenv(
        "SCS_ROUTER_FIRST_RESPONSE_MINUTES", '{"P1": 10, "P2": 30, "P3": 120, "P4": 600}'
    )
    assert RouterSettings().first_response_minutes[Priority.P2] == 30
    monkeypatch.setenv("SCS_ROUTER_FIRST_RESPONSE_MINUTES", '{"P1": 10}')
    with pytest.raises(ValueError, match="missing priorities"):
        RouterSettings()


@pytest.mark.parametrize(
    ("service", "env", "variable"),
    [
        ("router", {}, "SCS_ADMIN_API_KEY"),
        ("ingest", {"SCS_KAFKA_BOOTSTRAP_SERVERS": "no-port"}, "SCS_KAFKA_BOOTSTRAP_SERVERS"),
        ("kpi", {"SCS_DATABASE_URL": "mysql://x"}, "SCS_DATABASE_URL"),
        ("classifier", {"SCS_CLASSIFIER_PORT": "70000"}, "SCS_CLASSIFIER_PORT"),
    ],
)
def test_bad_configuration_stops_the_process_at_start_naming_the_variable(
    service: str, env: dict[str, str], variable: str
) -> None:
    clean = {"PATH": "/usr/bin:/bin", **env}
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "serve", service],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert variable in result.stderr
