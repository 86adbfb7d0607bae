"""Router metrics count a batch once, after its transaction commits: a batch whose commit fails
is redelivered and handled again, and must not be counted twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from services.router import context_store, repository
from services.router.handlers import CaseRouter
from shared.events import EventType, TraceContext, new_envelope
from shared.kafka import EventProducer
from tests.unit.router.builders import classified, sample_playbook


class CommitFails(Exception):
    pass


class FakeDatabase:
    """A database whose commits fail while `failing` is set (a connection lost at commit)."""

    def __init__(self) -> None:
        self.failing = True

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield None
        if self.failing:
            raise OperationalError("COMMIT", {}, CommitFails("connection lost"))


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("scs_router_mentions_total", {"kind": kind}) or 0.0


def case_events() -> float:
    labels = {"event_type": "case.created", "priority": "P2", "queue": "care-es"}
    return REGISTRY.get_sample_value("scs_router_case_events_total", labels) or 0.0


async def test_a_batch_whose_commit_fails_is_counted_once_when_it_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def empty_set(*args: Any) -> set[Any]:
        return set()

    async def empty_dict(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}

    async def empty_list(*args: Any, **kwargs: Any) -> list[Any]:
        return []

    async def done(*args: Any, **kwargs: Any) -> None:
        return None

    async def locked(*args: Any) -> bool:
        return True

    monkeypatch.setattr(repository, "known_mentions", empty_set)
    monkeypatch.setattr(repository, "cases_for_update", empty_dict)
    monkeypatch.setattr(repository, "subscriptions", empty_list)
    monkeypatch.setattr(repository, "open_crises_for_update", empty_dict)
    monkeypatch.setattr(repository, "unpublished_outbox", empty_list)
    for name in (
        "lock_keys",
        "upsert_cases",
        "upsert_crises",
        "add_mentions",
        "add_timers",
        "add_outbox",
        "add_case_events",
        "enqueue_deliveries",
    ):
        monkeypatch.setattr(repository, name, done)
    monkeypatch.setattr(repository, "lock_outbox_relay", locked)
    monkeypatch.setattr(context_store, "joined_cases_for_update", empty_dict)
    monkeypatch.setattr(context_store, "joined_identities", empty_dict)
    monkeypatch.setattr(context_store, "profiles", empty_dict)
    monkeypatch.setattr(context_store, "save_profiles", done)
    database = FakeDatabase()
    case_router = CaseRouter(
        database,  # type: ignore[arg-type]
        EventProducer("127.0.0.1:1", "unit"),
        sample_playbook(),
        asyncio.Event(),
    )
    item = classified(datetime(2026, 11, 25, 11, 0, tzinfo=UTC), platform_id="metrics-after-commit")
    envelope = new_envelope(
        EventType.MENTION_CLASSIFIED,
        item,
        tenant="default",
        subject=item.mention.conversation_key,
        trace=TraceContext.from_header(None),
    )
    routed_before, events_before = counted("mention"), case_events()

    with pytest.raises(OperationalError):
        await case_router.handle([envelope])
    assert (counted("mention"), case_events()) == (routed_before, events_before)

    database.failing = False
    await case_router.handle([envelope])  # the redelivery
    assert (counted("mention"), case_events()) == (routed_before + 1, events_before + 1)
