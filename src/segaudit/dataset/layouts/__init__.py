"""Known data layouts, one module each, tried in the order of :data:`LAYOUTS` by :func:`detect_layout`.

Recognised layouts (each proposal says which rule fired and why):

``nnunet`` (:mod:`.nnunet`)
    nnU-Net raw: ``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` and ``dataset.json`` for the
    channel and label names (v1 and v2 formats).
``audit`` (:mod:`.audit`)
    AUDIT / BraTS 2020 folders: ``<DS>/<DS>_images/<case>/<case>_<seq>.nii.gz`` with ``<case>_seg``, and
    predictions ``<DS>/<DS>_seg/<model>/<case>/<case>_pred.nii.gz``.
``brainmetshare`` (:mod:`.brainmetshare`)
    ``<case>/{t1_pre,t1_gd,flair,bravo,seg}.nii.gz``.
``flat2d`` (:mod:`.flat2d`)
    ``images/`` plus mask folders matched by file stem with an optional suffix (``_EX``, ``_mask``);
    folder names decide the role (``mask``/``label``/``gt`` -> ground truth, ``pred``/``output`` ->
    prediction, ``inst`` -> instances, ``ignore`` -> skipped) and lossless formats win over JPEG.
``case_folders`` (:mod:`.case_folders`)
    BraTS 2023+ names ``<case>/<case>-t1c.nii.gz`` ... ``<case>-seg.nii.gz`` (recorded as ``brats2023``), or a
    plain BraTS 2020 training folder ``<case>/<case>_<seq>.nii.gz`` (recorded as ``audit``, no predictions).

The label convention is read from the masks where the layout leaves it open (values {1, 2, 4} are BraTS 2020,
{1, 2, 3} in an AUDIT layout are AUDIT's). When no layout fits, :func:`propose_skeleton` infers templates from
the case folders. A new layout is one new module with a ``LAYOUT = Layout(name, detect, looks_for)`` record,
listed in :data:`LAYOUTS` where it should be tried.
"""

from segaudit.dataset.layouts._base import Detection, Layout, UnknownLayoutError
from segaudit.dataset.layouts.longitudinal import LONGITUDINAL_PATTERNS, SUBJECT_COLUMNS, infer_longitudinal
from segaudit.dataset.layouts.registry import LAYOUTS, detect_layout, relativize
from segaudit.dataset.layouts.skeleton import propose_skeleton

__all__ = [
    "LAYOUTS",
    "LONGITUDINAL_PATTERNS",
    "SUBJECT_COLUMNS",
    "Detection",
    "Layout",
    "UnknownLayoutError",
    "detect_layout",
    "infer_longitudinal",
    "propose_skeleton",
    "relativize",
]
