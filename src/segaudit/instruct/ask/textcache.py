"""The bundled MiniLM for the short texts of one request: a bounded cache in front of ``MiniLM.embed``.

A request's understanding embeds at most three short texts; a phrasing seen before (an exemplar, a repeated
request) costs a dictionary look-up. Texts are cut to :data:`REQUEST_MAX_TOKENS` tokens (instructions are a
sentence). The forward pass itself is :meth:`segaudit.instruct.embed.MiniLM.hidden` (fused projections), tested
against torch's own transformer layers.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

__all__ = ["CachedMiniLM"]

#: Longest token sequence a request text is cut to: instructions are a sentence, the model's own cap is 256.
REQUEST_MAX_TOKENS = 64
#: Texts whose vectors are kept (each 384 float32 = 1.5 kB).
CACHE_SIZE = 4096


class CachedMiniLM:
    """``embed(texts) -> (n, 384)`` unit vectors, as ``MiniLM.embed``, cached per text.

    ``base``: a loaded :class:`segaudit.instruct.embed.MiniLM` (its weights and tokenizer are shared, not copied).
    """

    def __init__(self, base, max_tokens: int = REQUEST_MAX_TOKENS, cache_size: int = CACHE_SIZE):
        self.base, self.max_tokens, self.cache_size = base, max_tokens, cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def _compute(self, texts: list[str]) -> np.ndarray:
        return self.base.embed(texts, batch=64, max_len=self.max_tokens)

    def remember(self, texts: list[str], vectors: np.ndarray) -> None:
        """Put known (text, vector) pairs in the cache (e.g. the index's exemplar embeddings)."""
        for t, v in zip(texts, vectors, strict=True):
            self._vectors[t] = np.asarray(v, dtype=np.float32)
            self._vectors.move_to_end(t)
        while len(self._vectors) > self.cache_size:
            self._vectors.popitem(last=False)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings (len(texts), 384); cached texts are not recomputed."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            # a large batch (building an index) goes through in chunks, long texts keep the model's own cap
            for s in range(0, len(missing), 64):
                chunk = missing[s:s + 64]
                self.remember(chunk, self._compute(chunk))
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([self._vectors[t] for t in texts])
