"""Helpers shared by the platform adapters: strict field access, times, text and the Mention.

Platform payloads are walked as plain JSON rather than mirrored in pydantic models: unknown
fields pass untouched (platforms add fields all the time), while a missing required field raises
`PayloadError` naming its full dotted path (e.g. ``entry.0.changes.1.value.from.id``) so the
endpoint can answer 422 with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import unescape
from typing import Any

from services.ingest.core import Ignored, ParseResult, PayloadError
from shared.events import (
    MAX_TEXT_CHARS,
    Attachment,
    Author,
    Channel,
    Mention,
    MentionKind,
    utcnow,
)

# Language codes meaning "no language": BCP 47's undetermined / no linguistic content, and X's
# tweets of only media, hashtags, mentions or cashtags.
_NO_LANGUAGE = frozenset({"und", "zxx", "qme", "qht", "qam", "qct"})
_PRIMARY_SUBTAG = re.compile(r"[a-z]{2,8}")
# Texts longer than a Mention holds (long e-mails with their quoted history) are cut to
# MAX_TEXT_CHARS_CHARS rather than rejected; `raw` keeps them whole.
# Epoch values above this are milliseconds: Meta mixes seconds and milliseconds in one payload.
_MILLIS_THRESHOLD = 100_000_000_000


class Obj:
    """A JSON object and where it sits in the payload, for error messages naming the field."""

    __slots__ = ("data", "path")

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, dict):
            raise PayloadError(f"{path or 'payload'} must be a JSON object", field=path or None)
        self.data: dict[str, Any] = data
        self.path = path

    def at(self, key: str | int) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def has(self, key: str) -> bool:
        return self.data.get(key) not in (None, "")

    def _required(self, key: str) -> Any:
        if not self.has(key):
            raise PayloadError(f"missing required field {self.at(key)}", field=self.at(key))
        return self.data[key]

    def string(self, key: str) -> str:
        """A required, non-empty string; numeric ids are accepted as their decimal string."""
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise PayloadError(f"{self.at(key)} must be a string", field=self.at(key))
        return str(value)

    def opt_string(self, key: str) -> str | None:
        return self.string(key) if self.has(key) else None

    def integer(self, key: str, default: int | None = None) -> int:
        """An integer (or its decimal string); required unless a default is given."""
        if default is not None and not self.has(key):
            return default
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise PayloadError(f"{self.at(key)} must be an integer", field=self.at(key))
        try:
            return int(value)
        except ValueError as exc:
            raise PayloadError(f"{self.at(key)} must be an integer", field=self.at(key)) from exc

    def flag(self, key: str) -> bool:
        return self.data.get(key) is True

    def obj(self, key: str) -> Obj:
        return Obj(self._required(key), self.at(key))

    def opt_obj(self, key: str) -> Obj | None:
        return self.obj(key) if self.has(key) else None

    def objs(self, key: str) -> list[Obj]:
        """The objects of an optional list field (absent → empty)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise PayloadError(f"{self.at(key)} must be a list", field=self.at(key))
        return [Obj(item, f"{self.at(key)}.{index}") for index, item in enumerate(value)]

    def strings(self, key: str) -> list[str]:
        """The strings of an optional list field (absent → empty)."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise PayloadError(f"{self.at(key)} must be a list of strings", field=self.at(key))
        return value

    def req_objs(self, key: str) -> list[Obj]:
        self._required(key)
        return self.objs(key)

    def many(self, key: str) -> list[Obj]:
        """A required field holding one object or a list of them (APIs return both shapes)."""
        if isinstance(self._required(key), dict):
            return [self.obj(key)]
        return self.objs(key)

    def time(self, key: str, fmt: str | None = None) -> datetime:
        """A required timestamp: epoch seconds or milliseconds, ISO 8601, or `fmt` (strptime)."""
        value = self._required(key)
        try:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return _from_epoch(value)
            if isinstance(value, str):
                if fmt is None and value.isdigit():
                    return _from_epoch(int(value))
                parsed = datetime.strptime(value, fmt) if fmt else datetime.fromisoformat(value)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except (ValueError, OverflowError, OSError):
            pass
        raise PayloadError(f"{self.at(key)} is not a valid timestamp", field=self.at(key))


def _from_epoch(value: float) -> datetime:
    seconds = value / 1000 if value > _MILLIS_THRESHOLD else value
    return datetime.fromtimestamp(seconds, UTC)


def pair_conversation(first: str, second: str) -> str:
    """A private conversation's id from its two parties, the same whoever writes."""
    return "-".join(sorted((first, second)))


def primary_language(tag: str | None) -> str | None:
    """BCP 47 primary subtag, lower case (of the first, for lists like Content-Language's).

    A value that is no language tag at all ('español', junk) is no language, not a refusal:
    the classifier detects one from the text.
    """
    primary = (tag or "").split(",")[0].replace("_", "-").split("-")[0].strip().lower()
    if primary in _NO_LANGUAGE or not _PRIMARY_SUBTAG.fullmatch(primary):
        return None
    return primary


