"""Throughput of the default classifier against VADER, on the same texts, in the same run.

    taskset -c 0 .venv/bin/python bench/classifier_throughput.py [--repeat 3]

Measures texts/s on one core for: VADER's polarity_scores (the reference), the default
classifier's classify() on ready Mentions, and `scs classify`'s NDJSON path end to end (parse,
build the Mention, classify, serialize). The best of --repeat rounds counts, so a noisy neighbour
on a shared machine does not decide. Texts come from ../shared/data (SCS_SHARED_DATA_DIR) when
present, else from the project's multi-sector complaint set.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from services.classifier.cli import classify_stream
from services.classifier.core import Classifier, mention_from_record

REPO = Path(__file__).resolve().parents[1]


def _texts() -> tuple[list[str], str]:
    shared = Path(os.environ.get("SCS_SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
    names = ["airline_en_test.csv", "airline_es_dev.csv"]
    if all((shared / name).is_file() for name in names):
        files = [shared / name for name in names]
    else:
        files = [REPO / "tests/data/classifier" / f"complaints_multisector_{lang}.csv"
                 for lang in ("en", "es")]  # fmt: skip
    texts: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            texts.extend(row["text"] for row in csv.DictReader(handle))
    return texts, ", ".join(path.name for path in files)


def best_rate(count: int, run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts, source = _texts()
    vader = SentimentIntensityAnalyzer()
    classifier = Classifier.default()
    mentions = [mention_from_record({"text": text}, str(i)) for i, text in enumerate(texts)]
    ndjson = b"".join(orjson.dumps({"id": i, "text": text}) + b"\n" for i, text in enumerate(texts))
    classifier.warm_up()
    for mention in mentions[:200]:
        classifier.classify(mention)

    rates = {
        "vader polarity_scores": best_rate(
            len(texts), lambda: [vader.polarity_scores(t) for t in texts], args.repeat
        ),
        "default classify()": best_rate(
            len(texts), lambda: [classifier.classify(m) for m in mentions], args.repeat
        ),
        "scs classify (NDJSON end to end)": best_rate(
            len(texts),
            lambda: classify_stream(classifier, io.BytesIO(ndjson), io.BytesIO()),
            args.repeat,
        ),
    }
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"{len(texts)} texts from {source}; CPUs allowed: {cpus}; best of {args.repeat}")
    reference = rates["vader polarity_scores"]
    for name, rate in rates.items():
        print(f"{name:<34} {rate:>10,.0f} texts/s   {rate / reference:5.2f}x VADER")


if __name__ == "__main__":
    main()
