"""Pure normalizers: each platform's payload in, normalized `Mention`s out. No I/O here.

Every adapter module exposes `parse(...) -> ParseResult`. Items a platform sends that are not
interactions for the brand (likes, follows, the brand's own echoes, deletions) are returned as
`Ignored` with a reason, so they are counted and logged rather than silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.events import Mention
from shared.nlp.language import UNDETERMINED, detect_language


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


def with_language(mention: Mention) -> Mention:
    """Fill in the language when the platform gave none, so routing can segment by it.

    Uses the detector the classifier uses too (shared.nlp: stopwords and lexicons of the
    supported languages); a text it cannot place (emoji only, a URL) keeps no language rather
    than a guess.
    """
    if mention.language:
        return mention
    detected = detect_language(mention.text)
    if detected == UNDETERMINED:
        return mention
    return mention.model_copy(update={"language": detected})
