"""No Docker engine where the tests run: validate docker-compose.yml against the Compose
Specification schema, and check the wiring the schema cannot see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return document


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests/schemas/compose-spec.json").read_text())
    document = {k: v for k, v in compose().items() if not k.startswith("x-")}
    jsonschema.Draft201909Validator(schema).validate(document)


def test_every_service_waits_for_what_it_needs_and_reports_health() -> None:
    services = compose()["services"]
    for name in ("ingest", "classifier", "router", "kpi"):
        service = services[name]
        assert service["command"] == ["serve", name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert (
            service["depends_on"]["kafka-topics"]["condition"] == "service_completed_successfully"
        )
        assert "healthcheck" in service
        port = {"ingest": 8001, "classifier": 8002, "router": 8003, "kpi": 8004}[name]
        assert f"localhost:{port}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["environment"]["SCS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["kafka-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for mounted in (
        "deploy/prometheus/prometheus.docker.yml",
        "deploy/prometheus/rules.yml",
        "deploy/grafana/provisioning",
        "deploy/grafana/dashboards",
    ):
        assert (REPO / mounted).exists(), mounted
    assert (REPO / "deploy/docker/Dockerfile").exists()


def test_prometheus_scrapes_every_service() -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.docker.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == ["classifier:8002", "ingest:8001", "kpi:8004", "router:8003"]
