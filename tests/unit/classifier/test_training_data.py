"""The project's own labelled mentions: every row valid, the files in step with the batches they
are built from, and the coverage and balance the data card claims."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import get_args

import pytest

from services.classifier.training.dataset import (
    INTENTS,
    TEST_FILE,
    TEST_SECTORS,
    TRAIN_FILE,
    Crisis,
    Row,
    load,
    near_duplicates,
    normalized,
    parse_batch,
    read_batches,
    split,
)

CRISES: tuple[str, ...] = get_args(Crisis)


@pytest.fixture(scope="module")
def train() -> list[Row]:
    return load(TRAIN_FILE)


@pytest.fixture(scope="module")
def test_rows() -> list[Row]:
    return load(TEST_FILE)


@pytest.fixture(scope="module")
def rows(train: list[Row], test_rows: list[Row]) -> list[Row]:
    return train + test_rows


def test_the_files_are_the_batches(train: list[Row], test_rows: list[Row]) -> None:
    """train.jsonl and test.jsonl are rebuilt from the batches, not edited by hand."""
    expected_train, expected_test = split(read_batches())
    assert train == expected_train
    assert test_rows == expected_test


def test_size_and_languages(rows: list[Row]) -> None:
    assert len(rows) >= 3000
    languages = Counter(row.lang for row in rows)
    assert set(languages) == {"es", "en"}
    assert all(0.45 <= count / len(rows) <= 0.55 for count in languages.values())


def test_sectors_and_platforms(train: list[Row], rows: list[Row]) -> None:
    sectors = Counter(row.sector for row in rows)
    assert len(sectors) >= 18
    assert len({row.sector for row in train}) >= 18
    for sector in sectors:
        assert {row.lang for row in rows if row.sector == sector} == {"es", "en"}, sector
    platforms = Counter(row.platform for row in rows)
    assert len(platforms) >= 6
    assert max(platforms.values()) / len(rows) < 0.5


def test_the_test_split_holds_whole_sectors_out(train: list[Row], test_rows: list[Row]) -> None:
    assert {row.sector for row in test_rows} == TEST_SECTORS
    assert not TEST_SECTORS & {row.sector for row in train}
    assert 0.15 <= len(test_rows) / (len(train) + len(test_rows)) <= 0.25


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_crisis_category_in_each_language_and_split(
    lang: str, rows: list[Row], test_rows: list[Row]
) -> None:
    overall = Counter(str(row.crisis) for row in rows if row.lang == lang)
    held_out = Counter(str(row.crisis) for row in test_rows if row.lang == lang)
    for crisis in CRISES:
        assert overall[crisis] >= 40, (crisis, overall[crisis])
        assert held_out[crisis] >= 5, (crisis, held_out[crisis])


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_intent_sentiment_and_priority_in_each_language(lang: str, rows: list[Row]) -> None:
    own = [row for row in rows if row.lang == lang]
    intents = Counter(intent for row in own for intent in row.intents)
    assert set(intents) == INTENTS
    assert min(intents.values()) >= 20, intents
    assert min(Counter(row.sentiment for row in own).values()) >= 150
    assert min(Counter(row.priority for row in own).values()) >= 40
    assert sum(row.time_pressure for row in own) >= 30


def test_no_exact_or_near_duplicates(rows: list[Row]) -> None:
    assert near_duplicates(rows) == []


LABELS: dict[str, Callable[[Row], bool]] = {
    "complaint": lambda row: row.complaint,
    "question": lambda row: "question" in row.intents,
    "praise": lambda row: "praise" in row.intents,
    "crisis": lambda row: row.crisis is not None,
    "positive": lambda row: row.sentiment == "positive",
    "negative": lambda row: row.sentiment == "negative",
    **{crisis: (lambda name: lambda row: row.crisis == name)(crisis) for crisis in CRISES},
}


@pytest.fixture(scope="module")
def word_rows(rows: list[Row]) -> dict[str, list[int]]:
    """Each normalised word -> the rows that use it."""
    index: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        for word in set(normalized(row.text).split()):
            index.setdefault(word, []).append(position)
    return index


@pytest.mark.parametrize("label", sorted(LABELS))
def test_no_label_is_given_away_by_one_word(
    label: str, rows: list[Row], word_rows: dict[str, list[int]]
) -> None:
    """No word (used 10 times or more) marks a quarter of a label's rows with 90% precision."""
    has = [LABELS[label](row) for row in rows]
    positives = sum(has)
    for word, used in word_rows.items():
        if len(used) < 10:
            continue
        hits = sum(has[position] for position in used)
        assert not (hits / len(used) >= 0.9 and hits / positives >= 0.25), (word, hits, used)


