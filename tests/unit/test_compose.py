"""No Docker engine where the tests run: validate docker-compose.yml against the Compose
Specification schema, and check the wiring the schema cannot see."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.classifier.config import ClassifierSettings
from services.ingest.config import IngestSettings
from services.kpi.config import KpiSettings
from services.router.config import RouterSettings
from shared.settings import ConnectionSettings

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return document


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests/schemas/compose-spec.json").read_text())
    document = {k: v for k, v in compose().items() if not k.startswith("x-")}
    jsonschema.Draft201909Validator(schema).validate(document)
    # And as compose sees it once the variables are filled in.
    jsonschema.Draft201909Validator(schema).validate(resolved(document, with_secrets()))


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
        bootstrap = service["environment"]["SCS_KAFKA_BOOTSTRAP_SERVERS"]
        assert interpolate(bootstrap, {}) == "kafka:9092"
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


# --- Settings, secrets, ports and volumes ------------------------------------------------------

SERVICE_SETTINGS: dict[str, type[ConnectionSettings]] = {
    "ingest": IngestSettings,
    "classifier": ClassifierSettings,
    "router": RouterSettings,
    "kpi": KpiSettings,
    "migrate": ConnectionSettings,
    "kafka-topics": ConnectionSettings,
}
SERVICE_PORTS = {"ingest": 8001, "classifier": 8002, "router": 8003, "kpi": 8004}
# Compose refuses to start without these; none has a default anywhere.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD": "postgres",
    "GRAFANA_ADMIN_PASSWORD": "grafana",
    "SCS_ADMIN_API_KEY": "router",
    "SCS_INGEST_API_TOKEN": "ingest",
    "SCS_CLASSIFIER_API_TOKEN": "classifier",
    "SCS_ROUTER_WEBHOOK_SECRETS_KEY": "router",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|SECRETS_KEY")
# Settings a service reads that compose keeps from it on purpose: the classifier accepts the
# admin key as well as its own token, but the admin key stays with the router alone.
WITHHELD = {("classifier", "SCS_ADMIN_API_KEY")}


class MissingVariable(Exception):
    """What `docker compose` reports for ${VAR:?message} when VAR is unset or empty."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, with nested defaults."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if text.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= text[j] == "}"
                j += 1
            out.append(_expand(text[i + 2 : j - 1], env))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _expand(expression: str, env: Mapping[str, str]) -> str:
    match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])(.*))?", expression, re.DOTALL)
    assert match, expression
    name, operator, argument = match.groups()
    value = env.get(name)
    if operator is None:
        return value or ""
    missing = value is None or (operator.startswith(":") and value == "")
    if operator.endswith("-"):
        return interpolate(argument, env) if missing else str(value)
    if missing:
        raise MissingVariable(f"{name}: {interpolate(argument, env)}")
    return str(value)


def resolved(document: Any, env: Mapping[str, str]) -> Any:
    if isinstance(document, str):
        return interpolate(document, env)
    if isinstance(document, dict):
        return {key: resolved(value, env) for key, value in document.items()}
    if isinstance(document, list):
        return [resolved(item, env) for item in document]
    return document


def with_secrets(**overrides: str) -> dict[str, str]:
    return {name: f"value-of-{name.lower()}" for name in REQUIRED_SECRETS} | overrides


def setting_names(settings_class: type[BaseSettings]) -> set[str]:
    """The environment variables a settings class reads (its alias, or prefix + field name)."""
    prefix = settings_class.model_config.get("env_prefix") or ""
    names = set()
    for field_name, field in settings_class.model_fields.items():
        alias = field.validation_alias or field.alias
        if isinstance(alias, AliasChoices):
            names.add(str(alias.choices[0]))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def project_settings_classes() -> set[type[BaseSettings]]:
    found: set[type[BaseSettings]] = set()
    pending = [BaseSettings]
    while pending:
        for subclass in pending.pop().__subclasses__():
            pending.append(subclass)
            if subclass.__module__.split(".")[0] in {"shared", "services"}:
                found.add(subclass)
    return found


