"""Fixtures for the platform adapter tests: payloads written from each platform's documented
format (fictional people and ids), loaded fresh for every test so tests may mutate them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.ingest.config import IngestSettings
from services.ingest.handlers import AcceptResult, MentionAcceptor, _Request
from services.ingest.main import create_app
from shared.events import Envelope, Mention

PLATFORMS = Path(__file__).parents[2] / "fixtures" / "platforms"


@pytest.fixture
def load_json() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((PLATFORMS / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def load_bytes() -> Callable[[str], bytes]:
    def load(name: str) -> bytes:
        return (PLATFORMS / name).read_bytes()

    return load


@pytest.fixture
def drop() -> Callable[[Any, str], Any]:
    """Delete the field at a dotted path (list indices as numbers) and return the payload."""

    def remove(payload: Any, path: str) -> Any:
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]
        return payload

    return remove


class RecordingAcceptor(MentionAcceptor):
    """The real acceptor (validation, queue, micro-batches) with the durable step replaced by
    a record of what would have been published: the HTTP edge can be exercised in-process."""

    def __init__(self, max_pending_mentions: int = 1_000) -> None:
        super().__init__(
            None,  # type: ignore[arg-type]  # never reached: _accept_batch does no I/O here
            None,  # type: ignore[arg-type]
            timedelta(days=1),
            1.0,
            max_pending_mentions=max_pending_mentions,
            claim_timeout=timedelta(seconds=30),
        )
        self.published: list[Envelope[Mention]] = []
        self.batches: list[int] = []

    async def _accept_batch(self, batch: list[_Request]) -> list[AcceptResult | Exception]:
        self.batches.append(len(batch))
        results: list[AcceptResult | Exception] = []
        for request in batch:
            self.published.extend(request.events)
            results.append(AcceptResult(accepted=[m.mention_id for m in request.mentions]))
        return results


TOKEN = "unit-test-ingest-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
X_SECRET = "unit-x-consumer-secret"
META_SECRET = "unit-meta-app-secret"


def ingest_app(**settings: Any) -> tuple[TestClient, RecordingAcceptor]:
    """The ingest app in-process (no lifespan: nothing connects), with a recording acceptor."""
    values: dict[str, Any] = {
        "api_token": TOKEN,
        "x_consumer_secret": X_SECRET,
        "meta_app_secret": META_SECRET,
        **settings,
    }
    app = create_app(IngestSettings.model_validate(values))
    acceptor = RecordingAcceptor()
    app.state.service.acceptor = acceptor
    return TestClient(app, raise_server_exceptions=False), acceptor
