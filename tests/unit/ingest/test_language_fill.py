from __future__ import annotations

from services.ingest.core import with_language
from tests.unit.test_events import a_mention


def test_missing_language_is_detected() -> None:
    spanish = a_mention(text="Hola, no tengo conexión desde ayer y nadie me responde")
    english = a_mention(text="My order never arrived and nobody answers the phone")
    assert with_language(spanish).language == "es"
    assert with_language(english).language == "en"


def test_platform_language_wins_and_unknown_stays_unknown() -> None:
    assert with_language(a_mention(text="Hola a todos", language="ca")).language == "ca"
    assert with_language(a_mention(text="👍👍 https://t.co/x")).language is None
