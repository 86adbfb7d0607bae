"""The receiver examples in docs/examples verify what the router signs, including during a
secret rotation (two signatures), and refuse a tampered body."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from services.router.webhooks import new_secret, signed_headers
from shared.events import utcnow

EXAMPLES = Path(__file__).resolve().parents[3] / "docs" / "examples"
BODY = orjson.dumps(
    {
        "type": "case.created",
        "data": {"case": {"case_id": "c1", "queue": "care-es", "priority": "P2", "status": "open"}},
    }
)


def signed(*secrets: str) -> dict[str, str]:
    return signed_headers(list(secrets), "msg_test-1", utcnow(), BODY)


def test_the_python_receiver_accepts_either_secret_and_drops_a_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = new_secret(), new_secret()
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import receiver

    client = TestClient(receiver.app)
    for secret in (old, new):
        monkeypatch.setenv("SCS_WEBHOOK_SECRET", secret)
        assert client.post("/webhooks", content=BODY, headers=signed(new, old)).status_code == 204
    assert receiver.seen == {"msg_test-1"}
    tampered = client.post("/webhooks", content=BODY + b" ", headers=signed(new))
    assert tampered.status_code == 401


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_node_verifier_accepts_either_secret_and_refuses_a_tampered_body() -> None:
    old, new = new_secret(), new_secret()
    headers = orjson.dumps(signed(new, old)).decode()

    def node(secret: str, body: bytes) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["node", str(EXAMPLES / "verify.mjs"), secret, headers, body.decode()],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    for secret in (old, new):
        accepted = node(secret, BODY)
        assert (accepted.returncode, accepted.stdout.strip()) == (0, "case.created")
    refused = node(new, BODY + b" ")
    assert (refused.returncode, refused.stdout.strip()) == (1, "invalid")
