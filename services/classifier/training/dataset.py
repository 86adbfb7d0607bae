"""The project's own labelled mentions: the row schema, the batch format they are written in,
the train/test build, and the statistics the data card quotes.

The rows are written by hand for the project (see data/README.md), a sector and a language per
batch file under data/batches/. A batch is compact so an author can write many varied texts
without the labels drowning them; `build` turns the batches into train.jsonl and test.jsonl, the
files a trainer and an evaluator read. The test split holds whole sectors out (TEST_SECTORS), so
test texts were written in other batches than any training text.

Batch format, one mention per line after a `# sector=<sector> lang=<es|en>` header:

    <platform> <sentiment> <complaint> <intents> <crisis> <priority> <time>|<text>

- platform: x fb ig yt tt fo (forum) rv (review) rd (reddit) li (linkedin) wa (whatsapp)
- sentiment: - (negative) 0 (neutral) + (positive)
- complaint: 1 or 0
- intents, letters: q question, r request, c complaint, i incident, p praise,
  b purchase_intent, x churn_threat, s crisis_signal, m spam, o other
- crisis: - or S safety, D data_privacy, L legal_regulator, B boycott_mobilisation, M media,
  E executive_or_discrimination_scandal
- priority: 1..4 (P1 crisis, P2 high, P3 normal, P4 low: the brief's playbook)
- time: t when the text sets a deadline ("in 40 minutes", "hoy", "ya"), else -
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.classifier.core import Classifier
from services.classifier.core.records import mention_from_record
from shared.events import Intent, Priority

DATA_DIR = Path(__file__).resolve().parent / "data"
BATCH_DIR = DATA_DIR / "batches"
TRAIN_FILE = DATA_DIR / "train.jsonl"
TEST_FILE = DATA_DIR / "test.jsonl"

# Held out whole: a test text never shares a sector (hence a writing batch) with a training text.
TEST_SECTORS = frozenset({"rail", "cosmetics", "education", "real_estate", "fitness"})

Lang = Literal["es", "en"]
SentimentLabel = Literal["negative", "neutral", "positive"]
Crisis = Literal[
    "safety",
    "data_privacy",
    "legal_regulator",
    "boycott_mobilisation",
    "media",
    "executive_or_discrimination_scandal",
]
# The classifier's intents (shared.events.Intent) plus two the data labels for a trainer that
# wants them: a sales lead and a threat to leave.
PURCHASE_INTENT = "purchase_intent"
CHURN_THREAT = "churn_threat"
INTENTS = frozenset({*(intent.value for intent in Intent), PURCHASE_INTENT, CHURN_THREAT})

_PLATFORMS = {
    "x": "x",
    "fb": "facebook",
    "ig": "instagram",
    "yt": "youtube",
    "tt": "tiktok",
    "fo": "forum",
    "rv": "review",
    "rd": "reddit",
    "li": "linkedin",
    "wa": "whatsapp",
}
_SENTIMENTS: dict[str, SentimentLabel] = {"-": "negative", "0": "neutral", "+": "positive"}
_INTENTS = {
    "q": Intent.QUESTION.value,
    "r": Intent.REQUEST.value,
    "c": Intent.COMPLAINT.value,
    "i": Intent.INCIDENT.value,
    "p": Intent.PRAISE.value,
    "b": PURCHASE_INTENT,
    "x": CHURN_THREAT,
    "s": Intent.CRISIS_SIGNAL.value,
    "m": Intent.SPAM.value,
    "o": Intent.OTHER.value,
}
_CRISES: dict[str, Crisis | None] = {
    "-": None,
    "S": "safety",
    "D": "data_privacy",
    "L": "legal_regulator",
    "B": "boycott_mobilisation",
    "M": "media",
    "E": "executive_or_discrimination_scandal",
}
_HEADER = re.compile(r"^#\s*sector=(?P<sector>[a-z_]+)\s+lang=(?P<lang>es|en)\s*$")


class Row(BaseModel):
    """One labelled mention. The validator holds the labels to the playbook's logic, so a
    careless label (a crisis at P3, praise read as negative) fails the build, not the model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    text: str = Field(min_length=1, max_length=2000)
    lang: Lang
    sector: str = Field(pattern=r"^[a-z_]+$")
    platform: str
    sentiment: SentimentLabel
    complaint: bool
    intents: list[str] = Field(min_length=1)
    crisis: Crisis | None
    priority: Priority
    time_pressure: bool

    @model_validator(mode="after")
    def _consistent(self) -> Row:
        intents = set(self.intents)
        problems = []
        if not intents <= INTENTS:
            problems.append(f"unknown intents {sorted(intents - INTENTS)}")
        if self.platform not in _PLATFORMS.values():
            problems.append(f"unknown platform {self.platform}")
        if self.complaint != (Intent.COMPLAINT.value in intents):
            problems.append("complaint flag and complaint intent disagree")
        if (self.crisis is not None) != (Intent.CRISIS_SIGNAL.value in intents):
            problems.append("crisis category and crisis_signal intent disagree")
        if (self.crisis is not None) != (self.priority == Priority.P1):
            problems.append("P1 exactly when there is a crisis")
        if self.time_pressure and self.priority.rank > 2:
            problems.append("time pressure is at least P2")
        if Intent.PRAISE.value in intents and self.sentiment != "positive":
            problems.append("praise is positive")
        exclusive = {Intent.OTHER.value, Intent.SPAM.value}
        if intents & exclusive and len(intents) > 1:
            problems.append("other/spam stand alone")
        if Intent.SPAM.value in intents and self.priority != Priority.P4:
            problems.append("spam is P4")
        high = {Intent.COMPLAINT.value, Intent.INCIDENT.value, Intent.REQUEST.value, CHURN_THREAT}
        if intents & high and self.priority.rank > 2:
            problems.append("complaints, incidents, requests and churn threats are at least P2")
        if problems:
            raise ValueError(f"{self.id}: {'; '.join(problems)}")
        return self


