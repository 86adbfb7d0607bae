"""Lexicons and rules from YAML, compiled once into flat lookup tables.

The shipped files live in `lexicons/`: one `<lang>.yaml` per language, `common.yaml` and the
classifier's `rules.yaml` (thresholds and weights), kept together because a brand's directory
may override any of them; ingest's language detection reads the languages only. A brand passes
extra directories whose files of the same name are merged over them (dicts merged key by key,
lists extended, scalars replaced), and whose new `<lang>.yaml` files add languages. Every term
of every category of one language becomes a single `Entry`, so a text is scanned once whatever
the number of categories.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from shared.nlp.text import normalize, tokenize

DEFAULT_DIR = Path(__file__).parent / "lexicons"
_LANGUAGE_KEYS = frozenset(
    {
        "language",
        "stopwords",
        "marks",
        "negators",
        "intensifiers",
        "contrast",
        "question_words",
        "personal",
        "direct_address",
        "urgency",
        "polarity",
        "complaint",
        "incident",
        "request",
        "praise",
        "crisis",
        "spam",
    }
)
_COMMON_KEYS = frozenset({"symbols", "rating_words", "spam_patterns"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SentimentRules(_Frozen):
    alpha: float
    positive_at: float
    negative_at: float
    negation_window: int
    negation_factor: float
    after_contrast: float
    before_contrast: float
    incident_polarity: float
    complaint_polarity: float
    request_polarity: float
    crisis_polarity: float
    exclamation_boost: float
    exclamation_max: float
    caps_boost: float
    rating_weight: float


class ComplaintRules(_Frozen):
    incident_weight: float
    negativity_weight: float
    threshold: float
    praise_discount: float


class SpamRules(_Frozen):
    threshold: float
    term_weight: float
    pattern_weight: float
    url_weight: float
    hashtag_weight: float


class CrisisRules(_Frozen):
    categories: dict[str, float]
    per_extra_category: float
    negativity: float
    complaint: float
    reach_floor_log10: float
    reach_span_log10: float
    reach_weight: float
    verified_weight: float
    velocity_half: float
    velocity_weight: float
    gate_floor: float
    vocabulary_gate_floor: float
    complaint_negativity: float
    crisis_signal_at: float


class PriorityRules(_Frozen):
    p1_at: float
    p2_risk_at: float


class Rules(_Frozen):
    """rules.yaml, validated: a typo in a brand's override fails at load, not in production."""

    sentiment: SentimentRules
    complaint: ComplaintRules
    spam: SpamRules
    crisis: CrisisRules
    priority: PriorityRules


@dataclass(slots=True)
class Entry:
    """Everything one term means in one language; most fields stay at their neutral default."""

    term: str
    polarity: float = 0.0
    complaint: float = 0.0
    incident: str | None = None
    crisis: str | None = None
    intensifier: float = 0.0
    negator: bool = False
    contrast: bool = False
    request: bool = False
    praise: bool = False
    spam: bool = False
    urgency: bool = False
    direct: bool = False
    personal: bool = False


@dataclass(frozen=True, slots=True)
class Lexicon:
    language: str
    entries: dict[str, Entry]
    # first word of a term -> the most words any term starting with it has
    starts: dict[str, int]
    question_words: frozenset[str]
    stopwords: frozenset[str]
    marks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LexiconSet:
    languages: dict[str, Lexicon]
    rules: Rules
    symbols: dict[str, float]
    # ASCII emoticons and the other symbols (emoji) apart: ':' is in every link, emoji are rare,
    # and a text runs a pattern only when it holds one of that pattern's first characters.
    emoji_pattern: re.Pattern[str] | None
    emoji_starts: frozenset[str]
    emoticon_pattern: re.Pattern[str] | None
    emoticon_starts: frozenset[str]
    rating_pattern: re.Pattern[str]
    spam_patterns: tuple[str, ...]
    sources: tuple[str, ...] = field(default=())


def term_key(term: str) -> str:
    """The lookup key of a lexicon term: normalized words joined by one space."""
    return " ".join(tokenize(normalize(str(term))))


def _merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        return base + [item for item in extra if item not in base]
    return extra


class _LexiconLoader(yaml.SafeLoader):
    """YAML 1.1 reads `no`, `yes`, `on`, `off` as booleans; in a lexicon they are words."""


_LexiconLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LexiconLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_LexiconLoader) or {}
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return document


