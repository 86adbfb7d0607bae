"""The console's page and script as served: locked down by headers, and written so that text
from the API can only ever become text (no markup sinks, no inline script)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.router import console, repository
from services.router.core import MentionInput, decide
from shared.events import Case
from tests.unit.router.builders import classified, sample_playbook


def client() -> TestClient:
    app = FastAPI()
    app.include_router(console.pages)
    return TestClient(app)


def test_the_page_and_its_assets_carry_a_strict_policy() -> None:
    with client() as http:
        page = http.get("/console")
        script = http.get("/console/app.js")
        missing = http.get("/console/console.py")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert missing.status_code == 404


def test_no_inline_script_handler_or_markup_sink() -> None:
    page = console.ASSETS["console.html"][0].decode()
    script = console.ASSETS["app.js"][0].decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)  # every script is a file
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handler
    assert "<style" not in page
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_a_stream_event_is_one_sse_block() -> None:
    assert console.sse("case", '{"a": 1}') == b'event: case\ndata: {"a": 1}\n\n'


# -- the stream's polling: each change once, the overlap looked at again, resync on a flood ----


def listing(case: Case, at: datetime) -> repository.CaseListing:
    return repository.CaseListing(case.model_copy(), "running", at)


async def streamed(
    monkeypatch: pytest.MonkeyPatch, polls: list[list[repository.CaseListing]]
) -> tuple[list[bytes], list[datetime | None]]:
    """What case_changes yields when successive polls find `polls` (newest first, as the
    repository answers), and the `updated_since` each poll asked for."""
    asked: list[datetime | None] = []
    remaining = list(polls)
    current: list[repository.CaseListing] = []

    async def list_cases(
        conn: Any, tenant: str, where: Any, *, after: Any, limit: int
    ) -> list[repository.CaseListing]:
        nonlocal current
        if after is None:  # a new poll; later pages continue it
            asked.append(where.updated_since)
            current = remaining.pop(0) if remaining else []
        keys = [(c.updated_at, c.case.case_id) for c in current]
        start = keys.index(after) + 1 if after is not None else 0
        return current[start : start + limit]

    async def disconnected() -> bool:
        return not remaining

    monkeypatch.setattr(repository, "list_cases", list_cases)
    monkeypatch.setattr(console, "STREAM_POLL_SECONDS", 0)
    changes = console.case_changes(
        NoDatabase(),  # type: ignore[arg-type]
        "default",
        repository.CaseFilter(),
        SINCE,
        lifetime=60,
        disconnected=disconnected,
    )
    return [chunk async for chunk in changes], asked


class NoDatabase:
    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        yield None


SINCE = datetime(2026, 11, 4, 10, 0, tzinfo=UTC)


def a_case(n: int) -> Case:
    case = decide(
        None,
        MentionInput(classified(SINCE, platform_id=str(n), conversation=f"c{n}"), "t"),
        sample_playbook(),
        SINCE,
    ).case
    assert case is not None
    return case


async def test_each_change_is_sent_once_and_the_overlap_is_polled_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one, two = a_case(1), a_case(2)
    t1, t2 = SINCE + timedelta(seconds=1), SINCE + timedelta(seconds=2)
    chunks, asked = await streamed(
        monkeypatch,
        [
            [listing(one, t1)],
            [listing(two, t2), listing(one, t1)],  # one again: inside the overlap
            [listing(one, t2 + timedelta(seconds=1)), listing(two, t2)],  # one changed again
        ],
    )
    events = [c for c in chunks if c.startswith(b"event: case")]
    ids = [orjson.loads(e.split(b"data: ", 1)[1])["case"]["case_id"] for e in events]
    assert ids == [str(one.case_id), str(two.case_id), str(one.case_id)]
    assert asked[0] == SINCE - console.STREAM_OVERLAP
    assert asked[2] == t2 - console.STREAM_OVERLAP  # the newest change sent, looked back on


def flood(count: int) -> list[repository.CaseListing]:
    """`count` changed cases, newest first."""
    return [listing(a_case(n), SINCE + timedelta(seconds=n)) for n in reversed(range(count))]


async def test_a_burst_is_read_page_by_page_and_sent_oldest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "STREAM_BATCH", 3)
    burst = flood(3 * console.STREAM_PAGES - 1)
    chunks, _ = await streamed(monkeypatch, [burst])
    events = [c for c in chunks if c.startswith(b"event: case")]
    ids = [orjson.loads(e.split(b"data: ", 1)[1])["case"]["case_id"] for e in events]
    assert ids == [str(b.case.case_id) for b in reversed(burst)]


async def test_more_changes_than_the_pages_ask_the_client_to_reload(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(console, "STREAM_BATCH", 3)
    chunks, _ = await streamed(monkeypatch, [flood(3 * console.STREAM_PAGES), []])
    assert chunks[-1].startswith(b"event: resync")
    assert not [c for c in chunks if c.startswith(b"event: case")]
