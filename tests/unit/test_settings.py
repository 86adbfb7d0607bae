from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.ingest.config import IngestSettings
from services.router.config import RouterSettings
from shared.settings import ConnectionSettings, load_settings
from tests.unit.router.builders import SAMPLE


def test_service_and_common_prefixes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCS_INGEST_PORT", "9101")
    monkeypatch.setenv("SCS_KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("SCS_INGEST_X_CONSUMER_SECRET", "s3cret")
    monkeypatch.setenv("SCS_INGEST_API_TOKEN", "ingest-token-0123456789")
    settings = IngestSettings()
    assert settings.port == 9101
    assert settings.kafka_bootstrap_servers == "broker-a:9092,broker-b:9092"
    assert settings.x_consumer_secret is not None
    assert settings.x_consumer_secret.get_secret_value() == "s3cret"


def test_the_router_loads_its_playbook_or_names_the_line_that_is_wrong(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCS_ADMIN_API_KEY", "0123456789abcdef")
    monkeypatch.setenv(
        "SCS_ROUTER_WEBHOOK_SECRETS_KEY", "dGVzdC13ZWJob29rLXNlY3JldHMta2V5LTAxMjM0NTY="
    )
    assert RouterSettings().routing_playbook().brand == "acme"  # the sample, by default
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        SAMPLE.read_text(encoding="utf-8").replace(
            "timezone: America/Mexico_City", "timezone: Mars/Olympus"
        )
    )
    monkeypatch.setenv("SCS_ROUTER_PLAYBOOK", str(broken))
    with pytest.raises(ValueError, match="Mars/Olympus"):
        RouterSettings()
    monkeypatch.setenv("SCS_ROUTER_PLAYBOOK", str(tmp_path / "missing.yaml"))
    with pytest.raises(ValueError, match="does not point to a file"):
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
        [sys.executable, "-m", "scs_router.cli", "serve", service],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert variable in result.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://scs:pw@db.internal:5432/scs",
        "postgres://scs:pw@db.internal:5432/scs",
        "postgresql+asyncpg://scs:pw@db.internal:5432/scs",
    ],
)
def test_postgresql_urls_in_every_common_form_go_to_the_asyncpg_driver(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("SCS_DATABASE_URL", url)
    assert ConnectionSettings().database_url == "postgresql+asyncpg://scs:pw@db.internal:5432/scs"


@pytest.mark.parametrize(
    "url", ["mysql://scs@db/scs", "postgresql+psycopg2://scs@db/scs", "db.internal:5432"]
)
def test_other_database_urls_are_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("SCS_DATABASE_URL", url)
    with pytest.raises(ValueError, match="postgresql://"):
        ConnectionSettings()


def test_replication_is_configurable_and_min_insync_cannot_exceed_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = ConnectionSettings()
    assert (defaults.kafka_replication_factor, defaults.kafka_min_insync_replicas) == (1, 1)
    monkeypatch.setenv("SCS_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SCS_KAFKA_MIN_INSYNC_REPLICAS", "2")
    settings = ConnectionSettings()
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    monkeypatch.setenv("SCS_KAFKA_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ConnectionSettings)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "SCS_KAFKA_MIN_INSYNC_REPLICAS" in error and "SCS_KAFKA_REPLICATION_FACTOR" in error
