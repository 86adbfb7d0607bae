"""The shortcuts taken for throughput give the same results as the plain way."""

from __future__ import annotations

import io

import orjson

from services.classifier.cli import classify_stream
from services.classifier.core import Classifier, classification_record, mention_from_record
from shared.events import Channel, Mention
from shared.nlp.text import normalize


def test_mention_id_is_the_ingest_id() -> None:
    for channel, record_id in (
        (Channel.WEB, 1),
        (Channel.X, "ñ-42"),
        (Channel.EMAIL, "<a.b@example.com>"),
    ):
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


_PLAIN_TEXTS = [
    "@united I'm Cancelled Flighting my #mileageplus card and I will NEVER do business again.",
    "Me han perdido la maleta, exijo una solución YA!! 😡 1/5",
    "thanks @JetBlue, great crew :) https://t.co/x",
    "¿Dónde está mi pedido? Llevo dos semanas esperando",
    "",
    "ok",
]


def test_plain_record_is_the_classification_record(classifier: Classifier) -> None:
    for number, text in enumerate(_PLAIN_TEXTS):
        for record_id in (number, f"id-{number}", None):
            mention = mention_from_record({"id": record_id, "text": text}, str(number))
            expected = classification_record(record_id, classifier.classify(mention))
            assert orjson.dumps(classifier.plain_record(record_id, text)) == orjson.dumps(expected)


def test_ndjson_plain_and_general_lines_agree(classifier: Classifier) -> None:
    lines = [{"id": i, "text": t} for i, t in enumerate(_PLAIN_TEXTS)]
    # extra keys take the general path; the output is the same and keeps input order
    lines += [{"id": f"x{i}", "text": t, "brand": None} for i, t in enumerate(_PLAIN_TEXTS)]
    lines += [{"id": "", "text": "empty id"}, {"id": 9, "text": "x" * 20_001}]
    source = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    sink = io.BytesIO()
    assert classify_stream(classifier, io.BytesIO(source), sink) == 2 * len(_PLAIN_TEXTS)
    out = [orjson.loads(line) for line in sink.getvalue().splitlines()]
    assert [row["id"] for row in out] == [line["id"] for line in lines[: len(out)]]
    assert [{**row, "id": None} for row in out[: len(_PLAIN_TEXTS)]] == [
        {**row, "id": None} for row in out[len(_PLAIN_TEXTS) :]
    ]
