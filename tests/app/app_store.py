"""A real results store for the app tests: scan + evaluate of demo data (3D masks, one 3D case with its four
sequences and two models, and the 2D metastasis slices with their images), built once per test session.

Not a conftest.py: a second ``conftest`` module would shadow ``tests/conftest.py`` for ``from conftest import``.
Each test module asks for the store through :func:`built_store`, which builds it once per process.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from segaudit.dataset.project import load_project
from segaudit.features.case import FeatureOptions
from segaudit.metrics import EvaluationOptions
from segaudit.pipeline.evaluate import evaluate_project
from segaudit.pipeline.features import extract_project
from segaudit.pipeline.scan import scan_project


def write_project(root: Path, demo_data: Path, tests_data: Path) -> Path:
    """LUMIERE (3 time points, 2 models), BraTS2024_SSA (one 3D case, four sequences, 2 models) and the 24
    T2w metastasis slices (2D JPEG images, PNG masks, a U-Net drawn in green)."""
    demo = yaml.safe_load((demo_data / "segaudit.yaml").read_text())["datasets"]
    lumiere = {**demo["LUMIERE"], "root": str(demo_data / "brats_audit" / "LUMIERE")}
    mets = {**demo["brainmets_t2w_slices"], "root": str(demo_data / "brainmets_t2w_slices"),
            "metadata": {"path": str(demo_data / "brainmets_t2w_slices" / "slices.csv"), "id_column": "slice"}}
    ssa = {"root": str(tests_data / "brats_audit" / "BraTS2024_SSA"),
           "images": "{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz",
           "sequences": ["t1", "t1ce", "t2", "flair"],
           "ground_truth": "{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz",
           "predictions": "{root}/BraTS2024_SSA_seg/{model}/{case}/{case}_pred.nii.gz",
           "label_convention": "audit", "geometry": "ignore_affine"}
    path = root / "segaudit.yaml"
    path.write_text(yaml.safe_dump({"name": "app-test", "datasets": {
        "LUMIERE": lumiere, "brainmets_t2w_slices": mets, "BraTS2024_SSA": ssa}}))
    return path


_BUILT: dict[str, tuple[Path, Path]] = {}


def built_store(tmp_path_factory) -> tuple[Path, Path]:
    """(project file, run directory) of the test store: scan (files, QC), evaluate (metrics, confusion rows,
    lesions) and features (intensity, lesion, spatial, multimodal; no texture or shape, to stay fast), built on
    first use and shared by every test module of the session."""
    if "store" not in _BUILT:
        from conftest import DEMO_DATA, TESTS_DATA

        project_file = write_project(tmp_path_factory.mktemp("app-project"), DEMO_DATA, TESTS_DATA)
        project = load_project(project_file)
        run = tmp_path_factory.mktemp("app-run") / "run"
        scan_project(project, run, progress=False)
        evaluate_project(project, run, EvaluationOptions(lesion_matching="brats"), progress=False)
        extract_project(project, run, FeatureOptions(groups=("intensity", "lesion", "spatial", "multimodal"),
                                                     shape=False, label_texture=False), progress=False)
        _BUILT["store"] = (project_file, run)
    return _BUILT["store"]


UCSD = "audit_outputs/metrics/BraTS_2024_by_site/extracted_information_UCSD.csv"


def built_audit_store(tmp_path_factory) -> Path:
    """A store imported from AUDIT's real BraTS 2024 UCSD table: 200 cases, four models (for the compare and
    ranking pages), built once per session."""
    if "audit" not in _BUILT:
        from conftest import TESTS_DATA
        from segaudit.store.audit import import_audit

        run = tmp_path_factory.mktemp("app-audit") / "run"
        import_audit(run, [TESTS_DATA / UCSD])
        _BUILT["audit"] = (None, run)
    return _BUILT["audit"][1]
