"""`scs` commands facing a broker or database that is not there: one line that names it, exit
status 1, no traceback and no password."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.parametrize(
    ("command", "names"),
    [
        (["db", "upgrade"], "PostgreSQL at 127.0.0.1:{port}/scs"),
        (["topics", "create"], "Kafka at 127.0.0.1:{port}"),
        (["dlq", "list", "ingest.mention.v1"], "Kafka at 127.0.0.1:{port}"),
        (["dlq", "replay", "router.case.v1"], "Kafka at 127.0.0.1:{port}"),
        (
            [
                *("playbook", "replay", "deploy/playbooks/sample.yaml"),
                *("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"),
            ],
            "PostgreSQL at 127.0.0.1:{port}/scs",
        ),
    ],
)
def test_an_unreachable_dependency_is_reported_in_one_line(command: list[str], names: str) -> None:
    port = _closed_port()
    result = subprocess.run(
        [sys.executable, "-m", "scs_router.cli", *command],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "SCS_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
            "SCS_DATABASE_URL": f"postgresql://scs:hunter2-secret@127.0.0.1:{port}/scs",
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {names.format(port=port)}: ")
    assert "hunter2" not in result.stderr
