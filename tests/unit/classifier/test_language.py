from __future__ import annotations

import pytest

from services.classifier.core import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My order never arrived and nobody answers the phone", "en"),
        ("Mi pedido no ha llegado todavía y nadie me contesta", "es"),
        ("¿Dónde está mi maleta?", "es"),
        ("O meu pedido ainda não chegou e ninguém responde", "pt"),
        ("Ma commande n'est toujours pas arrivée, personne ne répond", "fr"),
        ("Il mio ordine non è ancora arrivato e nessuno risponde", "it"),
        ("Meine Bestellung ist immer noch nicht angekommen und niemand antwortet", "de"),
    ],
)
def test_detects_first_class_and_secondary_languages(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize("text", ["", "😡😡😡", "https://example.com/x", "12345 !!!"])
def test_undetermined_without_words(text: str) -> None:
    assert detect_language(text) == "und"


def test_short_text_uses_a_single_lexicon_vote() -> None:
    assert detect_language("@acme Por favor AYUDA!!!") == "es"
