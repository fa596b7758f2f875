"""Type aliases shared across the layers: spacings, finding severities, surface definitions, executors.

Only :mod:`typing` is imported here, so every layer may use these aliases (``segaudit.base`` is the bottom layer).
"""

from __future__ import annotations

from typing import Literal

Spacing = tuple[float, ...]
"""Voxel (or pixel) size per array axis in mm, in the axis order of the array: ``(z, y, x)`` or ``(y, x)``."""

Severity = Literal["info", "warning", "error"]
"""How serious a finding is: ``error`` blocks a result, ``warning`` qualifies it, ``info`` only records."""

SurfaceDefinition = Literal["surfel", "voxel"]
"""Surface of a mask for the distance metrics: ``surfel`` (the faces between foreground and background voxels,
area-weighted, as in the surface-distance package) or ``voxel`` (the centres of the foreground voxels on the
border, unweighted)."""

Executor = Literal["auto", "processes", "dask"]
"""How ``workers > 1`` run: ``auto`` (Dask when installed, else processes), ``processes`` or ``dask``."""
