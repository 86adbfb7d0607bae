"""The shortcuts taken for throughput give the same results as the plain way."""

from __future__ import annotations

from services.classifier.core import Classifier, mention_from_record
from services.classifier.core.text import normalize
from shared.events import Channel, Mention


def test_mention_id_is_the_ingest_id() -> None:
    for channel, record_id in ((Channel.WEB, 1), (Channel.X, "ñ-42"), (Channel.EMAIL, "a\x1fb")):
        record = {"id": record_id, "text": "hola", "channel": channel.value}
        mention = mention_from_record(record, "7")
        assert mention.mention_id == Mention.id_for(channel, str(record_id))


def test_default_author_and_explicit_author() -> None:
    assert mention_from_record({"text": "hi"}, "1").author.handle == "unknown"
    assert mention_from_record({"text": "hi", "author": "ana"}, "1").author.handle == "ana"
    author = {"handle": "bo", "followers": 12}
    assert mention_from_record({"text": "hi", "author": author}, "1").author.followers == 12


def test_normalize_folds_accents_and_apostrophes() -> None:
    assert normalize("ATENCIÓN Atención ÀÉÍÓÚ Üñ Straße don\u2019t it's") == (
        "atencion atencion aeiou uñ strasse dont its"
    )


def test_links_are_not_emoticons(classifier: Classifier) -> None:
    # "https://" holds ":/"; only a real one counts
    linked = classifier.analyze(mention_from_record({"text": "news https://t.co/x"}, "1"))
    assert linked.negative_terms == []
    frown = classifier.analyze(mention_from_record({"text": "my bag is lost :/"}, "1"))
    assert ":/" in frown.negative_terms


def test_emoji_and_rating_in_accented_text(classifier: Classifier) -> None:
    analysis = classifier.analyze(
        mention_from_record({"text": "Atención pésima 😡, le doy 1/5 estrellas"}, "1")
    )
    assert "😡" in analysis.negative_terms
    assert analysis.stars == 1.0
