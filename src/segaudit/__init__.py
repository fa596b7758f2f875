"""segaudit: audit medical image segmentation projects, from raw data to a verdict.

The package is organised by the stages of the data's journey:

- :mod:`segaudit.io` reads images and masks into :class:`~segaudit.io.Image` records;
- :mod:`segaudit.dataset` describes projects (YAML path templates, layout presets) and discovers files;
- :mod:`segaudit.qc` checks what was found;
- :mod:`segaudit.preprocess` prepares images for training (normalisation, slices, export);
- :mod:`segaudit.store` keeps every result of a run in one DuckDB database.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segaudit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