def parse_batch(text: str, source: str) -> list[Row]:
    """The rows of one batch file (format in the module docstring)."""
    match = _HEADER.match(text.split("\n", 1)[0])
    if match is None:
        raise ValueError(f"{source}: first line must be '# sector=<sector> lang=<es|en>'")
    sector, lang = match["sector"], match["lang"]
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines()[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        labels, sep, body = line.partition("|")
        fields = labels.split()
        if not sep or len(fields) != 7 or not body.strip():
            raise ValueError(f"{source}:{number}: expected 7 label fields, '|' and a text")
        platform, sentiment, complaint, intents, crisis, priority, time = fields
        try:
            rows.append(
                Row(
                    id=f"{sector}.{lang}.{len(rows) + 1:03d}",
                    text=body.strip(),
                    lang=lang,
                    sector=sector,
                    platform=_PLATFORMS[platform],
                    sentiment=_SENTIMENTS[sentiment],
                    complaint={"1": True, "0": False}[complaint],
                    intents=[_INTENTS[letter] for letter in intents],
                    crisis=_CRISES[crisis],
                    priority=Priority(f"P{priority}"),
                    time_pressure={"t": True, "-": False}[time],
                )
            )
        except (KeyError, ValueError) as error:
            raise ValueError(f"{source}:{number}: {error}") from error
    return rows


def read_batches(directory: Path = BATCH_DIR) -> list[Row]:
    rows: list[Row] = []
    for path in sorted(directory.glob("*.txt")):
        rows.extend(parse_batch(path.read_text(encoding="utf-8"), path.name))
    return rows


def load(path: Path) -> list[Row]:
    """Validated rows of a JSONL file."""
    with path.open(encoding="utf-8") as lines:
        return [Row.model_validate_json(line) for line in lines if line.strip()]


def split(rows: Iterable[Row]) -> tuple[list[Row], list[Row]]:
    train: list[Row] = []
    test: list[Row] = []
    for row in rows:
        (test if row.sector in TEST_SECTORS else train).append(row)
    return train, test


def write_jsonl(rows: Sequence[Row], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row.model_dump(mode="json"), ensure_ascii=False) + "\n")


def build(directory: Path = BATCH_DIR) -> tuple[list[Row], list[Row]]:
    """Batches -> train.jsonl + test.jsonl (refuses duplicates)."""
    rows = read_batches(directory)
    if duplicates := near_duplicates(rows):
        raise ValueError(f"near-duplicate texts: {duplicates[:10]}")
    train, test = split(rows)
    write_jsonl(train, TRAIN_FILE)
    write_jsonl(test, TEST_FILE)
    return train, test


_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"[@#]\w+")
# Emoji stay: an emoji-only mention is its emoji.
_NON_WORD = re.compile(r"[^\w\u2600-\u27bf\U0001f000-\U0001faff]+")


