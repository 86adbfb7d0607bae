"""The agent console in a real browser (Debian's headless Chromium through its chromedriver) on
the real stack: a mention posted to ingest shows up in its queue through the live stream, and
is claimed, answered and resolved from the page. Screenshots go to the test output.

The browser is driven from a worker thread: Selenium blocks, and the session's event loop also
runs the webhook receiver."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.conftest import ADMIN_AUTH, ADMIN_KEY, INGEST_AUTH, Stack, eventually
from tests.integration.test_pipeline import mention_body

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AGENT = "agent-lucia"
# Markup a customer could write: it must show as text and never run.
HOSTILE = (
    '@AuroraTelecom sin fibra desde ayer <img src=x onerror="window.__xss=1">'
    "<script>window.__xss=2</script> quiero una reclamación"
)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = os.environ.get("SCS_STATE_DIR")
    where = Path(state) / "screenshots" if state else tmp_path_factory.mktemp("screenshots")
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the suite may run as root (CI containers)
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: webdriver.Chrome, what: str, check: Callable[[], Any]) -> Any:
    """Poll `check` until it returns something truthy (its value). The page re-renders on every
    streamed change, so an element found a moment ago may be gone: that is one more try."""
    try:
        return WebDriverWait(
            driver, 60, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
        ).until(lambda _: check())
    except TimeoutException as exc:
        raise AssertionError(f"console: {what} did not happen within 60 s") from exc


# What the page shows, read in one go (no element can go stale halfway). textContent is the
# text as the page holds it, markup characters and all.
SNAPSHOT = """
const texts = (selector) => [...document.querySelectorAll(selector)].map((n) => n.textContent);
const panel = document.getElementById("case");
const facts = {};
for (const term of document.querySelectorAll("#case-facts dt")) {
  facts[term.textContent] = term.nextElementSibling.textContent;
}
const countdown = document.querySelector(`.countdown[data-case-id="${arguments[0]}"]`);
return {
  case_id: panel.getAttribute("data-case-id"),
  status: panel.getAttribute("data-status"),
  facts,
  listed: document.querySelector(`li.case-row[data-case-id="${arguments[0]}"]`) !== null,
  countdown: countdown ? countdown.textContent : null,
  customer: texts("#conversation .mention:not(.reply) .text"),
  replies: texts("#conversation .mention.reply .text"),
  reasons: texts("#conversation .reasons li").length,
  trace: texts("#conversation details.trace li").length,
  profile: document.getElementById("profile").textContent,
  history: document.getElementById("history").textContent,
  live: document.getElementById("live").textContent,
};
"""


def page(driver: webdriver.Chrome, case_id: str = "") -> dict[str, Any]:
    shown: dict[str, Any] = driver.execute_script(SNAPSHOT, case_id)
    return shown


def work_the_case(
    driver: webdriver.Chrome, router: str, ingest: str, conversation: str, shots: Path
) -> str:
    """Sign in, see the mention arrive live, open, claim, note, answer, resolve; the case id."""
    driver.get(f"{router}/console")
    driver.find_element(By.ID, "login-key").send_keys(ADMIN_KEY)
    driver.find_element(By.ID, "login-agent").send_keys(AGENT)
    driver.find_element(By.ID, "login-go").click()
    wait_for(driver, "going live", lambda: page(driver)["live"] == "live")

    body = mention_body(conversation, HOSTILE)
    body["author"]["display_name"] = '<b onmouseover="window.__xss=3">Lucía</b>'
    body["author"]["handle"] = 'lucia"><img src=x onerror="window.__xss=4">'
    posted = httpx.post(f"{ingest}/v1/mentions", json=body, headers=INGEST_AUTH)
    assert posted.status_code == 202, posted.text

    def our_case() -> str | None:
        listed = httpx.get(f"{router}/v1/cases", params={"limit": 200}, headers=ADMIN_AUTH)
        return next(
            (
                item["case"]["case_id"]
                for item in listed.json()["items"]
                if item["case"]["conversation_key"] == f"x:{conversation}"
            ),
            None,
        )

    case_id: str = wait_for(driver, "the case opening", our_case)
    # Through the stream: the page is not reloaded.
    wait_for(driver, "the case in its queue", lambda: page(driver, case_id)["listed"])
    first = wait_for(
        driver,
        "an SLA countdown",
        lambda: re.fullmatch(r"(\d+h )?\d\dm \d\ds", page(driver, case_id)["countdown"] or ""),
    ).group(0)
    wait_for(driver, "the countdown moving", lambda: page(driver, case_id)["countdown"] != first)
    driver.save_screenshot(str(shots / "1-queue.png"))

    def open_row() -> bool:
        driver.find_element(By.CSS_SELECTOR, f'li.case-row[data-case-id="{case_id}"]').click()
        return True

    wait_for(driver, "a click on the case", open_row)
    wait_for(driver, "the case opening in the page", lambda: page(driver)["case_id"] == case_id)
    shown = wait_for(driver, "the conversation", lambda: page(driver)["customer"] and page(driver))
    assert shown["customer"] == [HOSTILE]  # shown as written, markup and all
    assert shown["facts"]["Status"] == "open" and shown["reasons"] and shown["trace"]
    assert '<b onmouseover="window.__xss=3">Lucía</b>' in shown["profile"]
    driver.save_screenshot(str(shots / "2-case.png"))

    driver.find_element(By.ID, "act-claim").click()
    wait_for(driver, "the claim", lambda: page(driver)["facts"].get("Assignee") == AGENT)

    note = "<i>check the line</i> before answering"
    driver.find_element(By.ID, "note-text").send_keys(note)
    driver.find_element(By.ID, "act-note").click()
    wait_for(driver, "the note", lambda: note in page(driver)["history"])

    reply = "Hola Lucía, lo siento: te escribimos por privado para revisar tu línea."
    driver.find_element(By.ID, "reply-text").send_keys(reply)
    driver.find_element(By.ID, "act-reply").click()
    wait_for(driver, "the reply recorded", lambda: page(driver)["status"] == "responded")
    assert page(driver)["replies"] == [reply]
    driver.save_screenshot(str(shots / "3-answered.png"))

    driver.find_element(By.ID, "act-resolve").click()
    wait_for(driver, "the resolution", lambda: page(driver)["status"] == "resolved")
    assert f"case.resolved by {AGENT}" in page(driver)["history"]
    # Resolved cases leave the default view (open, responded, handed off).
    wait_for(driver, "the case leaving the queue", lambda: not page(driver, case_id)["listed"])
    driver.save_screenshot(str(shots / "4-resolved.png"))

    # Nothing the customer wrote ran, and no element came from their text.
    assert driver.execute_script("return window.__xss === undefined")
    assert not driver.find_elements(By.CSS_SELECTOR, 'img[src="x"], #case b, #case i, #case script')
    assert sorted(p.name for p in shots.glob("*.png")) == [
        "1-queue.png",
        "2-case.png",
        "3-answered.png",
        "4-resolved.png",
    ]
    return case_id


async def test_a_mention_is_claimed_answered_and_resolved_from_the_console(
    stack: Stack,
    browser: webdriver.Chrome,
    screenshots: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    conversation = f"console-{uuid.uuid4().hex[:10]}"
    case_id = await asyncio.to_thread(
        work_the_case, browser, stack.url("router"), stack.url("ingest"), conversation, screenshots
    )
    with capsys.disabled():
        print(f"\nconsole screenshots: {screenshots}")

    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        detail = (await client.get(f"{stack.url('router')}/v1/cases/{case_id}")).json()
    assert detail["case"]["status"] == "resolved"
    assert detail["case"]["assignee"] == AGENT
    assert [e["mention"]["kind"] for e in detail["conversation"]] == ["mention", "reply"]
    actors = {h["type"]: h["detail"].get("action", {}).get("actor") for h in detail["history"]}
    assert actors["case.resolved"] == AGENT


async def test_the_console_is_locked_down_and_its_stream_needs_the_key(stack: Stack) -> None:
    router = stack.url("router")
    async with httpx.AsyncClient() as client:
        page = await client.get(f"{router}/console")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert (await client.get(f"{router}/console/app.js")).status_code == 200
        assert (await client.get(f"{router}/console/..%2Fconfig.py")).status_code == 404
        anonymous = await client.get(f"{router}/v1/cases/stream")
        assert anonymous.status_code == 401
        in_url = await client.get(f"{router}/v1/cases/stream", params={"key": ADMIN_KEY})
        assert in_url.status_code == 401  # the key is taken from the header only


async def test_the_stream_sends_each_change_of_a_case(stack: Stack) -> None:
    """What the page's live queues rest on: an action on a case arrives as a `case` event."""
    router = stack.url("router")
    conversation = f"console-stream-{uuid.uuid4().hex[:10]}"
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with httpx.AsyncClient(headers=INGEST_AUTH) as client:
        response = await client.post(
            f"{stack.url('ingest')}/v1/mentions", json=mention_body(conversation, HOSTILE)
        )
    assert response.status_code == 202

    events: list[tuple[str, dict[str, Any]]] = []

    async def listen() -> None:
        async with (
            httpx.AsyncClient(headers=ADMIN_AUTH, timeout=None) as client,
            client.stream(
                "GET", f"{router}/v1/cases/stream", params={"since": since.isoformat()}
            ) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            kind = ""
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    kind = line[len("event: ") :]
                elif line.startswith("data: "):
                    events.append((kind, orjson.loads(line[len("data: ") :])))

    listener = asyncio.create_task(listen())
    try:

        def ours() -> list[dict[str, Any]]:
            return [
                data["case"]
                for kind, data in events
                if kind == "case" and data["case"]["conversation_key"] == f"x:{conversation}"
            ]

        await eventually(lambda: bool(ours()), what="the new case on the stream")
        case_id = ours()[0]["case_id"]
        async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
            acted = await client.post(
                f"{router}/v1/cases/{case_id}/actions",
                json={"action": "assign", "actor": AGENT, "assignee": AGENT},
            )
        assert acted.status_code == 200, acted.text
        await eventually(
            lambda: any(c["assignee"] == AGENT for c in ours()), what="the claim on the stream"
        )
        sequences = [c["sequence"] for c in ours()]
        assert sequences == sorted(set(sequences))  # each change once, in order
    finally:
        listener.cancel()
