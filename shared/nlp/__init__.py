"""Text resources two services share: normalization, the multilingual lexicons and language
detection. Pure apart from reading the packaged data files (lexicons/*.yaml, py3langid's model).

Ingest fills in a mention's language with `language.detect_language`; the classifier scores
with the same lexicons (`lexicon.load_lexicons`, a brand's directories merged over the shipped
ones) and detects with a `language.LanguageDetector` built from them. They live here, not in
either service, because services never import each other.
"""