_COMPLAINT_WORDS = re.compile(
    r"\b(complain\w*|queja\w*|quejo|reclam\w*|terrible|awful|worst|peor|horrible|fatal|pésim\w*)\b"
)
_CRISIS_WORDS = re.compile(
    r"\b(fire|leak\w*|boycott\w*|lawsuit|sue|sued|incendio|fuga|boicot\w*|demanda\w*)\b"
)


def test_the_hard_cases_are_there(rows: list[Row]) -> None:
    """What keyword rules miss is most of the data, not a sprinkle."""
    questions = [row for row in rows if "question" in row.intents]
    assert sum("?" not in row.text for row in questions) / len(questions) >= 0.25
    assert not [row.id for row in rows if "praise" in row.intents and "?" in row.text]
    complaints = [row for row in rows if row.complaint]
    plain = [row for row in complaints if not _COMPLAINT_WORDS.search(row.text.lower())]
    assert len(plain) / len(complaints) >= 0.7
    crises = [row for row in rows if row.crisis]
    plain = [row for row in crises if not _CRISIS_WORDS.search(row.text.lower())]
    assert len(plain) / len(crises) >= 0.8
    emoji_only = {row.sentiment for row in rows if not re.search(r"[^\W\d_]", _no_handles(row))}
    assert {"positive", "negative"} <= emoji_only


def _no_handles(row: Row) -> str:
    return re.sub(r"[@#]\w+", "", row.text)


@pytest.mark.parametrize(
    "line",
    [
        "x - 1 cs - 1 -|a crisis intent without a category",
        "x - 1 c S 3 -|a crisis category at P3",
        "x + 0 p - 4 t|time pressure at P4",
        "x - 0 p - 4 -|praise read as negative",
        "x - 1 q - 2 -|complaint flag without the intent",
        "x - 0 oq - 4 -|other beside another intent",
        "zz 0 0 o - 4 -|unknown platform",
        "x 0 0 z - 4 -|unknown intent letter",
        "x 0 0 o - 4|no text",
    ],
)
def test_inconsistent_labels_fail_the_build(line: str) -> None:
    with pytest.raises(ValueError):
        parse_batch(f"# sector=telecom lang=en\n{line}\n", "inline")


def test_near_duplicates_are_caught() -> None:
    rows = parse_batch(
        "# sector=telecom lang=en\n"
        "x - 1 c - 2 -|@Vantel my bill went up AGAIN this month, no warning at all\n"
        "fb - 1 c - 2 -|my bill went up again this month... no warning at all!!\n"
        "x - 1 c - 2 -|my bill went up again this month with no warning at all\n"
        "x + 0 p - 4 -|the engineer was lovely and quick\n",
        "inline",
    )
    assert near_duplicates(rows) == [
        ("telecom.en.001", "telecom.en.002"),
        ("telecom.en.001", "telecom.en.003"),
        ("telecom.en.002", "telecom.en.003"),
    ]


def test_a_consistent_line_parses() -> None:
    [row] = parse_batch("# sector=telecom lang=es\nfb - 1 ci - 2 t|sin línea desde ayer\n", "x")
    assert row.platform == "facebook"
    assert row.intents == ["complaint", "incident"]
    assert row.time_pressure