def env_example() -> dict[str, str | None]:
    """Variables of .env.example: the value of an active line, None for a commented one."""
    variables: dict[str, str | None] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            commented, name, value = match.groups()
            if not commented or name not in variables:
                variables[name] = None if commented else value
    return variables


def test_every_setting_of_every_settings_class_is_in_env_example() -> None:
    classes = project_settings_classes()
    assert set(SERVICE_SETTINGS.values()) <= classes
    documented = set(env_example())
    for settings_class in classes:
        names = setting_names(settings_class)
        if any(issubclass(other, settings_class) for other in classes - {settings_class}):
            # A base class: its unprefixed fields (port) are read through its subclasses.
            names = {name for name in names if name.startswith("SCS_")}
        missing = names - documented
        assert not missing, f"{settings_class.__name__}: {sorted(missing)}"


def test_every_setting_reaches_the_services_that_read_it() -> None:
    services = compose()["services"]
    for name, settings_class in SERVICE_SETTINGS.items():
        environment = services[name]["environment"]
        # Listen address and container ports are the image's, fixed so health checks and
        # published ports stay right.
        pinned = {"SCS_HOST", f"SCS_{name.upper()}_PORT"}
        withheld = {variable for service, variable in WITHHELD if service == name}
        assert not withheld & set(environment), name
        missing = setting_names(settings_class) - pinned - withheld - set(environment)
        assert not missing, f"{name}: {sorted(missing)}"
        assert environment["SCS_HOST"] == "0.0.0.0"
        if name in SERVICE_PORTS:
            assert environment[f"SCS_{name.upper()}_PORT"] == SERVICE_PORTS[name]


def test_optional_settings_pass_through_and_stay_unset_otherwise() -> None:
    router = resolved(compose(), with_secrets())["services"]["router"]["environment"]
    # A key without a value: compose passes the variable when set and leaves it unset (so the
    # service's default applies); an empty string would be a bad value.
    assert router["SCS_ROUTER_WEBHOOK_ALLOWED_NETWORKS"] is None
    assert router["SCS_TENANT"] is None
    env = with_secrets(SCS_KAFKA_BOOTSTRAP_SERVERS="broker-1:9092,broker-2:9092")
    router = resolved(compose(), env)["services"]["router"]["environment"]
    assert router["SCS_KAFKA_BOOTSTRAP_SERVERS"] == "broker-1:9092,broker-2:9092"
    assert router["SCS_ADMIN_API_KEY"] == "value-of-scs_admin_api_key"


def test_compose_refuses_to_start_without_each_required_secret() -> None:
    document = compose()
    resolved(document, with_secrets())  # all set: no error
    for secret in REQUIRED_SECRETS:
        unset = {name: value for name, value in with_secrets().items() if name != secret}
        for env in (unset, with_secrets(**{secret: ""})):
            with pytest.raises(MissingVariable, match=secret):
                resolved(document, env)
    example = env_example()
    for secret in REQUIRED_SECRETS:
        # Active and empty: a copied .env stops compose until the operator fills it in.
        assert example[secret] == "", secret


