"""Quality control of one case: every file read once, every problem a row with a severity and a message.

Checks (``check`` column) and their severities:

============================  ========  ==========================================================
check                         severity  meaning
============================  ========  ==========================================================
missing_file                  error     ground truth missing
missing_file                  warning   a sequence, prediction or instance mask missing
unreadable                    error     empty, truncated, corrupt or unknown-format file
nonintegral_mask              error     float mask with non-integral or NaN values
float_mask                    info      mask stored as float, converted to integers without loss
unknown_label                 error     mask values not in the label map (counted per value)
empty_mask                    warning   a ground truth or prediction without any foreground
empty_label                   info      a declared label absent from a ground truth or prediction
nonfinite_image               error     NaN or inf voxels in an image
all_zero_image                error     an image whose voxels are all 0
shape_mismatch                error     grids differ in shape (cannot be compared voxel-wise)
spacing_mismatch              error     voxel sizes differ beyond tolerance
origin_mismatch               warning   world positions of voxel (0,0,0) differ
direction_mismatch            warning   axis directions (orientation) differ
noncontiguous_instances       info      instance ids are not 1..n (they are used as given)
extra_axes                    error     a mask with a 4th axis (not of size 1): masks are 2D or 3D
extra_axes                    warning   an image with a 4th axis (time points, echoes): ``features``
                                        are computed per volume
singleton_axes                info      size-1 axes beyond the third dropped: ``(x, y, z, 1)`` is 3D
reader_warning                warning   what the file reader said about the header (nibabel's checks,
                                        e.g. ``sizeof_hdr should be 348``), with the file named
spacing_override              error     a dataset's ``spacing:`` has another length than its files have
                                        axes: it is not applied (dataset level)
mixed_sizes                   warning   a 2D dataset whose images differ in size (info for 3D): pixel
                                        distances of different sizes are different scales, e.g. a
                                        685x756 journal figure among 2000x2000 scans
mixed_formats                 warning   a dataset whose images come in several file formats or colour
                                        modes (JPEG and PNG, RGB and grey): often several sources
============================  ========  ==========================================================

``mixed_sizes``, ``mixed_formats`` and ``spacing_override`` are dataset-level findings (:func:`check_dataset`,
empty ``case``).

Geometry is compared between sequences (against the first readable one), between the ground truth and the
images, and between each prediction and the ground truth (or the first image when there is no ground truth).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from segaudit.base.types import Severity, Spacing
from segaudit.dataset.discover import FileRecord
from segaudit.dataset.project import DatasetConfig
from segaudit.errors import ConfigError, ImageReadError, MaskValueError, check_keys
from segaudit.io.geometry import Geometry, compare_geometry, format_vector
from segaudit.io.masks import MaskEncoding, decode_mask, stored_mask_values
from segaudit.io.readers import Image, read_image

SEVERITIES = ("error", "warning", "info")


@dataclass
class QCFinding:
    """One QC result row."""

    dataset: str
    case: str
    role: str
    key: str
    path: str
    check: str
    severity: Severity
    message: str


@dataclass
class FileInfo:
    """What was learnt about one file while checking it (the ``files`` table)."""

    dataset: str
    case: str
    role: str
    key: str
    path: str
    exists: bool
    readable: bool = False
    size_bytes: int | None = None
    shape: str | None = None
    spacing: str | None = None
    origin: str | None = None
    orientation: str | None = None
    disk_dtype: str | None = None
    labels_present: str | None = None
    #: Whether the file is a colour raster (not a column of the ``files`` table; used by :func:`check_dataset`).
    is_color: bool | None = None


@dataclass
class QCOptions:
    """Tolerances for geometry comparison (see :func:`segaudit.io.compare_geometry`)."""

    spacing_tol: float = 1e-3
    origin_tol: float = 1e-2
    direction_tol: float = 1e-3

    @classmethod
    def from_dict(cls, data: dict | None) -> QCOptions:
        """QC options from the project file's ``qc:`` mapping (defaults when empty); unknown keys raise."""
        if not data:
            return cls()
        check_keys(data, cls.__dataclass_fields__, "qc")
        try:
            return cls(**{k: float(v) for k, v in data.items()})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"qc: tolerances must be numbers ({exc})") from None


