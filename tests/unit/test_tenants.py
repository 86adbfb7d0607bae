"""Tenants, the pure parts: whose a mention is (the ingest credential), its tenant-scoped id,
batches grouped by tenant, and KPI figures and labels per tenant in a closed set."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.ingest.config import IngestSettings
from services.kpi.config import KpiSettings
from services.kpi.core import OTHER_TENANTS, CaseFacts, tenant_reports
from services.kpi.metrics import SlaCollector
from shared.events import (
    Channel,
    EventType,
    Mention,
    Priority,
    TraceContext,
    by_tenant,
    new_envelope,
)
from tests.unit.ingest.conftest import AUTH, PLATFORMS, TOKEN, ingest_app
from tests.unit.ingest.test_ingest_edge import x_signature
from tests.unit.test_api_auth import A_MENTION
from tests.unit.test_events import a_mention

ACME_TOKEN = "acme-ingest-token-0123456789"
GLOBEX_TOKEN = "globex-ingest-token-0123456789"
TENANT_TOKENS = {"acme": ACME_TOKEN, "globex": GLOBEX_TOKEN}


# -- ids and batches ---------------------------------------------------------------------------
def test_a_mention_id_is_scoped_to_its_tenant_and_stable() -> None:
    mention = a_mention()
    acme, globex = mention.in_tenant("acme"), mention.in_tenant("globex")
    assert acme.mention_id == Mention.id_for(Channel.X, "1", "acme")
    assert acme.mention_id == mention.in_tenant("acme").mention_id  # a redelivery: same id
    assert len({mention.mention_id, acme.mention_id, globex.mention_id}) == 3
    assert acme.model_dump(exclude={"mention_id"}) == mention.model_dump(exclude={"mention_id"})


def test_a_batch_is_grouped_by_tenant_in_order_with_tenants_sorted() -> None:
    def event(tenant: str, platform_id: str) -> Any:
        mention = a_mention(platform_id=platform_id)
        return new_envelope(
            EventType.MENTION_RECEIVED,
            mention,
            tenant=tenant,
            subject=mention.conversation_key,
            trace=TraceContext.new(),
        )

    batch = [event("b", "1"), event("a", "2"), event("b", "3"), event("a", "4")]
    groups = by_tenant(batch)
    assert list(groups) == ["a", "b"]
    assert [e.data.platform_id for e in groups["a"]] == ["2", "4"]
    assert [e.data.platform_id for e in groups["b"]] == ["1", "3"]


# -- ingest: the tenant comes from the credential -----------------------------------------------
def ingest_settings(**values: Any) -> IngestSettings:
    return IngestSettings.model_validate({"api_token": TOKEN, **values})


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ({"Acme": ACME_TOKEN}, "pattern"),  # names are a closed pattern (keys, labels)
        ({"-acme": ACME_TOKEN}, "pattern"),
        ({"a" * 64: ACME_TOKEN}, "pattern"),
        ({"acme": "short"}, r"16\+ characters"),
        ({"acme": ACME_TOKEN, "globex": ACME_TOKEN}, "its own token"),
        ({"acme": TOKEN}, "its own token"),  # the same as SCS_INGEST_API_TOKEN
    ],
)
def test_tenant_tokens_are_refused_at_start_up_when_ambiguous_or_weak(
    tokens: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        ingest_settings(tenant_tokens=tokens)


def test_tenant_tokens_come_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCS_INGEST_API_TOKEN", TOKEN)
    monkeypatch.setenv("SCS_INGEST_TENANT_TOKENS", json.dumps({"acme": ACME_TOKEN}))
    monkeypatch.setenv("SCS_TENANT", "main")
    assert IngestSettings().tenant_of_token() == {ACME_TOKEN: "acme", TOKEN: "main"}


def test_each_token_publishes_as_its_tenant_with_ids_scoped_to_it() -> None:
    client, acceptor = ingest_app(tenant_tokens=TENANT_TOKENS, tenant="main")
    body = A_MENTION | {"id": "same-item"}
    for token in (TOKEN, ACME_TOKEN, GLOBEX_TOKEN):
        response = client.post(
            "/v1/mentions", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 202, response.text
    published = [(e.tenant, e.data.mention_id) for e in acceptor.published]
    assert published == [
        (tenant, Mention.id_for(Channel.WEB, "same-item", tenant))
        for tenant in ("main", "acme", "globex")
    ]
    assert len({e.id for e in acceptor.published}) == 3  # event ids differ too


def test_a_token_of_no_tenant_is_401_and_platform_endpoints_follow_the_token() -> None:
    client, acceptor = ingest_app(tenant_tokens=TENANT_TOKENS)
    wrong = client.post("/v1/mentions", json=A_MENTION, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    response = client.post(
        "/v1/webhooks/google-business",
        content=(PLATFORMS / "google_business" / "reviews.json").read_bytes(),
        headers={"Authorization": f"Bearer {ACME_TOKEN}", "content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    assert acceptor.published and {e.tenant for e in acceptor.published} == {"acme"}


def test_signed_platform_webhooks_are_the_deployments_own_tenant() -> None:
    client, acceptor = ingest_app(tenant_tokens=TENANT_TOKENS, tenant="main")
    body = (PLATFORMS / "x" / "activity_tweets.json").read_bytes()
    # A tenant's bearer token does not make an X delivery that tenant's: X signs for SCS_TENANT.
    headers = {
        "x-twitter-webhooks-signature": x_signature(body),
        "Authorization": f"Bearer {ACME_TOKEN}",
    }
    response = client.post("/v1/webhooks/x", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert acceptor.published and {e.tenant for e in acceptor.published} == {"main"}


def test_the_api_token_stays_the_deployments_tenant() -> None:
    client, acceptor = ingest_app(tenant_tokens=TENANT_TOKENS)
    assert client.post("/v1/mentions", json=A_MENTION, headers=AUTH).status_code == 202
    assert [e.tenant for e in acceptor.published] == ["default"]


# -- KPI: figures per tenant, labels from a closed set -----------------------------------------
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def facts(n: int, answered: bool = True) -> CaseFacts:
    opened = NOW - timedelta(hours=2)
    return CaseFacts(
        case_id=str(n),
        channel=Channel.X,
        priority=Priority.P2,
        team="care",
        opened_at=opened,
        first_response_due_at=opened + timedelta(hours=1),
        first_response_at=opened + timedelta(minutes=10) if answered else None,
    )


def test_each_listed_tenant_has_its_own_figures_and_the_rest_are_other() -> None:
    reports = tenant_reports(
        [
            ("acme", facts(1)),
            ("acme", facts(2, answered=False)),
            ("globex", facts(3)),
            ("unlisted-1", facts(4)),
            ("unlisted-2", facts(5, answered=False)),
        ],
        ["acme", "globex", "quiet"],
        NOW,
    )
    assert list(reports) == ["acme", "globex", OTHER_TENANTS, "quiet"]
    summary = {tenant: r.overall.summary() for tenant, r in reports.items()}
    assert (summary["acme"]["cases"], summary["acme"]["responded"]) == (2, 1)
    assert (summary["globex"]["cases"], summary["globex"]["responded"]) == (1, 1)
    assert (summary[OTHER_TENANTS]["cases"], summary[OTHER_TENANTS]["breached_open"]) == (2, 1)
    assert summary["quiet"]["cases"] == 0  # listed, no case yet: zeros, not missing


def test_no_other_report_without_unlisted_tenants() -> None:
    assert list(tenant_reports([("acme", facts(1))], ["acme"], NOW)) == ["acme"]


def test_the_metrics_carry_the_tenant_label() -> None:
    reports = tenant_reports([("acme", facts(1)), ("x-unlisted", facts(2))], ["acme"], NOW)
    registry = CollectorRegistry()
    registry.register(SlaCollector(lambda: reports))
    labels = {"dimension": "all", "value": "all"}
    assert registry.get_sample_value("scs_kpi_cases", {"tenant": "acme", **labels}) == 1
    assert registry.get_sample_value("scs_kpi_cases", {"tenant": OTHER_TENANTS, **labels}) == 1
    tenants = {
        sample.labels["tenant"] for family in registry.collect() for sample in family.samples
    }
    assert tenants == {"acme", OTHER_TENANTS}


def test_kpi_tenants_are_named_by_the_pattern_and_other_is_reserved() -> None:
    assert KpiSettings(tenants=["acme"], tenant="main").reported_tenants() == ["acme", "main"]
    with pytest.raises(ValidationError, match="pattern"):
        KpiSettings(tenants=["Acme Corp"])
    with pytest.raises(ValidationError, match="unlisted"):
        KpiSettings(tenants=[OTHER_TENANTS])
