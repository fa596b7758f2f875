"""Preprocessing for training: per-modality normalisation, slice extraction, PNG/``.npz`` export."""

from segaudit.preprocess.normalize import nonzero_mask, normalize
from segaudit.preprocess.slices import export_slices, extract_slices, slice_indices

__all__ = ["export_slices", "extract_slices", "nonzero_mask", "normalize", "slice_indices"]
