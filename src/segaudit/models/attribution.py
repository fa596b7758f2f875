"""Modality attribution: which input sequences a promptable model's answer relies on (exact Shapley values).

A *value function* maps a subset of the sequences (those kept; the others removed) to a score, here the Dice of
the model's answer against the ground truth. :func:`subset_scores` evaluates it on all ``2^k`` subsets;
:func:`shapley_values` gives each sequence's exact Shapley value from them

    phi_i = sum over S not holding i of |S|! (k - |S| - 1)! / k! * (v(S + {i}) - v(S)),

which satisfy efficiency (they sum to ``v(all) - v(none)``); :func:`drop_one` gives the Dice drop when each
sequence alone is removed. :func:`sequence_slice_attribution` runs LiteMedSAM (or any
:class:`~segaudit.models.base.PromptableModel`) live on a 3-channel slice built from chosen MRI sequences, a
removed sequence's channel replaced by a fill (``zero``, the channel's ``mean``, or a number), with one box from
the ground truth of that slice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from math import factorial

import numpy as np

from segaudit.base.masks import overlap_dice
from segaudit.models.base import Prompt, PromptableModel
from segaudit.models.prompts import mask_box

__all__ = ["drop_one", "sequence_slice_attribution", "shapley_values", "subset_scores"]

Subset = frozenset[str]


def subset_scores(players: Sequence[str], value: Callable[[Subset], float]) -> dict[Subset, float]:
    """``value(S)`` for every subset ``S`` of ``players`` (``2^k`` calls, the empty and the full set included)."""
    names = list(dict.fromkeys(players))
    return {frozenset(c): float(value(frozenset(c))) for r in range(len(names) + 1) for c in combinations(names, r)}


def shapley_values(players: Sequence[str], scores: Mapping[Subset, float]) -> dict[str, float]:
    """Exact Shapley value of each player from the scores of all subsets (module docstring).

    Examples
    --------
    >>> s = {frozenset(): 0.0, frozenset("a"): 0.6, frozenset("b"): 0.2, frozenset("ab"): 1.0}
    >>> {k: round(v, 3) for k, v in shapley_values(["a", "b"], s).items()}
    {'a': 0.7, 'b': 0.3}
    """
    names = list(dict.fromkeys(players))
    k = len(names)
    out = {}
    for p in names:
        others = [q for q in names if q != p]
        phi = 0.0
        for r in range(k):
            weight = factorial(r) * factorial(k - r - 1) / factorial(k)
            for c in combinations(others, r):
                s = frozenset(c)
                phi += weight * (scores[s | {p}] - scores[s])
        out[p] = phi
    return out


def drop_one(players: Sequence[str], scores: Mapping[Subset, float]) -> dict[str, float]:
    """The score lost when each player alone is removed: ``v(all) - v(all - {i})``."""
    full = frozenset(players)
    return {p: scores[full] - scores[full - {p}] for p in dict.fromkeys(players)}


def _fill(channel: np.ndarray, fill: str | float) -> np.ndarray:
    if fill == "zero":
        return np.zeros_like(channel)
    if fill == "mean":
        return np.full_like(channel, channel.mean())
    if isinstance(fill, int | float):
        return np.full_like(channel, float(fill))
    raise ValueError(f"fill must be 'zero', 'mean' or a number, got {fill!r}")


def sequence_slice_attribution(model: PromptableModel, slices: Mapping[str, np.ndarray], gt: np.ndarray,
                               fill: str | float = "zero") -> tuple[dict[Subset, float], dict[str, float],
                                                                   dict[str, float]]:
    """Dice of every subset of the sequences, their Shapley values and drop-one losses, on one 2D slice.

    ``slices``: sequence -> its 2D slice (1 to 3 sequences, in channel order); a missing third channel is zeros.
    The model gets one box around the slice's ground truth (``gt``, 2D boolean; must not be empty) and the 3-channel
    image where each removed sequence is replaced by ``fill``. The empty subset is every channel filled.
    """
    names = list(slices)
    if not 1 <= len(names) <= 3:
        raise ValueError(f"1 to 3 sequences make a 3-channel slice, got {len(names)}")
    g = np.asarray(gt, bool)
    box = mask_box(g)
    if box is None:
        raise ValueError("the ground truth of this slice is empty: no box to prompt with")
    chans = [np.asarray(slices[n], dtype=np.float32) for n in names]
    zeros = np.zeros_like(chans[0])

    def value(keep: Subset) -> float:
        stack = [c if n in keep else _fill(c, fill) for n, c in zip(names, chans, strict=True)]
        stack += [zeros] * (3 - len(stack))
        pred = model.predict(np.stack(stack, axis=-1), [Prompt(box=box, kind="attribution")])[0]
        return overlap_dice(pred.mask, g)

    scores = subset_scores(names, value)
    return scores, shapley_values(names, scores), drop_one(names, scores)
