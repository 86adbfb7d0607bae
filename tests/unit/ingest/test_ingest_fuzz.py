"""Fuzz every ingest parser (pure) and every ingest endpoint (in-process, through the real app:
auth, body limit, JSON, parser, Mention limits, event size): a bad payload is a 4xx naming what
is wrong, never an exception, never a 5xx, and memory stays bounded.

Payloads are the documented fixtures with one value replaced (so the fuzz gets past the first
required field), or arbitrary JSON, deep nesting, huge strings, NUL and odd unicode.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.ingest.core import (
    ParseResult,
    PayloadError,
    email,
    google_business,
    meta,
    reddit,
    trustpilot,
    x,
    youtube,
)
from services.ingest.core._common import html_to_text
from shared.nlp.language import detect_language
from tests.unit.ingest.conftest import AUTH, META_SECRET, PLATFORMS, ingest_app
from tests.unit.ingest.test_ingest_edge import A_MENTION, x_signature

# Peak memory one request may add: bodies stay under 1 MiB, and a request is copied a few
# times (body, JSON, Mention, raw, event bytes), never without bound.
MEMORY_BOUND_BYTES = 24 * 1_048_576

ODD_STRINGS = [
    "",
    "\x00",
    "a\x00b",
    "\u202e\u200b\ufeff",
    "\ud7ff\U0010ffff",
    "İ" * 200,
    "x" * 100_000,
    "<a " * 2_000,
    "<![ x",
    "9" * 400,
]
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(ODD_STRINGS)
)
json_values = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


def deep(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for _ in range(depth):
        value = [value] if depth % 2 else {"a": value}
    return value


deeply_nested = st.integers(min_value=60, max_value=900).map(deep)
# Near and over the body limit (1 MiB): the largest requests the edge has to hold.
huge_strings = st.sampled_from(["x" * 300_000, '"' * 400_000, "ñ" * 450_000, "x" * 1_100_000])
huge_emails = st.sampled_from([300_000, 600_000, 1_040_000]).map(
    lambda n: (
        b"From: a@b.example\r\nDate: Mon, 2 Mar 2026 09:00:00 +0100\r\n"
        b"Content-Type: text/html\r\n\r\n" + b"<a " * (n // 3)
    )
)

FIXTURES: dict[str, list[str]] = {
    "x": [
        "x/activity_tweets.json",
        "x/activity_dms.json",
        "x/activity_other.json",
        "x/v2_tweets.json",
    ],
    "meta": ["meta/page_feed.json", "meta/instagram.json", "meta/messenger.json"],
    "youtube": ["youtube/comment_threads.json", "youtube/comment.json"],
    "reddit": ["reddit/comments_page.json", "reddit/self_post.json"],
    "google-business": ["google_business/reviews.json"],
    "trustpilot": ["trustpilot/reviews.json", "trustpilot/webhook.json"],
}
PARSERS: dict[str, Callable[..., ParseResult]] = {
    "x": x.parse,
    "meta": meta.parse,
    "youtube": youtube.parse,
    "reddit": reddit.parse,
    "google-business": google_business.parse,
    "trustpilot": trustpilot.parse,
}
EMAILS = sorted((PLATFORMS / "email").glob("*.eml"))


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@st.composite
def mutated_payloads(draw: st.DrawFn, adapter: str) -> Any:
    name = draw(st.sampled_from(FIXTURES[adapter]))
    document = json.loads((PLATFORMS / name).read_text(encoding="utf-8"))
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values | deeply_nested)
    path = draw(st.sampled_from(list(paths(document))))
    return replaced(document, path, draw(json_values | deeply_nested))


@st.composite
def mutated_emails(draw: st.DrawFn) -> bytes:
    message = draw(st.sampled_from(EMAILS)).read_bytes()
    cut = draw(st.integers(0, len(message)))
    insert = draw(
        st.binary(max_size=60)
        | st.sampled_from(
            [
                b"\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
                b"\r\nContent-Type: text/html; charset=x-unknown\r\n\r\n<a <b <![ x",
                b"\r\nDate: Mon, 99 Foo 99999 99:99:99 +9999\r\n",
                b"\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
                b"\r\nMessage-ID: <\x00>\r\nFrom: \x00@x\r\n",
                b"\r\nContent-Type: text/html\r\n\r\n" + b"<a " * 3_000,
                b"=?utf-8?b?////?=",
            ]
        )
    )
    return message[:cut] + insert + message[cut:]


def parses_or_names_the_problem(parse: Callable[[], ParseResult]) -> None:
    # the endpoint answers these two with a 422 naming the field; anything else is a bug
    with contextlib.suppress(PayloadError, ValidationError):
        parse()


@pytest.mark.parametrize("adapter", sorted(PARSERS))
def test_parsers_never_raise_anything_but_payload_errors(adapter: str) -> None:
    @settings(max_examples=60, deadline=None)
    @given(payload=mutated_payloads(adapter))
    def check(payload: Any) -> None:
        parses_or_names_the_problem(lambda: PARSERS[adapter](payload, brands={"1": "Aurora"}))

    check()


@settings(max_examples=100, deadline=None)
@given(message=mutated_emails() | st.binary(max_size=300))
def test_email_parser_never_raises_anything_but_payload_errors(message: bytes) -> None:
    parses_or_names_the_problem(lambda: email.parse(message))


@settings(max_examples=200, deadline=None)
@given(html=st.text(alphabet="<>!/?-=\"' &#;abp\x00\n", max_size=300) | st.text(max_size=100))
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)


def signed_headers(adapter: str, body: bytes) -> dict[str, str]:
    if adapter == "x":
        return {"x-twitter-webhooks-signature": x_signature(body)}
    if adapter == "meta":
        digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return {"X-Hub-Signature-256": f"sha256={digest}"}
    return AUTH


def encoded(payload: Any) -> bytes:
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:  # deeper than orjson writes: the stdlib can
        return json.dumps(payload).encode()


GENERIC = {**A_MENTION, "id": "p-1"}


class MemoryWatch:
    """The largest peak of traced memory any one request added (tracemalloc, this thread)."""

    def __init__(self) -> None:
        self.worst = 0
        self.worst_body = b""

    def post(self, client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> int:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        status: int = client.post(path, content=body, headers=headers).status_code
        added = tracemalloc.get_traced_memory()[1] - before
        if added > self.worst:
            self.worst, self.worst_body = added, body[:300]
        return status


def within_memory_bound(client: TestClient, run: Callable[[MemoryWatch], None]) -> None:
    # Once per process, on first use, the language detector loads its lexicons and its n-gram
    # model (about 80 MB): load them first, so the bound is on what a request adds.
    assert client.post("/v1/mentions", json=GENERIC, headers=AUTH).status_code == 202
    detect_language("qzxv wkjp yvvq")  # no known word: the n-gram model decides
    watch = MemoryWatch()
    tracemalloc.start()
    try:
        run(watch)
    finally:
        tracemalloc.stop()
    assert 0 < watch.worst < MEMORY_BOUND_BYTES, (
        f"peak {watch.worst / 1_048_576:.1f} MiB",
        watch.worst_body,
    )


@pytest.mark.parametrize("adapter", sorted(PARSERS))
def test_signed_and_unsigned_endpoints_never_answer_5xx(adapter: str) -> None:
    client, _ = ingest_app()

    def fuzz(watch: MemoryWatch) -> None:
        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(payload=mutated_payloads(adapter))
        def check(payload: Any) -> None:
            body = encoded(payload)
            headers = {"content-type": "application/json", **signed_headers(adapter, body)}
            status = watch.post(client, f"/v1/webhooks/{adapter}", body, headers)
            if adapter == "x" and x.is_crc_token(body):  # e.g. `null`: possibly a CRC answer
                assert status == 401
            else:
                assert status in (202, 400, 413, 422), body[:200]

        check()

    within_memory_bound(client, fuzz)


def test_email_endpoint_never_answers_5xx() -> None:
    client, _ = ingest_app()

    def fuzz(watch: MemoryWatch) -> None:
        @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(message=mutated_emails() | huge_emails)
        def check(message: bytes) -> None:
            status = watch.post(client, "/v1/webhooks/email", message, AUTH)
            assert status in (202, 413, 422), message[:200]

        check()

    within_memory_bound(client, fuzz)


def test_generic_endpoint_never_answers_5xx() -> None:
    client, _ = ingest_app()

    def fuzz(watch: MemoryWatch) -> None:
        @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            path=st.sampled_from(list(paths(GENERIC))) | st.just(("extra",)),
            value=json_values | deeply_nested | huge_strings,
        )
        def check(path: tuple[Any, ...], value: Any) -> None:
            body = encoded(replaced(GENERIC, path, value))
            headers = {"content-type": "application/json", **AUTH}
            status = watch.post(client, "/v1/mentions", body, headers)
            assert status in (202, 400, 413, 422), body[:200]

        check()

    within_memory_bound(client, fuzz)


@pytest.mark.parametrize(
    "path", ["/v1/mentions", *(f"/v1/webhooks/{adapter}" for adapter in sorted(PARSERS))]
)
def test_deep_nesting_and_huge_bodies_are_4xx_on_every_endpoint(path: str) -> None:
    client, _ = ingest_app()
    adapter = path.rsplit("/", 1)[-1]
    for body, expected in (
        # past the parsers' limits: RecursionError in the stdlib json module, orjson's 1024
        (b"[" * 100_000 + b"]" * 100_000, 422),
        (json.dumps(deep(200)).encode(), 422),
        (b'{"a": "' + b"x" * 1_100_000 + b'"}', 413),  # over SCS_INGEST_MAX_BODY_BYTES
    ):
        response = client.post(
            path,
            content=body,
            headers={"content-type": "application/json", **signed_headers(adapter, body)},
        )
        assert response.status_code == expected, (path, body[:40], response.text)
        assert response.headers["content-type"] == "application/problem+json"