@dataclass
class CaseQC:
    """QC findings and file facts of one case; ``masks`` keeps decoded masks only when asked for."""

    findings: list[QCFinding] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)


def check_case(ds: DatasetConfig, records: list[FileRecord], options: QCOptions | None = None) -> CaseQC:
    """Run every QC check on the files of one case.

    Never raises for bad data: each problem becomes a :class:`QCFinding` naming the file and the reason.
    """
    options = options or QCOptions()
    out = CaseQC()
    geoms: dict[tuple[str, str], tuple[Geometry, str]] = {}

    def add(rec: FileRecord, check: str, severity: Severity, message: str) -> None:
        out.findings.append(QCFinding(rec.dataset, rec.case, rec.role, rec.key, rec.path, check, severity,
                                      message))

    for rec in records:
        info = FileInfo(rec.dataset, rec.case, rec.role, rec.key, rec.path, rec.exists)
        out.files.append(info)
        what = _describe(rec)
        if not rec.exists:
            severity: Severity = "error" if rec.role == "ground_truth" else "warning"
            add(rec, "missing_file", severity, f"{rec.path}: missing {what}")
            continue
        try:
            info.size_bytes = os.path.getsize(rec.path)
            img = read_image(rec.path)
        except ImageReadError as exc:
            add(rec, "unreadable", "error", str(exc))
            continue
        except OSError as exc:  # dangling symlink, symlink loop, no permission: this file's row, not the scan's
            add(rec, "unreadable", "error", f"{rec.path}: cannot read ({exc.strerror or exc})")
            continue
        info.readable = True
        for note in img.notes:
            add(rec, "reader_warning", "warning", note)
        if img.stored_shape and tuple(img.array.shape) != img.stored_shape:
            add(rec, "singleton_axes", "info", f"{rec.path}: stored shape {img.stored_shape} read as "
                                                f"{tuple(img.array.shape)} (size-1 axes beyond the third dropped)")
        if img.extra_axes:
            spatial = "×".join(str(v) for v in img.shape)
            if rec.role == "image":
                add(rec, "extra_axes", "warning",
                    f"{rec.path}: {what} is {img.array.ndim}D, shape {tuple(img.array.shape)}: a {spatial} grid "
                    f"with {'×'.join(str(v) for v in img.extra_axes)} volumes; features are computed per "
                    "volume (<sequence>.volume0, ...)")
            else:
                add(rec, "extra_axes", "error",
                    f"{rec.path}: {what} is {img.array.ndim}D, shape {tuple(img.array.shape)}; a mask must be "
                    f"2D or 3D (a {spatial} grid), so it cannot be scored")
        if ds.spacing is not None and len(ds.spacing) == img.ndim:
            img.spacing = ds.spacing
        info.shape = str(img.shape)
        info.spacing = format_vector(img.spacing)
        info.origin = format_vector(img.origin)
        info.orientation = img.orientation()
        info.disk_dtype = img.disk_dtype
        info.is_color = img.is_color
        geoms[(rec.role, rec.key)] = (Geometry.of(img), rec.path)
        if rec.role == "image":
            _check_image(img, rec, add)
        elif not img.extra_axes:  # a 4D mask has its error above; its values are not labels of a grid
            _check_mask(ds, img, rec, info, add)

    _check_geometry(records, geoms, options, add)
    return out


def _describe(rec: FileRecord) -> str:
    if rec.role == "image":
        return f"sequence {rec.key!r}" if rec.key else "image"
    if rec.role == "prediction":
        return f"prediction of model {rec.key!r}"
    return rec.role.replace("_", " ")


def _check_image(img: Image, rec: FileRecord, add) -> None:
    a = img.array
    if np.issubdtype(a.dtype, np.floating):
        bad = ~np.isfinite(a)
        n_bad = int(bad.sum())
        if n_bad:
            add(rec, "nonfinite_image", "error",
                f"{rec.path}: {n_bad} NaN/inf voxel(s) ({100 * n_bad / a.size:.3g} % of the image)")
    if not np.any(a):
        add(rec, "all_zero_image", "error", f"{rec.path}: every voxel is 0 (blank image)")


