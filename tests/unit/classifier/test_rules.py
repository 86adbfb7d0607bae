"""Rules and lexicon behaviour in English and Spanish, and brand extension through YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.classifier.core import Classifier, load_lexicons
from shared.events import Intent

from .conftest import MakeMention


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("The service was great, thank you so much!", "positive"),
        ("Terrible service, the worst experience ever.", "negative"),
        ("The food was not good at all.", "negative"),
        ("No problems at all with my order.", "positive"),
        ("What time does the store open on Sunday?", "neutral"),
        ("El servicio fue excelente, ¡muchas gracias!", "positive"),
        ("Pésimo servicio, una vergüenza.", "negative"),
        ("La comida no estaba buena.", "negative"),
        ("Ningún problema con el pedido, todo perfecto.", "positive"),
        ("¿A qué hora abre la tienda el domingo?", "neutral"),
    ],
)
def test_sentiment_in_both_languages(
    classifier: Classifier, mention: MakeMention, text: str, label: str
) -> None:
    assert classifier.classify(mention(text)).sentiment.label == label


@pytest.mark.parametrize(
    "text",
    [
        "My package still hasn't arrived after two weeks and nobody answers.",
        "I was charged twice for the same order. I want a refund.",
        "The app keeps crashing since the update, please fix it.",
        "Llevo una semana sin internet y nadie me da una solución.",
        "Me han cobrado dos veces y sigo esperando el reembolso.",
        "La aplicación no funciona desde la actualización.",
    ],
)
def test_complaints_in_both_languages(
    classifier: Classifier, mention: MakeMention, text: str
) -> None:
    result = classifier.classify(mention(text))
    assert result.is_complaint
    assert Intent.COMPLAINT in result.intents
    assert any(reason.startswith("complaint") for reason in result.reasons)


@pytest.mark.parametrize(
    "text",
    [
        "Thanks for fixing my router so fast, works perfectly now.",
        "Retailer announces 40 new stores next year.",
        "Can I get a copy of my last bill by email?",
        "Gracias por solucionar la incidencia tan rápido.",
        "La cadena abrirá 20 nuevas tiendas el próximo año.",
    ],
)
def test_hard_negatives_are_not_complaints(
    classifier: Classifier, mention: MakeMention, text: str
) -> None:
    assert not classifier.classify(mention(text)).is_complaint


def test_incident_topic_is_language_neutral(classifier: Classifier, mention: MakeMention) -> None:
    english = classifier.topic_of(mention("The app is down again, outage all morning"))
    spanish = classifier.topic_of(mention("La app está caída otra vez, menudo corte"))
    assert english == spanish == "acme|incident:outage"


def test_language_neutral_signals_for_other_languages(
    classifier: Classifier, mention: MakeMention
) -> None:
    angry = classifier.classify(mention("Kundenservice?! 😡😡 NIEMAND ANTWORTET!!!", language="de"))
    happy = classifier.classify(mention("Perfetto 😍👍", language="it"))
    assert angry.sentiment.label == "negative"
    assert angry.language == "de"
    assert happy.sentiment.label == "positive"


def test_star_ratings(classifier: Classifier, mention: MakeMention) -> None:
    assert classifier.classify(mention("Produit reçu.", rating=1.0)).sentiment.label == "negative"
    assert classifier.classify(mention("1/5 would not recommend")).sentiment.label == "negative"
    assert classifier.classify(mention("5 estrellas")).sentiment.label == "positive"


def test_spam(classifier: Classifier, mention: MakeMention) -> None:
    result = classifier.classify(mention("Free followers! Click here https://bit.ly/x promo code"))
    assert result.intents == [Intent.SPAM]


def test_brand_extends_lexicons_with_a_directory(tmp_path: Path, mention: MakeMention) -> None:
    (tmp_path / "en.yaml").write_text(
        "incident:\n  outage: [gizmo blinking red]\ncrisis:\n  safety: [gizmo smoking]\n",
        encoding="utf-8",
    )
    (tmp_path / "rules.yaml").write_text("priority:\n  p1_at: 0.5\n", encoding="utf-8")
    branded = Classifier(load_lexicons([tmp_path]))
    result = branded.classify(mention("my gizmo blinking red, now gizmo smoking"))
    assert Intent.INCIDENT in result.intents
    assert any("crisis vocabulary (safety)" in reason for reason in result.reasons)
    assert branded.rules.priority.p1_at == 0.5
    # the shipped terms are still there
    assert Intent.INCIDENT in branded.classify(mention("the app is down")).intents


def test_unknown_lexicon_keys_fail_at_load(tmp_path: Path) -> None:
    (tmp_path / "en.yaml").write_text("complaints: {oops: 1}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown keys"):
        load_lexicons([tmp_path])
