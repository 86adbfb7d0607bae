"""Schemathesis against each service's published OpenAPI document, on the real stack and with
the keys a client holds: whatever it generates (valid or not), no answer is a 5xx.

Bounded so the four runs take about a minute: a few examples per operation, no stateful phase.
The CLI runs in a subprocess so the session's event loop (and its webhook receiver) keeps
running meanwhile."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from tests.integration.conftest import (
    ADMIN_AUTH,
    CLASSIFIER_TOKEN,
    INGEST_TOKEN,
    REPO,
    Stack,
)

SCHEMATHESIS = REPO / ".venv" / "bin" / "schemathesis"
MAX_EXAMPLES = "20"
RUN_TIMEOUT_SECONDS = 150
# The router is fuzzed with an admin key of a tenant of its own: the fuzzer finds real ids in
# what it lists and rotates, replays and disables them, which must not reach the endpoints and
# cases the other tests share (tenant `default`).
FUZZ_TENANT = "schemathesis"
TOKENS = {
    "ingest": INGEST_TOKEN,
    "classifier": CLASSIFIER_TOKEN,
    "kpi": None,
}
# Ingest's platform webhooks take platform signatures, not the key: only 401s there.
SIGNED_ROUTES = {"ingest"}
# The event stream answers for minutes by design; the console's tests cover it. Revoking or
# rotating the fuzzer's own key would end the run (tests/integration/test_api_keys.py covers
# both).
EXCLUDED_PATHS = {
    "router": ["/v1/cases/stream", "/v1/api-keys/{key_id}", "/v1/api-keys/{key_id}/rotate"]
}


async def fuzz(stack: Stack, service: str, token: str | None) -> tuple[int, str]:
    url = stack.url(service)
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        MAX_EXAMPLES,
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "20",
        # One worker: CPython 3.11's ast module is not safe across threads, and hypothesis
        # parses lambdas' source to describe strategies (a SystemError with two workers).
        "--workers",
        "1",
        "--no-color",
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    for path in EXCLUDED_PATHS.get(service, []):
        command += ["--exclude-path", path]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"schemathesis on {service} ran past {RUN_TIMEOUT_SECONDS} s"
        ) from None
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


async def fuzzing_key(stack: Stack) -> str:
    async with httpx.AsyncClient(headers=ADMIN_AUTH) as client:
        created = await client.post(
            f"{stack.url('router')}/v1/api-keys",
            json={"name": "schemathesis", "scope": "admin", "tenant": FUZZ_TENANT},
        )
    assert created.status_code == 201, created.text
    return str(created.json()["token"])


@pytest.mark.parametrize("service", ["router", "ingest", "classifier", "kpi"])
async def test_no_generated_request_gets_a_server_error(stack: Stack, service: str) -> None:
    token = await fuzzing_key(stack) if service == "router" else TOKENS[service]
    status, output = await fuzz(stack, service, token)
    assert status == 0, output[-6000:]
    selected = re.search(r"Operations:\s+(\d+) selected", output)
    assert selected and int(selected.group(1)) > 0, output[-2000:]
    if service not in SIGNED_ROUTES:
        # Every operation got past the key: the fuzzing reached the handlers.
        assert "Authentication failed" not in output, output[-3000:]
