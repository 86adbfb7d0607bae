"""`scs ingest replay`: bulk import through the ingest API, counted, and idempotent."""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import INGEST_TOKEN, REPO, SCS, Stack

SAMPLE = REPO / "deploy" / "sample" / "mentions.ndjson"


async def replay(stack: Stack, path: Path, *extra: str, token: str = INGEST_TOKEN) -> str:
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(SCS),
            "ingest",
            "replay",
            str(path),
            "--url",
            stack.url("ingest"),
            "--token",
            token,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == (0 if token == INGEST_TOKEN else 1), result.stderr
    return result.stdout.strip().splitlines()[-1]


async def test_replay_with_a_wrong_token_fails_instead_of_rejecting_rows(
    stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "two.ndjson"
    path.write_text("".join(line + "\n" for line in SAMPLE.read_text().splitlines()[:2]))
    summary = await replay(stack, path, token="not-the-ingest-token")
    assert summary == "accepted=0 duplicate=0 rejected=0 failed=2"


async def test_replaying_the_sample_twice_accepts_once(stack: Stack) -> None:
    rows = sum(1 for line in SAMPLE.read_text().splitlines() if line.strip())
    assert rows >= 200
    first = await replay(stack, SAMPLE, "--rebase-time", "--concurrency", "16")
    assert first == f"accepted={rows} duplicate=0 rejected=0 failed=0"
    again = await replay(stack, SAMPLE, "--rate", "500")
    assert again == f"accepted=0 duplicate={rows} rejected=0 failed=0"


async def test_csv_export_with_bad_rows_is_counted(stack: Stack, tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "id",
                "channel",
                "kind",
                "text",
                "author_handle",
                "author_followers",
                "created_at",
                "conversation_id",
            ]
        )
        writer.writerow(
            [
                "csv-1",
                "facebook",
                "comment",
                "Sigo sin respuesta a mi reclamación",
                "marta",
                "40",
                "2026-03-02T10:00:00+01:00",
                "csv-conv-1",
            ]
        )
        writer.writerow(
            [
                "csv-2",
                "trustpilot",
                "review",
                "Great support, solved in minutes",
                "joe",
                "0",
                "2026-03-02T11:00:00+01:00",
                "csv-conv-2",
            ]
        )
        writer.writerow(
            [
                "csv-3",
                "myspace",
                "comment",
                "unknown channel",
                "x",
                "1",
                "2026-03-02T11:00:00+01:00",
                "csv-conv-3",
            ]
        )
    assert await replay(stack, path) == "accepted=2 duplicate=0 rejected=1 failed=0"


@pytest.mark.parametrize("line", ["not json", json.dumps([1, 2])])
async def test_unparseable_ndjson_lines_are_rejected_not_fatal(
    stack: Stack, tmp_path: Path, line: str
) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(line + "\n")
    assert await replay(stack, path) == "accepted=0 duplicate=0 rejected=1 failed=0"
