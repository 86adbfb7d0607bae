"""Text normalization shared by the lexicons, the language detector and the trained models.

Lexicon terms and incoming text go through the same `normalize`, so "atención", "Atencion" and
"ATENCIÓN" match one entry and "don't" matches "dont". It is a few str methods plus one regex:
the hot path has to stay in C to reach tens of thousands of texts per second.
"""

from __future__ import annotations

import re

_FOLD = {
    **dict.fromkeys("áàâäãå", "a"),
    **dict.fromkeys("éèêë", "e"),
    **dict.fromkeys("íìîï", "i"),
    **dict.fromkeys("óòôöõø", "o"),
    **dict.fromkeys("úùûü", "u"),
    "ç": "c",
    "ß": "ss",
    # Apostrophes vanish so contractions match with or without them.
    "'": "",
    "\u2019": "",  # right single quotation mark
    "`": "",
    "\u00b4": "",  # acute accent
}
_FOLDABLE = frozenset(_FOLD)
_WORD = re.compile(r"[^\W_]+")
# Runs of 4+ capitals: shouting, not airport codes or acronyms like "USA".
_CAPS_RUN = re.compile(r"[A-ZÁÉÍÓÚÑÄÖÜ]{4,}")
_DIGIT = re.compile(r"\d")
_URL = re.compile(r"https?://\S+|www\.\S+|@\w+")


def normalize(text: str) -> str:
    """Lowercase, accent-folded (ñ kept), apostrophe-free text."""
    lowered = text.lower()
    if lowered.isascii():  # most texts: two C calls instead of a per-character table lookup
        return lowered.replace("'", "").replace("`", "")
    # A text holds few distinct foldable characters: one C replace each beats str.translate,
    # which looks every character up in a dict.
    for char in _FOLDABLE.intersection(lowered):
        lowered = lowered.replace(char, _FOLD[char])
    return lowered


def tokenize(normalized: str) -> list[str]:
    """Words of a normalized text (letters and digits; punctuation and emoji dropped)."""
    return _WORD.findall(normalized)


def caps_words(text: str) -> int:
    """How many ALL CAPS words the original text shouts."""
    return len(_CAPS_RUN.findall(text))


def has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


def strip_urls(text: str) -> str:
    """The text without links and @handles, which carry no language and no opinion."""
    return _URL.sub(" ", text)


def count_urls(text: str) -> int:
    return text.count("http") + text.count("www.")
