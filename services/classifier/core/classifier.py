"""Mention + context -> Classification: sentiment, intents, complaint, crisis risk, priority.

The rules and lexicons always run: they give intents, crisis vocabulary and the reasons an agent
reads. A trained model, when installed, replaces only what it was trained for (sentiment or
complaint). Priorities follow the brand's SCS playbook:
- P1 when the crisis risk is high (legal threats, safety, data leaks, boycotts, media or
  regulators, big reach, many similar negative mentions at once);
- P2 for direct questions and requests, negative experiences, incidents, complaints and claims,
  and indirect mentions that could set off a reputation crisis;
- P4 for spam, the brand's own replies, plain references, positive experiences and questions
  that do not address the brand;
- P3 otherwise (e.g. a DM with nothing to act on yet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from shared.events import (
    Classification,
    Intent,
    Mention,
    MentionKind,
    Priority,
    Sentiment,
)
from shared.nlp.language import UNDETERMINED, LanguageDetector
from shared.nlp.lexicon import LexiconSet, default_lexicons, load_lexicons
from shared.nlp.text import normalize, tokenize

from .rules import Analysis, analyze

RULES_MODEL = "rules-v1"
_ADDRESSED_KINDS = frozenset({MentionKind.DM, MentionKind.COMMENT, MentionKind.REVIEW})
SentimentLabel = Literal["negative", "neutral", "positive"]


class ClassificationContext(BaseModel):
    """What the caller knows beyond the text: how many similar negative mentions just happened."""

    model_config = ConfigDict(frozen=True)

    similar_negative_recent: int = Field(default=0, ge=0)
    window_seconds: int = Field(default=600, gt=0)
    topic: str | None = None


NO_CONTEXT = ClassificationContext()
Probabilities = list[dict[str, float]]
ModelScores = tuple[Probabilities | None, Probabilities | None]  # sentiment, complaint


class TextModel(Protocol):
    """A trained model: class probabilities for texts, for one target (sentiment or complaint)."""

    name: str
    target: Literal["sentiment", "complaint"]

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


def _quote(terms: Sequence[str], limit: int = 3) -> str:
    unique = list(dict.fromkeys(terms))[:limit]
    return ", ".join(f"'{term}'" for term in unique)


def _followers(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 1_000:
        return f"{count // 1_000}k"
    return str(count)


def _window(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def topic_key(mention: Mention, analysis: Analysis, lexicons: LexiconSet) -> str:
    """ "Same topic" for velocity: brand + the strongest crisis category, else the incident topic.

    Topic names are language-neutral ("delay" for both "delayed" and "retraso"), so a storm in
    two languages is one storm; a negative mention with neither is the brand's general topic.
    """
    # The Mention bounds the lower-cased brand (MAX_BRAND_CHARS), so the key fits its column.
    brand = (mention.brand or "-").lower()
    if analysis.crisis:
        weights = lexicons.rules.crisis.categories
        category = max(analysis.crisis, key=lambda name: (weights.get(name, 0.0), name))
        return f"{brand}|crisis:{category}"
    if analysis.incidents:
        topic = max(analysis.incidents, key=lambda name: (len(analysis.incidents[name]), name))
        return f"{brand}|incident:{topic}"
    return f"{brand}|negative"


class Classifier:
    """Loads lexicons, rules and optional trained models once; classifies mentions purely."""

    def __init__(self, lexicons: LexiconSet, models: Sequence[TextModel] = ()) -> None:
        self.lexicons = lexicons
        self.rules = lexicons.rules
        self.detector = LanguageDetector(lexicons.languages)
        self.sentiment_model = next((m for m in models if m.target == "sentiment"), None)
        self.complaint_model = next((m for m in models if m.target == "complaint"), None)
        self.name = "+".join([RULES_MODEL, *(m.name for m in models)])

    @classmethod
    def default(cls) -> Classifier:
        """Rules and the shipped lexicons: fast, dependency-light, no trained model."""
        return _default_classifier()

    @classmethod
    def from_path(
        cls, *model_paths: Path | str, lexicon_dirs: Sequence[Path | str] = ()
    ) -> Classifier:
        """Rules plus trained model files (see models.train), with optional brand lexicons."""
        from .models import load_model

        lexicons = load_lexicons(lexicon_dirs) if lexicon_dirs else default_lexicons()
        return cls(lexicons, [load_model(Path(path)) for path in model_paths])

    def warm_up(self) -> None:
        """Load what is otherwise loaded lazily, so that measured throughput is steady state."""
        self.detector.warm_up()

    def analyze(self, mention: Mention) -> Analysis:
        """Language detection and one lexicon pass; mention.language wins when ingest set it."""
        return self._analyze_text(mention.text, mention.language, mention.rating)

    def _analyze_text(self, text: str, language: str | None, rating: float | None) -> Analysis:
        normalized = normalize(text)
        words = tokenize(normalized)
        language = (language or "").split("-")[0].lower() or self.detector.detect(text, words)
        return analyze(
            text,
            normalized,
            words,
            self.lexicons.languages.get(language),
            self.lexicons,
            language or UNDETERMINED,
            rating,
        )

    def plain_record(self, record_id: Any, text: str) -> dict[str, Any]:
        """`classification_record` of a Mention with nothing but an id and a text, rules only.

        The same analysis and decisions as `classify`, without building the pydantic Mention,
        Sentiment and Classification: `scs classify` takes this path for {"id", "text"} lines
        it has checked a Mention would accept (see cli.py).
        """
        analysis = self._analyze_text(text, None, None)
        language, label, score, intents, complaint, risk, priority, reasons = self._verdict(
            text, MentionKind.MENTION, 0, False, NO_CONTEXT, analysis, None, None
        )
        return {
            "id": record_id,
            "language": language,
            "sentiment": {"label": label, "score": round(score, 4)},
            "intents": intents,
            "is_complaint": complaint,
            "crisis_risk": risk,
            "priority": priority,
            "reasons": reasons,
        }

    def topic_of(self, mention: Mention) -> str:
        return topic_key(mention, self.analyze(mention), self.lexicons)

    def classify(
        self, mention: Mention, context: ClassificationContext | None = None
    ) -> Classification:
        return self.classify_batch([(mention, context or NO_CONTEXT)])[0]

    def classify_batch(
        self, items: Sequence[tuple[Mention, ClassificationContext]]
    ) -> list[Classification]:
        """Many mentions at once: trained models predict the whole batch in one call."""
        if self.sentiment_model is None and self.complaint_model is None:
            return [self._decide(m, c, self.analyze(m), None, None) for m, c in items]
        analyses = [self.analyze(mention) for mention, _ in items]
        return self.decide_batch(items, analyses)

    @property
    def has_models(self) -> bool:
        return self.sentiment_model is not None or self.complaint_model is not None

    def model_scores(self, texts: Sequence[str]) -> ModelScores:
        """Trained models' class probabilities for a whole batch (the slow part: a fine-tuned
        encoder runs at about 50 texts/s, so the service calls this in a worker thread)."""
        sentiments = self.sentiment_model.predict_proba(texts) if self.sentiment_model else None
        complaints = self.complaint_model.predict_proba(texts) if self.complaint_model else None
        return sentiments, complaints

    def decide_batch(
        self,
        items: Sequence[tuple[Mention, ClassificationContext]],
        analyses: Sequence[Analysis],
        scores: ModelScores | None = None,
    ) -> list[Classification]:
        """Classifications from analyses (and model scores) already made: the velocity tracker
        needs the analyses first."""
        sentiments, complaints = scores or self.model_scores([m.text for m, _ in items])
        return [
            self._decide(
                mention,
                context,
                analysis,
                sentiments[index] if sentiments is not None else None,
                complaints[index] if complaints is not None else None,
            )
            for index, ((mention, context), analysis) in enumerate(
                zip(items, analyses, strict=True)
            )
        ]

    def _sentiment(
        self, analysis: Analysis, probabilities: dict[str, float] | None, reasons: list[str]
    ) -> tuple[SentimentLabel, float]:
        """Label and score (clamped to -1..1, as Sentiment requires)."""
        if probabilities is not None:
            label: SentimentLabel = max(
                ("negative", "neutral", "positive"), key=lambda name: probabilities.get(name, 0.0)
            )
            score = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
            reasons.append(f"model {label} ({probabilities.get(label, 0.0):.2f})")
        else:
            rules = self.rules.sentiment
            score = analysis.score
            label = (
                "positive"
                if score >= rules.positive_at
                else "negative"
                if score <= rules.negative_at
                else "neutral"
            )
        terms = analysis.negative_terms if label == "negative" else analysis.positive_terms
        if label != "neutral":
            detail = f": {_quote(terms)}" if terms else ""
            reasons.append(f"{label} sentiment {score:+.2f}{detail}")
        return label, max(-1.0, min(1.0, score))

    def _is_complaint(
        self,
        analysis: Analysis,
        label: SentimentLabel,
        score: float,
        addressed: bool,
        probabilities: dict[str, float] | None,
        reasons: list[str],
    ) -> bool:
        if probabilities is not None:
            verdict = probabilities.get("complaint", 0.0) >= 0.5
        else:
            rules = self.rules.complaint
            evidence = (
                analysis.complaint
                + rules.incident_weight * len(analysis.incidents)
                + rules.negativity_weight * max(0.0, -score)
            )
            if label == "positive":
                evidence *= rules.praise_discount
            # A neutral news item about a price rise is not a complaint: it takes a customer's
            # voice, or at least a negative experience.
            voiced = (
                analysis.personal
                or addressed
                or label == "negative"
                or analysis.complaint >= rules.threshold
            )
            verdict = evidence >= rules.threshold and voiced
        if verdict:
            terms = analysis.complaint_terms or [
                term for terms in analysis.incidents.values() for term in terms
            ]
            reasons.append(f"complaint: {_quote(terms)}" if terms else "complaint")
        return verdict

    def _is_spam(self, analysis: Analysis, reasons: list[str]) -> bool:
        rules = self.rules.spam
        patterns = [p for p in self.lexicons.spam_patterns if p in analysis.normalized]
        score = (
            rules.term_weight * len(analysis.spam_terms)
            + rules.pattern_weight * len(patterns)
            + rules.url_weight * analysis.urls
            + rules.hashtag_weight * max(0, analysis.hashtags - 3)
        )
        if score >= rules.threshold:
            reasons.append(f"spam: {_quote(analysis.spam_terms + patterns) or 'links, hashtags'}")
            return True
        return False

    def _crisis_risk(
        self,
        followers: int,
        verified: bool,
        context: ClassificationContext,
        analysis: Analysis,
        score: float,
        complaint: bool,
        reasons: list[str],
    ) -> float:
        rules = self.rules.crisis
        negativity = max(-score, rules.complaint_negativity if complaint else 0.0, 0.0)
        gate = rules.gate_floor + (1.0 - rules.gate_floor) * negativity
        parts = [rules.negativity * max(0.0, -score)]
        if complaint:
            parts.append(rules.complaint)
        if analysis.crisis:
            weights = sorted(
                (rules.categories.get(name, 0.0) for name in analysis.crisis), reverse=True
            )
            vocabulary = weights[0] + rules.per_extra_category * (len(weights) - 1)
            floor = rules.vocabulary_gate_floor
            parts.append(min(vocabulary, 0.95) * (floor + (1.0 - floor) * negativity))
            for name, terms in sorted(analysis.crisis.items()):
                reasons.append(f"crisis vocabulary ({name.replace('_', ' ')}): {_quote(terms)}")
        reach = (math.log10(followers + 1) - rules.reach_floor_log10) / rules.reach_span_log10
        if reach > 0:
            parts.append(min(reach, 1.0) * rules.reach_weight * gate)
            reasons.append(f"author reach {_followers(followers)} followers")
        if verified:
            parts.append(rules.verified_weight * gate)
            reasons.append("verified author")
        velocity = context.similar_negative_recent
        if velocity > 0:
            parts.append(rules.velocity_weight * velocity / (velocity + rules.velocity_half) * gate)
            reasons.append(
                f"{velocity} similar negative mentions in {_window(context.window_seconds)}"
            )
        calm = 1.0
        for part in parts:
            calm *= 1.0 - min(max(part, 0.0), 0.99)
        return round(1.0 - calm, 4)

    def _decide(
        self,
        mention: Mention,
        context: ClassificationContext,
        analysis: Analysis,
        sentiment_probabilities: dict[str, float] | None,
        complaint_probabilities: dict[str, float] | None,
    ) -> Classification:
        author = mention.author
        language, label, score, intents, complaint, risk, priority, reasons = self._verdict(
            mention.text,
            mention.kind,
            author.followers,
            author.verified,
            context,
            analysis,
            sentiment_probabilities,
            complaint_probabilities,
        )
        return Classification(
            language=language,
            sentiment=Sentiment(label=label, score=score),
            intents=intents,
            is_complaint=complaint,
            crisis_risk=risk,
            priority=priority,
            reasons=reasons,
            model=self.name,
            topic_key=context.topic,
            similar_recent=context.similar_negative_recent,
        )

    def _verdict(
        self,
        text: str,
        kind: MentionKind,
        followers: int,
        verified: bool,
        context: ClassificationContext,
        analysis: Analysis,
        sentiment_probabilities: dict[str, float] | None,
        complaint_probabilities: dict[str, float] | None,
    ) -> tuple[str, SentimentLabel, float, list[Intent], bool, float, Priority, list[str]]:
        """Every decision, as plain values: (language, label, score, intents, complaint, risk,
        priority, reasons)."""
        reasons: list[str] = []
        addressed = analysis.direct or "@" in text or kind in _ADDRESSED_KINDS
        label, score = self._sentiment(analysis, sentiment_probabilities, reasons)
        spam = self._is_spam(analysis, reasons)
        complaint = not spam and self._is_complaint(
            analysis, label, score, addressed, complaint_probabilities, reasons
        )
        risk = (
            0.0
            if spam
            else self._crisis_risk(
                followers, verified, context, analysis, score, complaint, reasons
            )
        )
        intents = self._intents(analysis, label, score, complaint, spam, risk, reasons)
        priority = self._priority(kind, analysis, label, intents, addressed, risk, reasons)
        return analysis.language, label, score, intents, complaint, risk, priority, reasons

    def _intents(
        self,
        analysis: Analysis,
        label: SentimentLabel,
        score: float,
        complaint: bool,
        spam: bool,
        risk: float,
        reasons: list[str],
    ) -> list[Intent]:
        if spam:
            return [Intent.SPAM]
        intents: list[Intent] = []
        if complaint:
            intents.append(Intent.COMPLAINT)
        for topic, terms in analysis.incidents.items():
            reasons.append(f"incident ({topic.replace('_', ' ')}): {_quote(terms)}")
        if analysis.incidents:
            intents.append(Intent.INCIDENT)
        if analysis.question:
            intents.append(Intent.QUESTION)
        if analysis.request_terms:
            intents.append(Intent.REQUEST)
            reasons.append(f"request: {_quote(analysis.request_terms)}")
        if label == "positive" and not complaint and (analysis.praise_terms or score >= 0.6):
            intents.append(Intent.PRAISE)
        if analysis.crisis and risk >= self.rules.crisis.crisis_signal_at:
            intents.append(Intent.CRISIS_SIGNAL)
        return intents or [Intent.OTHER]

    def _priority(
        self,
        kind: MentionKind,
        analysis: Analysis,
        label: SentimentLabel,
        intents: list[Intent],
        addressed: bool,
        risk: float,
        reasons: list[str],
    ) -> Priority:
        rules = self.rules.priority
        if kind == MentionKind.REPLY:
            reasons.append("the brand's own reply")
            return Priority.P4
        if Intent.SPAM in intents:
            return Priority.P4
        if risk >= rules.p1_at:
            reasons.append(f"crisis risk {risk:.2f} >= {rules.p1_at:.2f}")
            return Priority.P1
        high = {Intent.COMPLAINT, Intent.INCIDENT, Intent.REQUEST, Intent.CRISIS_SIGNAL}
        if high.intersection(intents) or label == "negative":
            return Priority.P2
        if Intent.QUESTION in intents and (addressed or analysis.urgent):
            reasons.append("direct question" if addressed else "urgent question")
            return Priority.P2
        if risk >= rules.p2_risk_at:
            reasons.append(f"could set off a crisis: risk {risk:.2f}")
            return Priority.P2
        if Intent.QUESTION in intents:
            reasons.append("question not addressed to the brand")
            return Priority.P4
        if Intent.PRAISE in intents or label == "positive":
            reasons.append("positive experience")
            return Priority.P4
        if addressed:
            reasons.append("addressed to the brand, nothing to act on yet")
            return Priority.P3
        reasons.append("plain reference to the brand")
        return Priority.P4


@lru_cache(maxsize=1)
def _default_classifier() -> Classifier:
    return Classifier(default_lexicons())


def classify(mention: Mention, context: ClassificationContext | None = None) -> Classification:
    """Classify with the shipped rules and lexicons (loaded once per process)."""
    return _default_classifier().classify(mention, context)