def test_no_password_or_secret_has_a_value_in_the_files() -> None:
    for name, service in compose()["services"].items():
        for variable, value in service.get("environment", {}).items():
            if SECRET_NAME.search(variable):
                assert value is None or re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(value)), (
                    f"{name}: {variable}={value}"
                )
    database_url = compose()["x-service"]["environment"]["SCS_DATABASE_URL"]
    assert "scs:${POSTGRES_PASSWORD:?" in database_url
    assert re.search(r"://[^:/]+:[^$@]+@", database_url) is None
    grafana = compose()["services"]["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for name, value in env_example().items():
        if SECRET_NAME.search(name):
            assert not value, name


def test_kafka_and_postgres_keep_their_data_on_volumes() -> None:
    document = compose()
    for service, data_dir in (
        ("kafka", document["services"]["kafka"]["environment"]["KAFKA_LOG_DIRS"]),
        ("postgres", "/var/lib/postgresql/data"),
    ):
        mounts = dict(
            reversed(volume.split(":")[:2]) for volume in document["services"][service]["volumes"]
        )
        volume = mounts.get(data_dir)
        assert volume in document["volumes"], f"{service}: {data_dir} is not on a named volume"


def test_only_the_services_and_grafana_publish_ports() -> None:
    services = resolved(compose(), with_secrets())["services"]
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    assert set(published) == {"ingest", "classifier", "router", "kpi", "grafana"}
    assert published["ingest"] == ["8001:8001"]
    for name, port in (*SERVICE_PORTS.items(), ("grafana", 3000)):
        if name != "ingest":
            assert published[name] == [f"127.0.0.1:{port}:{port}"], name
    services = resolved(compose(), with_secrets(PRIVATE_PORTS_ADDRESS="10.0.0.5"))["services"]
    assert services["router"]["ports"] == ["10.0.0.5:8003:8003"]


def test_the_services_run_without_capabilities() -> None:
    services = compose()["services"]
    for name in SERVICE_SETTINGS:
        assert services[name]["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in services[name]["security_opt"], name
    assert "USER scs" in (REPO / "deploy/docker/Dockerfile").read_text()


def test_replication_is_one_only_by_default() -> None:
    kafka = resolved(compose(), with_secrets())["services"]["kafka"]["environment"]
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    env = with_secrets(SCS_KAFKA_REPLICATION_FACTOR="3", SCS_KAFKA_MIN_INSYNC_REPLICAS="2")
    kafka = resolved(compose(), env)["services"]["kafka"]["environment"]
    for variable in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
    ):
        assert kafka[variable] == "3"
    assert kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert kafka["KAFKA_MIN_INSYNC_REPLICAS"] == "2"


# --- The image ----------------------------------------------------------------------------------


def dockerfile_copied_sources() -> set[str]:
    sources: set[str] = set()
    for line in (REPO / "deploy/docker/Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(word.startswith("--from") for word in words):
            sources.update(word.rstrip("/") for word in words[1:-1])
    return sources


def test_the_build_context_is_only_what_the_image_copies() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # everything else (.env, .venv, .state, .cache, .git) stays out
    allowed = {pattern[1:].rstrip("/") for pattern in patterns if pattern.startswith("!")}
    assert allowed == dockerfile_copied_sources()
    for source in allowed:
        assert (REPO / source).exists(), source


LOCK_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.11"}
LOCK_ENVIRONMENT |= {"sys_platform": "linux", "platform_system": "Linux"}
LOCK_ENVIRONMENT |= {"platform_machine": "x86_64", "implementation_name": "cpython"}


def locked_versions(lock_file: str) -> dict[str, Version]:
    """name -> pinned version, for the pins that apply to the image's Python 3.11 on Linux;
    every pin must carry hashes, or pip --require-hashes refuses the file."""
    text = (REPO / lock_file).read_text().replace("\\\n", " ")
    pins: dict[str, Version] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement_text, *hashes = line.split("--hash=")
        assert hashes and all(h.startswith("sha256:") for h in hashes), line[:80]
        requirement = Requirement(requirement_text.strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "=="
        if requirement.marker is None or requirement.marker.evaluate(LOCK_ENVIRONMENT):
            pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


@pytest.mark.parametrize(
    ("lock_file", "extras"),
    [("requirements.lock", []), ("requirements-transformer.lock", ["ml", "transformer"])],
)
def test_the_lock_pins_every_runtime_dependency_with_hashes(
    lock_file: str, extras: list[str]
) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = locked_versions(lock_file)
    for dependency in map(Requirement, wanted):
        name = canonicalize_name(dependency.name)
        assert name in pins, f"{lock_file} lacks {name}: run `make lock`"
        assert pins[name] in dependency.specifier, f"{lock_file}: {name}=={pins[name]}"
    dockerfile = (REPO / "deploy/docker/Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    assert "--no-deps ." in dockerfile
