"""The console's page and script as served: locked down by headers, and written so that text
from the API can only ever become text (no markup sinks, no inline script)."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.router import console


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
