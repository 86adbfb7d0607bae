"""`-m "not integration"` must select the unit tests and `-m integration` only tests/integration.

The integration conftest marks items in a hook that sees the whole session; a regression there
once marked every test as integration, so the unit selection was silently empty.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def collected(marker: str) -> list[str]:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"),
            *("-m", marker, "tests/unit/test_settings.py", "tests/integration/test_consumer.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize(
    ("marker", "folder"),
    [("not integration", "tests/unit/"), ("integration", "tests/integration/")],
)
def test_the_integration_marker_selects_exactly_the_integration_folder(
    marker: str, folder: str
) -> None:
    ids = collected(marker)
    assert ids, f"-m {marker!r} selected nothing"
    assert all(test_id.startswith(folder) for test_id in ids), ids