def normalized(text: str) -> str:
    """Lower case, no accents, handles, hashtags, URLs or punctuation: what two texts that say
    the same thing share."""
    text = _URL.sub(" ", text.lower())
    text = _HANDLE.sub(" ", text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", text).split())


def near_duplicates(rows: Sequence[Row], threshold: float = 0.8) -> list[tuple[str, str]]:
    """Pairs of row ids whose normalised texts are equal, or whose word sets overlap at least
    `threshold` (Jaccard) for texts of four words or more."""
    words = [frozenset(normalized(row.text).split()) for row in rows]
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for row in rows:
        key = normalized(row.text)
        if key in seen:
            pairs.append((seen[key], row.id))
        seen.setdefault(key, row.id)
    # Only rows that share a rare word can overlap that much: index words used at most 40 times.
    index: dict[str, list[int]] = {}
    for position, bag in enumerate(words):
        for word in bag:
            index.setdefault(word, []).append(position)
    candidates: set[tuple[int, int]] = set()
    for members in index.values():
        if len(members) <= 40:
            candidates.update(combinations(members, 2))
    for first, second in sorted(candidates):
        a, b = words[first], words[second]
        if min(len(a), len(b)) >= 4 and len(a & b) / len(a | b) >= threshold:
            pair = (rows[first].id, rows[second].id)
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def stats(rows: Sequence[Row]) -> dict[str, Any]:
    """The counts the data card quotes."""
    by: dict[str, Counter[str]] = {
        "lang": Counter(row.lang for row in rows),
        "sector": Counter(row.sector for row in rows),
        "platform": Counter(row.platform for row in rows),
        "sentiment": Counter(f"{row.lang}:{row.sentiment}" for row in rows),
        "complaint": Counter(f"{row.lang}:{row.complaint}" for row in rows),
        "intent": Counter(f"{row.lang}:{i}" for row in rows for i in row.intents),
        "crisis": Counter(f"{row.lang}:{row.crisis}" for row in rows if row.crisis),
        "priority": Counter(f"{row.lang}:{row.priority.value}" for row in rows),
        "time_pressure": Counter(f"{row.lang}:{row.time_pressure}" for row in rows),
    }
    return {"rows": len(rows), **{name: dict(sorted(c.items())) for name, c in by.items()}}


def baseline(rows: Sequence[Row]) -> dict[str, float]:
    """The shipped rules-only default scored on `rows`: the figure the data card quotes, and the
    floor a trained default has to beat."""
    from sklearn.metrics import f1_score  # the optional `ml` extra, imported when used

    classifier = Classifier.default()
    results = [
        classifier.classify(
            mention_from_record({"id": row.id, "text": row.text, "language": row.lang}, row.id)
        )
        for row in rows
    ]
    crises = [result for row, result in zip(rows, results, strict=True) if row.crisis]
    return {
        "rows": len(rows),
        "sentiment_macro_f1": f1_score(
            [row.sentiment for row in rows],
            [result.sentiment.label for result in results],
            average="macro",
        ),
        "complaint_macro_f1": f1_score(
            [row.complaint for row in rows],
            [result.is_complaint for result in results],
            average="macro",
        ),
        "priority_accuracy": sum(
            row.priority == result.priority for row, result in zip(rows, results, strict=True)
        )
        / len(rows),
        "crises_at_p1": sum(result.priority == Priority.P1 for result in crises) / len(crises),
        "non_crises_at_p1": sum(
            result.priority == Priority.P1 and not row.crisis
            for row, result in zip(rows, results, strict=True)
        ),
    }


def main(argv: Sequence[str]) -> None:
    """`python -m services.classifier.training.dataset build|stats|baseline`"""
    if argv[:1] == ["build"]:
        train, test = build()
        print(f"train {len(train)} rows, test {len(test)} rows")
    elif argv[:1] == ["stats"]:
        for name, path in (("train", TRAIN_FILE), ("test", TEST_FILE)):
            print(name, json.dumps(stats(load(path)), ensure_ascii=False, indent=1))
    elif argv[:1] == ["baseline"]:
        for name, path in (("train", TRAIN_FILE), ("test", TEST_FILE)):
            rows = load(path)
            for lang in ("en", "es"):
                scores = baseline([row for row in rows if row.lang == lang])
                print(name, lang, json.dumps({k: round(v, 3) for k, v in scores.items()}))
    else:
        raise SystemExit(
            "usage: python -m services.classifier.training.dataset build|stats|baseline"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
