"""Helpers for the classifier tests: mentions from text, and the shared labeled data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.eval_classifier import SHARED_FILES, shared_data_dir
from services.classifier.core import Classifier
from shared.events import Author, Channel, Mention, MentionKind

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "tests" / "data" / "classifier"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MakeMention = Callable[..., Mention]


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier.default()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public labeled sets; missing data is a failure, never a skip (CI has them)."""
    directory = shared_data_dir()
    missing = [name for name in SHARED_FILES if not (directory / name).is_file()]
    if missing:
        pytest.fail(f"shared labeled data missing in {directory}: {missing} (SCS_SHARED_DATA_DIR)")
    return directory


def _mention(
    text: str,
    *,
    followers: int = 0,
    verified: bool = False,
    kind: MentionKind = MentionKind.MENTION,
    language: str | None = None,
    brand: str | None = "acme",
    seconds: float = 0.0,
    platform_id: str | None = None,
    **extra: Any,
) -> Mention:
    pid = platform_id or f"{abs(hash((text, seconds))) % 10**12}"
    return Mention(
        mention_id=Mention.id_for(Channel.X, pid),
        channel=Channel.X,
        kind=kind,
        platform_id=pid,
        conversation_id=pid,
        text=text,
        author=Author(handle="someone", followers=followers, verified=verified),
        created_at=T0 + timedelta(seconds=seconds),
        language=language,
        brand=brand,
        **extra,
    )


@pytest.fixture(scope="session")
def mention() -> MakeMention:
    return _mention
