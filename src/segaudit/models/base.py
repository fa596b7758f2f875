"""The promptable-model interface: prompts, predictions and the ``PromptableModel`` protocol (no torch here).

Coordinates are always in the ORIGINAL image's pixel grid: ``x`` is the column index, ``y`` the row index, a
box is ``(x_min, y_min, x_max, y_max)`` with inclusive pixel indices (a one-pixel object at column 3, row 5 has the
box ``(3, 5, 3, 5)``), as MedSAM's ``get_bbox`` writes them. A backend maps them to its own input frame and records
how.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Box", "ImageEmbedding", "Prediction", "Prompt", "PromptableModel"]

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Prompt:
    """One prompt: an optional box, zero or more points with labels, and an optional dense mask prompt.

    ``points`` are ``(x, y)`` pairs; ``labels`` hold 1 (positive, "object here") or 0 (negative) per point.
    ``mask_logits`` is a previous low-resolution logit map in the backend's input frame (for LiteMedSAM 256×256,
    as :attr:`Prediction.low_res_logits` returns it), fed to the prompt encoder's dense branch.
    ``kind`` and ``component`` say where the prompt came from (e.g. ``"box"``, component 2) and are recorded, not
    used by the model.
    """

    box: Box | None = None
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    mask_logits: np.ndarray | None = field(default=None, compare=False, repr=False)
    kind: str = ""
    component: int | None = None

    def __post_init__(self) -> None:
        if len(self.points) != len(self.labels):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels")
        if any(lab not in (0, 1) for lab in self.labels):
            raise ValueError(f"point labels must be 0 (negative) or 1 (positive), got {self.labels}")
        if self.box is None and not self.points and self.mask_logits is None:
            raise ValueError("a prompt needs a box, a point or a mask")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x1 < x0 or y1 < y0:
                raise ValueError(f"box {self.box} is not (x_min, y_min, x_max, y_max)")

    def signature(self) -> tuple[int, bool, bool]:
        """(number of points, has a box, has a mask): prompts with equal signatures decode in one batch."""
        return len(self.points), self.box is not None, self.mask_logits is not None

    def record(self) -> dict[str, Any]:
        """A JSON-ready description (box, points, labels, kind, component; whether a mask was given)."""
        return {"kind": self.kind, "component": self.component,
                "box": None if self.box is None else [float(v) for v in self.box],
                "points": [[float(x), float(y)] for x, y in self.points], "labels": list(self.labels),
                "mask_prompt": self.mask_logits is not None}


@dataclass
class ImageEmbedding:
    """An encoded image: the backend's embedding plus what is needed to map prompts in and masks out.

    ``original_size`` is (H, W) of the input image; ``input_size`` the (h, w) of the resized image inside the
    model's padded input; ``key`` identifies image content + preprocessing (the cache key); ``encode_seconds`` the
    wall time of the encoder call that produced it (a cache hit returns the same object, time unchanged; an
    embedding read from a disk cache keeps the time of the call that computed it); ``source`` says where it came
    from: ``"encoder"`` or ``"disk"`` (read from a :class:`~segaudit.models.cache.DiskEmbeddingCache`).
    """

    embedding: Any
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    key: str
    encode_seconds: float
    preprocessing: dict[str, Any]
    source: str = "encoder"


@dataclass
class Prediction:
    """A decoded prompt.

    A boolean mask at the original resolution, the model's predicted IoU and its low-resolution logits (input frame;
    feed them back as :attr:`Prompt.mask_logits`).
    """

    mask: np.ndarray
    predicted_iou: float
    low_res_logits: np.ndarray
    decode_seconds: float
    prompt: Prompt


@runtime_checkable
class PromptableModel(Protocol):
    """Encode an image once, then decode many prompts against the embedding (batched).

    ``predict`` is ``decode(encode(image), prompts)`` with the embedding cached; ``run_record`` describes the
    model and its preprocessing for the run's records (weights checksum, library versions, resize filter, ...).
    """

    name: str

    def encode(self, image: np.ndarray) -> ImageEmbedding: ...

    def decode(self, embedding: ImageEmbedding, prompts: Sequence[Prompt]) -> list[Prediction]: ...

    def predict(self, image: np.ndarray, prompts: Sequence[Prompt]) -> list[Prediction]: ...

    def run_record(self) -> dict[str, Any]: ...
