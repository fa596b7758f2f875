"""Memory-order views: statistics that ignore axis order run fastest along the arrays' storage order."""

from __future__ import annotations

import numpy as np


def storage_order(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays transposed to C order when the first is stored Fortran-first (NIfTI data are), else as is.

    Boolean indexing and element-wise passes walk arrays in C order; on a Fortran-ordered volume every step
    jumps across memory. Reversing the axes is a free view that puts the walk back in storage order. Only for
    order-free statistics (histograms, moments, co-occurrences over a symmetric set of directions).
    """
    first = arrays[0]
    if first.ndim > 1 and first.strides[0] < first.strides[-1]:
        return tuple(np.asarray(a).T for a in arrays)
    return arrays