def _check_mask(ds: DatasetConfig, img: Image, rec: FileRecord, info: FileInfo, add) -> None:
    encoding = ds.encoding_for(rec.key) if rec.role == "prediction" else ds.mask_encoding
    instance_map = rec.role == "instances" or encoding.kind == "instances"
    if instance_map:
        encoding = MaskEncoding()  # instance ids are stored as plain integers
    try:
        values, is_color = stored_mask_values(img, encoding)
        labels = decode_mask(values, encoding, rec.path, is_color)
    except MaskValueError as exc:
        add(rec, "nonintegral_mask", "error", str(exc))
        return
    if encoding.kind == "labels" and np.issubdtype(img.array.dtype, np.floating):
        add(rec, "float_mask", "info",
            f"{rec.path}: mask stored as {img.disk_dtype}; all values are integral, converted without loss")
    values, counts = np.unique(labels, return_counts=True)
    present = {int(v): int(c) for v, c in zip(values, counts, strict=True) if v != 0}
    info.labels_present = ",".join(str(v) for v in sorted(present))
    if instance_map:
        ids = sorted(present)
        if ids and ids != list(range(1, len(ids) + 1)):
            add(rec, "noncontiguous_instances", "info",
                f"{rec.path}: {len(ids)} instances with ids from {ids[0]} to {ids[-1]} (not 1..{len(ids)}); "
                "ids are used as given")
        if not ids:
            add(rec, "empty_mask", "warning", f"{rec.path}: instance mask holds no instance")
        return
    lm = ds.label_map
    if lm.labels:
        unknown = {v: c for v, c in present.items() if v not in lm.values}
        if unknown:
            shown = ", ".join(f"{v} ({c} voxels)" for v, c in sorted(unknown.items()))
            declared = ", ".join(f"{n}={v}" for n, v in lm.labels.items())
            add(rec, "unknown_label", "error",
                f"{rec.path}: value(s) {shown} not in the label map ({declared})")
    who = "prediction" if rec.role == "prediction" else "ground truth"
    if not present:
        add(rec, "empty_mask", "warning", f"{rec.path}: {who} has no foreground voxel")
        return
    for name, value in lm.labels.items():
        if value not in present:
            add(rec, "empty_label", "info", f"{rec.path}: {who} has no voxel of label {name} ({value})")


def _check_geometry(records: list[FileRecord], geoms: dict, options: QCOptions, add) -> None:
    by_key = {(r.role, r.key): r for r in records}
    image_keys = [k for k in geoms if k[0] == "image"]
    ref_image = image_keys[0] if image_keys else None
    gt_key = ("ground_truth", "") if ("ground_truth", "") in geoms else None
    pairs: list[tuple[tuple[str, str], tuple[str, str], str]] = []
    for k in image_keys[1:]:
        pairs.append((k, image_keys[0], "sequence"))
    if gt_key and ref_image:
        pairs.append((gt_key, ref_image, "ground truth vs image"))
    mask_ref = gt_key or ref_image
    for k in geoms:
        if k[0] in ("prediction", "instances") and mask_ref:
            pairs.append((k, mask_ref, f"{k[0].replace('_', ' ')} vs {mask_ref[0].replace('_', ' ')}"))
    for k, ref, label in pairs:
        (g, path), (gref, ref_path) = geoms[k], geoms[ref]
        for diff in compare_geometry(g, gref, options.spacing_tol, options.origin_tol, options.direction_tol):
            check = diff.split(" ", 1)[0] + "_mismatch"
            severity = "error" if check in ("shape_mismatch", "spacing_mismatch") else "warning"
            add(by_key[k], check, severity,
                f"{path}: {diff.replace(' vs ', ' here vs ', 1)} in {os.path.basename(ref_path)} ({label})")


def _size_text(shape: str) -> str:
    """``'(756, 685)'`` -> ``'756×685'``."""
    return "×".join(p.strip() for p in shape.strip("()").split(",") if p.strip())