def _documents(dirs: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """File stem -> merged document over all dirs, later dirs winning."""
    documents: dict[str, dict[str, Any]] = {}
    for directory in dirs:
        if not directory.is_dir():
            raise FileNotFoundError(f"lexicon directory not found: {directory}")
        for path in sorted(directory.glob("*.yaml")):
            document = _read(path)
            allowed = (
                _COMMON_KEYS
                if path.stem == "common"
                else None
                if path.stem == "rules"
                else _LANGUAGE_KEYS
            )
            unknown = set(document) - allowed if allowed is not None else set()
            if unknown:
                raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
            documents[path.stem] = _merge(documents.get(path.stem, {}), document)
    return documents


def _weighted(section: Any) -> Iterable[tuple[str, float]]:
    """A category given as {term: weight} or as a plain list (weight 1)."""
    if isinstance(section, dict):
        return ((str(term), float(weight)) for term, weight in section.items())
    return ((str(term), 1.0) for term in section or ())


def _compile_language(document: dict[str, Any]) -> Lexicon:
    entries: dict[str, Entry] = {}

    def entry(term: str) -> Entry | None:
        key = term_key(term)
        if not key:
            return None
        return entries.setdefault(key, Entry(term=key))

    for term, weight in _weighted(document.get("polarity")):
        if (found := entry(term)) is not None:
            found.polarity = weight
    for term, weight in _weighted(document.get("complaint")):
        if (found := entry(term)) is not None:
            found.complaint = weight
    for term, weight in _weighted(document.get("intensifiers")):
        if (found := entry(term)) is not None:
            found.intensifier = weight
    for topic, terms in (document.get("incident") or {}).items():
        for term in terms:
            if (found := entry(term)) is not None and found.incident is None:
                found.incident = str(topic)
    for category, terms in (document.get("crisis") or {}).items():
        for term in terms:
            if (found := entry(term)) is not None and found.crisis is None:
                found.crisis = str(category)
    flags = {
        "negators": "negator",
        "contrast": "contrast",
        "request": "request",
        "praise": "praise",
        "spam": "spam",
        "urgency": "urgency",
        "direct_address": "direct",
        "personal": "personal",
    }
    for section, attribute in flags.items():
        for term in document.get(section) or ():
            if (found := entry(str(term))) is not None:
                setattr(found, attribute, True)
    starts: dict[str, int] = {}
    for key in entries:
        words = key.split(" ")
        starts[words[0]] = max(starts.get(words[0], 0), len(words))
    return Lexicon(
        language=str(document["language"]),
        entries=entries,
        starts=starts,
        question_words=frozenset(term_key(str(t)) for t in document.get("question_words") or ()),
        stopwords=frozenset(term_key(str(t)) for t in document.get("stopwords") or ()),
        marks=tuple(str(mark) for mark in document.get("marks") or ()),
    )


def _symbol_pattern(symbols: Iterable[str], suffix: str = "") -> re.Pattern[str] | None:
    ordered = sorted(symbols, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(f"(?:{'|'.join(re.escape(symbol) for symbol in ordered)}){suffix}")


def _rating_pattern(words: Iterable[str]) -> re.Pattern[str]:
    star_words = "|".join(sorted((re.escape(term_key(w)) for w in words), key=len, reverse=True))
    # Both alternatives start with a digit; the leading lookahead says so to the regex engine,
    # which then skips to the next digit in C instead of trying both at every character.
    return re.compile(
        rf"(?=[0-9])(?:(\d(?:[.,]5)?)\s*(?:/|out of|de|sur|su|von)\s*(5|10)(?![\d/])"
        rf"|([0-5])\s*(?:{star_words})\b)"
    )


def load_lexicons(extra_dirs: Sequence[Path | str] = ()) -> LexiconSet:
    """The shipped lexicons and rules, with each extra directory merged over them in order."""
    dirs = [DEFAULT_DIR, *(Path(d) for d in extra_dirs)]
    documents = _documents(dirs)
    common = documents.pop("common", {})
    rules = Rules.model_validate(documents.pop("rules"))
    languages = {}
    for stem, document in documents.items():
        document.setdefault("language", stem)
        languages[str(document["language"])] = _compile_language(document)
    symbols = {str(k).lower(): float(v) for k, v in (common.get("symbols") or {}).items()}
    emoticons = [symbol for symbol in symbols if symbol.isascii()]
    emoji = [symbol for symbol in symbols if not symbol.isascii()]
    return LexiconSet(
        languages=languages,
        rules=rules,
        symbols=symbols,
        emoji_pattern=_symbol_pattern(emoji),
        emoji_starts=frozenset(symbol[0] for symbol in emoji),
        # "https://" holds ":/": an emoticon is never followed by a slash
        emoticon_pattern=_symbol_pattern(emoticons, suffix="(?!/)"),
        emoticon_starts=frozenset(symbol[0] for symbol in emoticons),
        rating_pattern=_rating_pattern(common.get("rating_words") or ["star", "stars"]),
        spam_patterns=tuple(str(p) for p in common.get("spam_patterns") or ()),
        sources=tuple(str(d) for d in dirs),
    )


@lru_cache(maxsize=1)
def default_lexicons() -> LexiconSet:
    """The shipped lexicons, loaded once per process."""
    return load_lexicons()
