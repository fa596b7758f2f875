"""The one internal instruction record, and the 2D *views* (images, chosen slices of volumes) it is built from.

A view is one 2D label array with its image, spacing and provenance: a 2D image as it lies on disk, or one slice
of a 3D volume (``volume[..., k]`` for ``axis=2``: rows are the first voxel axis, columns the second, so the
exported masks are in voxel order, not display order). Targets are the label-map entries (labels and regions,
one entry per distinct set of label values) with pixels in the view; their *components* are the ground-truth
instances when the dataset declares an instance map (an instance belongs to the label most of its pixels carry),
else the 8-connected components of the target mask.

Sizes are physical (mm, mm^2) only when the file's spacing is physical (NIfTI); otherwise pixels, and the record
says so (``unit = "px"``). Boxes are pixel ``[x0, y0, x1, y1]`` with exclusive ends (pixel edges: a single pixel
at column 3, row 5 is ``[3, 5, 4, 6]``). The largest diameter is that of the largest component, by the definition
of :func:`segaudit.features.shape_features` (the longest chord of its marching-squares outline; one pixel
measures 1 pixel), and areas and volumes are pixel/voxel counts times the pixel/voxel size, as in
:func:`segaudit.features.lesion_features`: measure answers equal the features table for the same mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import cdist
from skimage import measure

from segaudit.base.masks import component_boxes
from segaudit.instruct.rle import encode_rle_crop

TASK_TYPES = ("segment", "detect", "count", "measure", "describe", "absent", "refuse")
#: Size bins of a target by the fraction of the view's pixels it covers (tiny lesions must be sampled too).
SIZE_BINS = ((0.001, "tiny"), (0.01, "small"), (0.1, "medium"), (float("inf"), "large"))


@dataclass
class Provenance:
    """Where a record comes from: enough to find the source pixels again."""

    dataset: str
    case: str
    image_file: str | None
    mask_file: str
    instance_file: str | None = None
    slice: int | None = None
    axis: int | None = None
    #: Number of slices along ``axis`` (None for 2D images).
    n_slices: int | None = None


@dataclass
class Target:
    """One grounded target of a record: the label/region, its mask (COCO RLE), components and sizes."""

    name: str
    phrase: str
    values: list[int]
    rle: dict
    boxes: list[list[int]] = field(default_factory=list)
    count: int = 0
    area: float = 0.0
    pixels: int = 0
    diameter: float = 0.0
    unit: str = "px"
    volume: float | None = None
    position: str = ""
    size_bin: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-able dict; the lists and the RLE are copied (one level: their items are numbers)."""
        out = dict(self.__dict__)
        out["values"] = list(self.values)
        out["rle"] = {k: list(v) if isinstance(v, list) else v for k, v in self.rle.items()}
        out["boxes"] = [list(b) for b in self.boxes]
        return out


@dataclass
class Record:
    """One instruction-response pair, the single source every export format is written from.

    ``answer`` of segment and describe records holds one ``[SEG]`` token per target, in the order of
    ``targets`` (describe answers wrap each grounded phrase as ``<p>phrase</p> [SEG]``); detect, count and
    measure answers give boxes and numbers in words (LISA's writer appends their ``[SEG]``).
    Negatives have ``negative`` set (``absent``, ``other_modality``, ``offtask``) and a ``refusal_reason``.
    """

    id: str
    task: str
    instruction: str
    answer: str
    template: str
    register: str
    form: str
    modality: str
    height: int
    width: int
    provenance: Provenance
    targets: list[Target] = field(default_factory=list)
    asked_task: str = ""
    negative: str | None = None
    refusal_reason: str | None = None
    strata: dict[str, str] = field(default_factory=dict)
    #: The exported image (path relative to the output folder) and its intensity window, when images are
    #: exported (:mod:`segaudit.instruct.images`); None otherwise (the record points at ``provenance.image_file``).
    exported_image: str | None = None
    image_window: list[float] | None = None
    #: Name of the paraphrase plug-in that rephrased the instruction (None: the template's text).
    paraphrase: str | None = None

    def to_dict(self) -> dict:
        """Plain JSON-able dict (nested dataclasses as dicts), the field values copied.

        Written out field by field: :func:`dataclasses.asdict` deep-copies every box and run length and took
        a quarter of an export's time.
        """
        out = dict(self.__dict__)
        out["provenance"] = dict(self.provenance.__dict__)
        out["targets"] = [t.to_dict() for t in self.targets]
        out["strata"] = dict(self.strata)
        out["image_window"] = None if self.image_window is None else list(self.image_window)
        return out


@dataclass
class View:
    """A 2D label array to build records from (internal, not exported)."""

    dataset: str
    case: str
    labels: np.ndarray
    instances: np.ndarray | None
    spacing: tuple[float, float]
    physical: bool
    provenance: Provenance
    label_map: dict[str, tuple[int, ...]]
    modality: str
    strata: dict[str, str]
    #: Target name -> volume (mm^3 or voxels) over the whole 3D volume, for slices.
    volumes: dict[str, float] = field(default_factory=dict)


