"""Pure normalizers: each platform's payload in, normalized `Mention`s out. No I/O here.

Every adapter module exposes `parse(...) -> ParseResult`. Items a platform sends that are not
interactions for the brand (likes, follows, the brand's own echoes, deletions) are returned as
`Ignored` with a reason, so they are counted and logged rather than silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.events import Mention


class PayloadError(ValueError):
    """The payload is not what the platform documents; `field` names what is wrong."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Ignored:
    reason: str
    platform_id: str | None = None


@dataclass(frozen=True)
class ParseResult:
    mentions: list[Mention] = field(default_factory=list)
    ignored: list[Ignored] = field(default_factory=list)
