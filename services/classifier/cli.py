"""Offline classifier commands: `scs classifier train|evaluate` and `scs classify`.

scikit-learn is imported only by train/evaluate and by `--model`, so `scs classify` with the
default rules needs no ML dependency and starts fast.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import orjson
import typer

from services.classifier.core import (
    NO_CONTEXT,
    ClassificationContext,
    Classifier,
    classification_record,
    mention_from_record,
)
from shared.events import MAX_TEXT_CHARS, Mention

classifier_app = typer.Typer(
    help="Train and evaluate the classifier's models.", no_args_is_help=True
)
_BATCH = 1000
Target = Literal["sentiment", "complaint"]


class TargetOption(StrEnum):
    SENTIMENT = "sentiment"
    COMPLAINT = "complaint"


def _target(option: TargetOption | None) -> Target | None:
    if option is None:
        return None
    return "sentiment" if option is TargetOption.SENTIMENT else "complaint"


DataOption = Annotated[
    Path,
    typer.Option("--data", exists=True, dir_okay=False, help="Labeled CSV (text + label column)"),
]
TargetArg = Annotated[
    TargetOption | None,
    typer.Option("--target", help="What to learn or measure (default: from the CSV's columns)"),
]


EncoderOption = Annotated[
    bool,
    typer.Option(
        "--encoder",
        help="Also fine-tune multilingual-e5-small and average the two models "
        "(the `transformer` extra; minutes instead of seconds)",
    ),
]


def _progress(message: str) -> None:
    typer.echo(message, err=True)


@classifier_app.command()
def train(
    data: DataOption,
    out: Annotated[Path | None, typer.Option("--out", help="Model file to write")] = None,
    target: TargetArg = None,
    encoder: EncoderOption = False,
) -> None:
    """Train TF-IDF + lexicon features + logistic regression on a brand's labeled history."""
    from services.classifier.core.models import train as train_model

    path = train_model(data, out, _target(target), encoder, _progress)
    typer.echo(f"model written to {path}")
    typer.echo("Write a model card (data, licence, figures) before shipping it as a default.")


@classifier_app.command()
def evaluate(
    data: DataOption,
    model: Annotated[
        Path | None, typer.Option("--model", exists=True, help="Trained model (default: rules)")
    ] = None,
    target: TargetArg = None,
    cv: Annotated[
        int, typer.Option("--cv", min=0, help="Train and test by k-fold cross-validation")
    ] = 0,
    encoder: EncoderOption = False,
) -> None:
    """Per-class precision/recall/F1, macro-F1, confusion matrix and throughput."""
    from services.classifier.core.models import cross_validate
    from services.classifier.core.models import evaluate as evaluate_model

    chosen = _target(target)
    if cv > 1:
        report = cross_validate(data, cv, chosen, encoder, _progress)
    else:
        report = evaluate_model(data, model, chosen)
    typer.echo(report.format())


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line


def _error(number: int, record_id: Any, message: str) -> None:
    sys.stderr.buffer.write(
        orjson.dumps({"line": number, "id": record_id, "error": message}) + b"\n"
    )


def classify_stream(classifier: Classifier, source: IO[bytes], sink: IO[bytes]) -> int:
    """NDJSON in, one JSON line out per good input; bad lines go to stderr. Returns the count."""
    # Reference counting frees each batch; left on its own, the cyclic collector would run every
    # 700 allocations and rescan what lives on (10-15% of the run). One young-generation pass
    # per batch still frees any cycle a trained model makes.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _classify_lines(classifier, source, sink, collecting)
    finally:
        if collecting:
            gc.enable()


# A line with only these keys makes a Mention with every other field at its default.
_PLAIN_KEYS = frozenset({"id", "text"})


def _classify_lines(
    classifier: Classifier, source: IO[bytes], sink: IO[bytes], collect: bool
) -> int:
    written = 0
    out: list[bytes] = []
    pending: list[tuple[Any, tuple[Mention, ClassificationContext]]] = []
    # Rules only: a plain {"id", "text"} line that a Mention would accept goes straight to the
    # decisions, without building the pydantic Mention and Classification (same output; see
    # test_fast_paths). A trained model predicts whole batches, so it keeps the general path.
    plain = classifier.sentiment_model is None and classifier.complaint_model is None
    dumps = orjson.dumps
    newline = b"\n"

    def classify_pending() -> None:
        results = classifier.classify_batch([item for _, item in pending])
        out.extend(
            dumps(classification_record(record_id, result)) + newline
            for (record_id, _), result in zip(pending, results, strict=True)
        )
        pending.clear()

    def flush() -> None:
        nonlocal written
        if pending:
            classify_pending()
        sink.write(b"".join(out))
        written += len(out)
        out.clear()
        if collect:
            gc.collect(0)

    for number, line in _lines(source):
        record_id: Any = None
        try:
            record = orjson.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            record_id = record.get("id")
            text = record.get("text")
            if (
                plain
                and record.keys() <= _PLAIN_KEYS
                and isinstance(text, str)
                and len(text) <= MAX_TEXT_CHARS
                and record_id != ""
            ):
                out.append(dumps(classifier.plain_record(record_id, text)) + newline)
                if len(out) >= _BATCH:
                    flush()
                continue
            mention = mention_from_record(record, str(number))
        except (ValueError, TypeError) as exc:
            _error(number, record_id, str(exc).splitlines()[0] if str(exc) else repr(exc))
            continue
        if plain:
            # rules decide one mention at a time: keep the output in input order
            pending.append((record_id, (mention, NO_CONTEXT)))
            classify_pending()
        else:
            pending.append((record_id, (mention, NO_CONTEXT)))
            if len(pending) >= _BATCH:
                flush()
        if len(out) >= _BATCH:
            flush()
    flush()
    sink.flush()
    return written


def classify_command(
    input: Annotated[
        Path | None,
        typer.Option("--input", exists=True, dir_okay=False, help="NDJSON file (default: stdin)"),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", exists=True, help="Trained model (default: rules)")
    ] = None,
) -> None:
    """Classify NDJSON lines {"id", "text", ...} into JSON lines with priority and reasons."""
    classifier = Classifier.from_path(model) if model else Classifier.default()
    if input is None:
        classify_stream(classifier, sys.stdin.buffer, sys.stdout.buffer)
        return
    with input.open("rb") as source:
        classify_stream(classifier, source, sys.stdout.buffer)
