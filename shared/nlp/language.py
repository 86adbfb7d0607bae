"""Fast language detection: word votes first, py3langid only when they tie or are silent.

py3langid alone runs at a few thousand texts per second; the stopword vote decides most
customer-service texts (they are full of "my", "the", "mi", "el") at C-dict speed, so the
n-gram model only sees the short or mixed ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from shared.nlp.lexicon import Lexicon, default_lexicons
from shared.nlp.text import normalize, strip_urls, tokenize

UNDETERMINED = "und"
_MARK_VOTES = 2
_MIN_WORDS = 3
# Words of links never vote ("com" is also Portuguese for "with").
_LINK_WORDS = frozenset({"http", "https", "www", "com", "co", "t"})
_FALLBACK_CONFIDENCE = 0.5


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(
        MODEL_FILE, norm_probs=True, min_confidence=_FALLBACK_CONFIDENCE
    )


class LanguageDetector:
    """Votes of each language's words and marks (ñ, ¿, ß); py3langid breaks ties.

    Stopwords and every single-word lexicon term vote, so short texts ("Por favor AYUDA!!") are
    decided without the n-gram model.
    """

    def __init__(self, lexicons: Mapping[str, Lexicon]) -> None:
        # word -> the languages it votes for: one set intersection per text finds the voters
        voters: dict[str, list[str]] = {}
        for language, lexicon in lexicons.items():
            vocabulary = lexicon.stopwords | {key for key in lexicon.entries if " " not in key}
            for word in vocabulary - _LINK_WORDS:
                voters.setdefault(word, []).append(language)
        self._voters = {word: tuple(languages) for word, languages in voters.items()}
        self._vocabulary = frozenset(self._voters)
        self._marks = tuple(
            (mark, language) for language, lexicon in lexicons.items() for mark in lexicon.marks
        )

    @staticmethod
    def warm_up() -> None:
        """Load the n-gram model now (about 0.3 s) rather than on the first ambiguous text."""
        _identifier()

    def detect(self, text: str, tokens: Sequence[str] | None = None) -> str:
        """ISO 639-1 code of the text, or 'und'; pass tokens when they are already at hand."""
        words = tokenize(normalize(text)) if tokens is None else tokens
        # One set intersection in C, then a loop over the few known words only.
        counts: dict[str, int] = {}
        for word in self._vocabulary.intersection(words):
            for language in self._voters[word]:
                counts[language] = counts.get(language, 0) + 1
        for mark, language in self._marks:
            if mark in text:
                counts[language] = counts.get(language, 0) + _MARK_VOTES
        if counts:
            ranked = sorted(counts.values(), reverse=True)
            if len(ranked) == 1 or ranked[0] > ranked[1]:
                # a clear leader, even by one vote, beats the n-gram model on short texts
                return max(counts, key=counts.__getitem__)
        content = strip_urls(text)
        if sum(1 for word in tokenize(normalize(content)) if word.isalpha()) < _MIN_WORDS:
            return UNDETERMINED
        # ties ("la" is Spanish, French and Italian) and texts without any known word
        language, _ = _identifier().classify(content)
        return str(language)


@lru_cache(maxsize=1)
def _default_detector() -> LanguageDetector:
    return LanguageDetector(default_lexicons().languages)


def detect_language(text: str) -> str:
    """ISO 639-1 code of `text` ('und' when unknown), with the shipped lexicons."""
    return _default_detector().detect(text)
