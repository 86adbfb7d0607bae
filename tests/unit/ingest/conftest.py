"""Fixtures for the platform adapter tests: payloads written from each platform's documented
format (fictional people and ids), loaded fresh for every test so tests may mutate them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