def feret_diameter(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    """Largest distance between two points of a 2D mask's outline, in the spacing's unit (0 for an empty mask).

    The outline is the marching-squares contour at level 0.5 of the zero-padded mask (through the midpoints of
    the edges between object and background pixels), scaled by ``spacing`` (rows, columns); the maximum is taken
    exactly over its convex hull. This is the definition of ``max_diameter`` in
    :func:`segaudit.features.shape_features` (2D), so a record's diameter equals the features table's for the
    same mask (tested). One pixel: 1 pixel (its outline spans one pixel edge to edge).

    Examples
    --------
    >>> feret_diameter(np.ones((1, 1), bool), (1.0, 1.0))
    1.0
    >>> round(feret_diameter(np.ones((3, 4), bool), (1.0, 1.0)), 4)  # edge midpoints: corners cut, sqrt(4^2 + 2^2)
    4.4721
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return 0.0
    cols = np.flatnonzero(mask.any(axis=0))
    crop = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    contours = measure.find_contours(np.pad(crop.astype(np.float32), 1), 0.5)
    if not contours:
        return 0.0
    pts = np.concatenate(contours) * np.asarray(spacing, dtype=np.float64)
    if len(pts) < 2:
        return 0.0
    try:
        pts = pts[ConvexHull(pts).vertices]
    except (QhullError, ValueError):  # collinear outline points: the extremes are among all points
        pass
    # blocks of rows against the points from there on: every pair once, bounded memory
    return float(max(cdist(pts[i:i + 2048], pts[i:]).max() for i in range(0, len(pts), 2048)))


def position_phrase(mask: np.ndarray) -> str:
    """Where a mask's centroid lies in the image, on a 3x3 grid: 'upper left', 'centre', 'lower right'...

    Image-relative (rows from the top, columns from the left of the stored array), never patient-relative:
    which side is the patient's left depends on the view and the file's orientation.
    """
    rows, cols = np.nonzero(mask)
    return _position(rows.mean(), cols.mean(), *mask.shape)


def _position(row: float, col: float, h: int, w: int) -> str:
    r = ("upper", "middle", "lower")[min(2, int(3 * row / h))]
    c = ("left", "centre", "right")[min(2, int(3 * col / w))]
    if r == "middle" and c == "centre":
        return "centre"
    if r == "middle":
        return f"{c} side"
    if c == "centre":
        return f"{r} centre"
    return f"{r} {c}"


def size_bin(pixels: int, total: int) -> str:
    """Size bin of a target covering ``pixels`` of ``total`` pixels (:data:`SIZE_BINS`)."""
    frac = pixels / max(total, 1)
    for bound, name in SIZE_BINS:
        if frac < bound:
            return name
    return SIZE_BINS[-1][1]


def distinct_entries(label_map: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Label-map entries with distinct value sets, the first name kept (labels before regions).

    AUDIT's region ``ET`` is label ``ENH``'s one value: asking for both would be the same target twice.
    """
    out: dict[str, tuple[int, ...]] = {}
    seen: set[tuple[int, ...]] = set()
    for name, vals in label_map.items():
        key = tuple(sorted(set(vals)))
        if key and key not in seen:
            seen.add(key)
            out[name] = key
    return out


def instance_class_map(labels: np.ndarray, instances: np.ndarray) -> dict[int, int]:
    """Instance id -> the label value most of its pixels carry (0 when mostly background)."""
    ids = instances.ravel()
    keep = ids > 0
    ids, labs = ids[keep].astype(np.int64), labels.ravel()[keep].astype(np.int64)
    if ids.size == 0:
        return {}
    pairs, counts = np.unique(np.column_stack([ids, labs]), axis=0, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (i, lab), c in zip(pairs.tolist(), counts.tolist(), strict=True):
        # ties go to the smaller label value (np.unique sorts), a stable, stated rule
        if i not in best or c > best[i][1]:
            best[i] = (lab, c)
    return {i: lab for i, (lab, _) in best.items()}


def foreground_box(labels: np.ndarray) -> tuple[slice, slice] | None:
    """The smallest (rows, cols) slices holding every non-zero pixel, or None for an empty array."""
    rows = np.flatnonzero(labels.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(labels.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def view_targets(view: View) -> tuple[list[Target], list[str]]:
    """The targets with pixels in a view (in label-map order) and the names of the entries it lacks.

    Phrases are left as the entry's name; the generator picks a synonym per record. Everything is computed on
    the crop around the foreground (a fundus photo's exudates cover a few percent of 12 Mpx), then placed back.
    """
    present: list[Target] = []
    entries = distinct_entries(view.label_map)
    box = foreground_box(view.labels)
    if box is None:
        return present, list(entries)
    absent: list[str] = []
    h, w = view.labels.shape
    r0, c0 = box[0].start, box[1].start
    labels = view.labels[box]
    instances = view.instances[box] if view.instances is not None else None
    classes = instance_class_map(labels, instances) if instances is not None else None
    unit = "mm" if view.physical else "px"
    pixel_area = float(view.spacing[0] * view.spacing[1])
    for name, vals in entries.items():
        mask = np.isin(labels, vals)
        pixels = int(mask.sum())
        if pixels == 0:
            absent.append(name)
            continue
        if classes is not None:
            assert instances is not None  # classes is only computed from instances
            ids = sorted(i for i, lab in classes.items() if lab in vals)
            lut = np.zeros(int(instances.max()) + 1, dtype=np.int32)
            lut[ids] = np.arange(1, len(ids) + 1)
            labelled, n = lut[instances], len(ids)
        else:
            labelled, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        boxes = [[b[0] + c0, b[1] + r0, b[2] + c0, b[3] + r0] for _, b in component_boxes(labelled, n)]
        if n:
            sizes = np.bincount(labelled.ravel(), minlength=n + 1)[1:]
            largest = labelled == int(np.argmax(sizes)) + 1
        else:
            largest = mask
        full_rows, full_cols = np.nonzero(mask)
        present.append(Target(
            name=name, phrase=name, values=list(vals), rle=encode_rle_crop(mask, (r0, c0), (h, w)), boxes=boxes,
            count=n, area=round(pixels * pixel_area, 4), pixels=pixels,
            diameter=round(feret_diameter(largest, view.spacing), 3), unit=unit, volume=view.volumes.get(name),
            position=_position(full_rows.mean() + r0, full_cols.mean() + c0, h, w), size_bin=size_bin(pixels, h * w)))
    return present, absent
