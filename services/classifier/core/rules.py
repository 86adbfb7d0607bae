"""One pass of the lexicon over a text: polarity, complaint acts, incidents, crisis vocabulary.

`analyze` is the hot path of the default classifier. It walks the words once, takes the longest
lexicon term at each position, and records what matched so every decision can be explained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared.nlp.lexicon import Lexicon, LexiconSet
from shared.nlp.text import caps_words, count_urls, has_digit

_STAR_SCALE = {"5": 1.0, "10": 0.5}


@dataclass(slots=True)
class Analysis:
    """What the lexicon found in one text; the classifier turns it into a Classification."""

    language: str
    normalized: str = ""
    words: int = 0
    polarity: float = 0.0
    score: float = 0.0
    negative_terms: list[str] = field(default_factory=list)
    positive_terms: list[str] = field(default_factory=list)
    complaint: float = 0.0
    complaint_terms: list[str] = field(default_factory=list)
    incidents: dict[str, list[str]] = field(default_factory=dict)
    crisis: dict[str, list[str]] = field(default_factory=dict)
    request_terms: list[str] = field(default_factory=list)
    praise_terms: list[str] = field(default_factory=list)
    spam_terms: list[str] = field(default_factory=list)
    urgent: bool = False
    direct: bool = False
    personal: bool = False
    question: bool = False
    exclamations: int = 0
    caps: int = 0
    urls: int = 0
    hashtags: int = 0
    stars: float | None = None


def _scan(words: list[str], lexicon: Lexicon, lexicons: LexiconSet, result: Analysis) -> None:
    rules = lexicons.rules.sentiment
    entries = lexicon.entries
    starts = lexicon.starts
    window = rules.negation_window
    before: list[float] = []
    after: list[float] = []
    current = after
    last_negator = -100
    boost_at = -1
    boost = 1.0
    end = 0
    # Only words that start a term matter; a comprehension finds them at C speed.
    for position in [index for index, word in enumerate(words) if word in starts]:
        if position < end:  # inside the longer term just matched
            continue
        longest = starts[words[position]]
        entry = None
        if longest == 1:
            entry = entries[words[position]]
            end = position + 1
        else:
            for size in range(min(longest, len(words) - position), 0, -1):
                entry = entries.get(" ".join(words[position : position + size]))
                if entry is not None:
                    end = position + size
                    break
            if entry is None:
                continue
        negated = position - last_negator <= window
        if entry.polarity:
            value = entry.polarity * (boost if boost_at == position else 1.0)
            if negated and not entry.negator:
                value *= rules.negation_factor
            current.append(value)
            (result.negative_terms if value < 0 else result.positive_terms).append(entry.term)
        if entry.complaint:
            result.complaint += entry.complaint
            result.complaint_terms.append(entry.term)
        if entry.incident is not None and not (negated and not entry.negator):
            result.incidents.setdefault(entry.incident, []).append(entry.term)
        if entry.crisis is not None:
            result.crisis.setdefault(entry.crisis, []).append(entry.term)
        if entry.request:
            result.request_terms.append(entry.term)
        if entry.praise and not negated:
            result.praise_terms.append(entry.term)
        if entry.spam:
            result.spam_terms.append(entry.term)
        result.urgent = result.urgent or entry.urgency
        result.direct = result.direct or entry.direct
        result.personal = result.personal or entry.personal
        if entry.negator:
            last_negator = end - 1
        if entry.intensifier:
            boost, boost_at = entry.intensifier, end
        if entry.contrast and current is after:
            before, after = after, []
            current = after
    if before:
        result.polarity = sum(before) * rules.before_contrast + sum(after) * rules.after_contrast
    else:
        result.polarity = sum(after)


def _signals(text: str, lowered: str, lexicons: LexiconSet, result: Analysis) -> float:
    """Language-neutral polarity: emoji, emoticons, star ratings."""
    polarity = 0.0
    patterns = (
        (lexicons.emoticon_starts, lexicons.emoticon_pattern),
        (lexicons.emoji_starts, lexicons.emoji_pattern),
    )
    for starts, pattern in patterns:
        # isdisjoint walks the text in C; most texts hold no emoji, and an ASCII text none at all
        if pattern is None or starts.isdisjoint(lowered):
            continue
        for symbol in pattern.findall(lowered):
            value = lexicons.symbols[symbol]
            polarity += value
            (result.negative_terms if value < 0 else result.positive_terms).append(symbol)
    match = lexicons.rating_pattern.search(lowered) if has_digit(lowered) else None
    if match is not None:
        if match.group(1) is not None:
            stars = float(match.group(1).replace(",", ".")) * _STAR_SCALE[match.group(2)]
        else:
            stars = float(match.group(3))
        result.stars = max(0.0, min(5.0, stars))
    result.exclamations = text.count("!")
    result.question = "?" in text or "¿" in text
    result.caps = caps_words(text)
    result.urls = count_urls(lowered)
    result.hashtags = text.count("#")
    return polarity


def analyze(
    text: str,
    normalized: str,
    words: list[str],
    lexicon: Lexicon | None,
    lexicons: LexiconSet,
    language: str,
    rating: float | None = None,
) -> Analysis:
    """Score one text with its language's lexicon (None: language-neutral signals only)."""
    rules = lexicons.rules.sentiment
    result = Analysis(language=language, normalized=normalized, words=len(words))
    if lexicon is not None:
        _scan(words, lexicon, lexicons, result)
    polarity = result.polarity + _signals(text, normalized, lexicons, result)
    if lexicon is not None and words and words[0] in lexicon.question_words:
        # "how do I reset my password" asks without "?"; "what a joke!" does not ask.
        result.question = result.question or ("." not in text and "!" not in text)
    if rating is not None:
        result.stars = rating if rating <= 5 else rating / 2
    if result.stars is not None:
        polarity += (result.stars - 3.0) * rules.rating_weight
    polarity += rules.incident_polarity * len(result.incidents)
    polarity += rules.complaint_polarity * min(result.complaint, 2.0)
    polarity += rules.crisis_polarity * len(result.crisis)
    if result.request_terms:
        polarity += rules.request_polarity
    emphasis = 1.0 + min(
        max(result.exclamations - 1, 0) * rules.exclamation_boost, rules.exclamation_max
    )
    if result.words:
        emphasis += rules.caps_boost * min(result.caps / result.words, 1.0)
    polarity *= emphasis
    result.polarity = polarity
    result.score = polarity / math.sqrt(polarity * polarity + rules.alpha)
    return result
