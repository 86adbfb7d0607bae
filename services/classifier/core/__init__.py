"""The classifier's pure core: no Kafka, no database, no network.

Mention + ClassificationContext -> Classification, with the shipped multilingual rules and
lexicons (shared/nlp/lexicons/*.yaml, shared with ingest's language detection) or a trained
model on top, plus the crisis velocity counts (per-topic time buckets) whose state the service
keeps in PostgreSQL. See docs/classifier.md.
"""

from shared.nlp.language import UNDETERMINED, LanguageDetector, detect_language
from shared.nlp.lexicon import DEFAULT_DIR as DEFAULT_LEXICON_DIR
from shared.nlp.lexicon import LexiconSet, default_lexicons, load_lexicons

from .classifier import (
    NO_CONTEXT,
    RULES_MODEL,
    ClassificationContext,
    Classifier,
    ModelScores,
    TextModel,
    classify,
    topic_key,
)
from .records import classification_record, mention_from_record
from .rules import Analysis
from .velocity import VelocityCounts, VelocityWindow

__all__ = [
    "DEFAULT_LEXICON_DIR",
    "NO_CONTEXT",
    "RULES_MODEL",
    "UNDETERMINED",
    "Analysis",
    "ClassificationContext",
    "Classifier",
    "LanguageDetector",
    "LexiconSet",
    "ModelScores",
    "TextModel",
    "VelocityCounts",
    "VelocityWindow",
    "classification_record",
    "classify",
    "default_lexicons",
    "detect_language",
    "load_lexicons",
    "mention_from_record",
    "topic_key",
]