def check_spacing_override(dataset: str, spacing: Spacing | None, files: list[FileInfo],
                           max_listed: int = 5) -> list[QCFinding]:
    """An error when a dataset's ``spacing:`` override has another length than its files' grids have axes.

    Such an override is not applied (the header spacing is used), so it is reported rather than ignored.

    Parameters
    ----------
    dataset:
        Dataset name.
    spacing:
        The dataset's ``spacing:`` (``None``: nothing to check).
    files:
        The :class:`FileInfo` records of the dataset; their ``shape`` gives each grid's dimensionality.

    Returns
    -------
    list[QCFinding]
        At most one ``spacing_override`` error (``case`` ''), naming the dataset, the override and the files.
    """
    if spacing is None:
        return []
    bad: dict[int, list[str]] = {}
    for f in files:
        if f.readable and f.shape:
            nd = len([p for p in f.shape.strip("()").split(",") if p.strip()])
            if nd != len(spacing):
                bad.setdefault(nd, []).append(f.path)
    if not bad:
        return []
    parts = "; ".join(f"{len(paths)} {nd}D file(s) (e.g. {', '.join(sorted(paths)[:max_listed])})"
                      for nd, paths in sorted(bad.items()))
    return [QCFinding(dataset, "", "", "", "", "spacing_override", "error",
                      f"dataset {dataset}: spacing: {list(spacing)} has {len(spacing)} value(s), but {parts} need "
                      "one value per axis; the override is not applied to them (their header spacing is used)")]


def check_dataset(dataset: str, files: list[FileInfo], max_listed: int = 5,
                  spacing: Spacing | None = None) -> list[QCFinding]:
    """Dataset-level checks over the readable files of one dataset: mixed image sizes and mixed sources.

    The images are checked (the ground truths when the dataset declares no images). A mean of distances in
    pixels over images of different sizes mixes scales (and the empty-mask penalty depends on the size), and a
    mix of file formats or colour modes often means several sources (journal figures among scanner exports).

    Parameters
    ----------
    dataset:
        Dataset name.
    files:
        The :class:`FileInfo` records of every case of the dataset (from :func:`check_case`).
    max_listed:
        Cases named per minority size or format.
    spacing:
        The dataset's ``spacing:`` override, checked against the files' dimensionality.

    Returns
    -------
    list[QCFinding]
        ``mixed_sizes`` (warning for 2D, info for 3D volumes, whose sizes often differ by design) and
        ``mixed_formats`` (warning), with ``case`` ''; and ``spacing_override`` (error) when ``spacing`` (the
        dataset's ``spacing:``) does not fit the files (see :func:`check_spacing_override`).
    """
    out: list[QCFinding] = check_spacing_override(dataset, spacing, files, max_listed)
    readable = [f for f in files if f.readable and f.shape]
    role = "image" if any(f.role == "image" for f in readable) else "ground_truth"
    chosen = [f for f in readable if f.role == role]
    if len(chosen) < 2:
        return out
    what = "images" if role == "image" else "ground-truth masks"

    def listing(groups: dict[str, list[str]], label) -> str:
        parts = []
        for key, cases in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            names = ", ".join(sorted(cases)[:max_listed]) + (" ..." if len(cases) > max_listed else "")
            parts.append(f"{len(cases)} × {label(key)} ({names})")
        return "; ".join(parts)

    sizes: dict[str, list[str]] = {}
    for f in chosen:
        assert f.shape is not None  # readable above keeps only files with a shape
        sizes.setdefault(f.shape, []).append(f.case)
    if len(sizes) > 1:
        ndim = len([p for p in next(iter(sizes)).strip("()").split(",") if p.strip()])
        severity: Severity = "warning" if ndim == 2 else "info"
        out.append(QCFinding(dataset, "", role, "", "", "mixed_sizes", severity,
                             f"{what} come in {len(sizes)} sizes (rows×columns): "
                             f"{listing(sizes, _size_text)}; distances and the empty-mask penalty are in "
                             "pixels of different scales unless a spacing is declared"))
    kinds: dict[str, list[str]] = {}
    for f in chosen:
        suffix = os.path.splitext(f.path)[1].lower().lstrip(".")
        suffix = {"jpeg": "jpg", "tiff": "tif", "gz": "nii.gz"}.get(suffix, suffix)
        mode = ("" if f.is_color is None else " colour" if f.is_color else " grey") \
            if suffix not in ("nii", "nii.gz") else ""
        kinds.setdefault(f"{suffix}{mode}", []).append(f.case)
    if len(kinds) > 1:
        out.append(QCFinding(dataset, "", role, "", "", "mixed_formats", "warning",
                             f"{what} come in {len(kinds)} formats: {listing(kinds, str)}; several sources "
                             "(e.g. journal figures among scanner exports) may differ in scale and contrast"))
    return out