def attachment(kind: str, url: str | None = None) -> Attachment:
    """Platforms say 'photo' where the pipeline says 'image'; everything else passes through."""
    return Attachment(kind="image" if kind == "photo" else kind, url=url)


# HTML beyond this is not read: the text is cut at MAX_TEXT_CHARS characters anyway, and markup is
# rarely more than ten times its text.
MAX_HTML_CHARS = 20 * MAX_TEXT_CHARS
_LINE_BREAK_TAGS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
_HIDDEN_TAGS = ("script", "style", "head", "title")
# A tag with its attributes. The quoted values are matched whole, so a `>` inside one does not
# end the tag; the pattern is an unrolled loop, so it never backtracks more than once per char.
_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>""")
_TAG_START = re.compile(r"</?[A-Za-z]")
_HIDDEN_END = {name: re.compile(rf"</{name}\b", re.IGNORECASE) for name in _HIDDEN_TAGS}


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment: entities decoded, tags, comments and scripts dropped.

    One left-to-right pass: every step moves past what it looked at, and a construct left open
    (a tag, a comment, a declaration) ends the text, so the time is linear in the input and no
    markup can raise. (The stdlib HTMLParser is quadratic on unclosed tags and raises on some
    declarations.)
    """
    html = html[:MAX_HTML_CHARS]
    parts: list[str] = []
    position, end = 0, len(html)
    while position < end:
        opening = html.find("<", position)
        if opening < 0:
            parts.append(unescape(html[position:]))
            break
        parts.append(unescape(html[position:opening]))
        if html.startswith(("<!", "<?"), opening):  # comment, doctype, CDATA, instruction
            closer = "-->" if html.startswith("<!--", opening) else ">"
            found = html.find(closer, opening + 2)
            position = end if found < 0 else found + len(closer)
            continue
        tag = _TAG.match(html, opening)
        if tag is None:
            if _TAG_START.match(html, opening):
                break  # a tag that never closes: the rest is inside it
            parts.append("<")  # a bare '<' in text, as a browser shows it
            position = opening + 1
            continue
        name = tag.group(2).lower()
        position = tag.end()
        if name in _LINE_BREAK_TAGS:
            parts.append("\n")
        elif name in _HIDDEN_END and not tag.group(1):
            hidden_end = _HIDDEN_END[name].search(html, position)
            position = end if hidden_end is None else hidden_end.start()
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def join_text(*parts: str | None) -> str:
    """Title and body (or subject and body) as one text, skipping the empty ones."""
    return "\n\n".join(part.strip() for part in parts if part and part.strip())


def brand_of(brands: Mapping[str, str] | None, *account_ids: str | None) -> str | None:
    """The brand of the first of `account_ids` that is one of the brand's accounts."""
    return next((brands[key] for key in account_ids if brands and key and key in brands), None)


def build_mention(
    *,
    channel: Channel,
    kind: MentionKind,
    platform_id: str,
    conversation_id: str,
    text: str,
    author: Author,
    created_at: datetime,
    raw: dict[str, Any],
    received_at: datetime | None,
    url: str | None = None,
    language: str | None = None,
    brand: str | None = None,
    in_reply_to: str | None = None,
    rating: float | None = None,
    attachments: list[Attachment] | None = None,
) -> Mention:
    """The one place a Mention is made: id from (channel, platform id), so redeliveries dedupe."""
    return Mention(
        mention_id=Mention.id_for(channel, platform_id),
        channel=channel,
        kind=kind,
        platform_id=platform_id,
        conversation_id=conversation_id,
        text=text[:MAX_TEXT_CHARS],
        author=author,
        created_at=created_at,
        received_at=received_at or utcnow(),
        url=url,
        language=primary_language(language),
        brand=brand,
        in_reply_to=in_reply_to,
        rating=rating,
        attachments=attachments or [],
        raw=raw,
    )


def owner_reply(
    review: Mention,
    *,
    text: str,
    created_at: datetime,
    raw: dict[str, Any],
    author_name: str | None = None,
) -> Mention:
    """The business's public answer to a review: a reply in the review's own conversation."""
    return build_mention(
        channel=review.channel,
        kind=MentionKind.REPLY,
        platform_id=f"{review.platform_id}#reply",
        conversation_id=review.conversation_id,
        text=text,
        author=Author(handle=author_name or review.brand or "owner"),
        created_at=created_at,
        raw=raw,
        received_at=review.received_at,
        url=review.url,
        brand=review.brand,
        in_reply_to=review.platform_id,
    )


def collect(outcomes: Iterable[Mention | Ignored]) -> ParseResult:
    """Sort each item's outcome into the result: a Mention, or an Ignored with its reason."""
    result = ParseResult()
    for outcome in outcomes:
        if isinstance(outcome, Ignored):
            result.ignored.append(outcome)
        else:
            result.mentions.append(outcome)
    return result
