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


#: Hostile names (HTML, quotes, ``&`` and ``$``), as the report's test uses them: shown literally, never run.
HOSTILE_DATASET = "<script>alert(1)</script>\"'&$"
HOSTILE_MODEL = "<script>alert(2)</script>$m$"
HOSTILE_SUBJECT = "<img src=x onerror=alert(3)>\"'&$"  # no "/": a case id is a folder name here
HOSTILE_META = "<svg onload=alert(4)>\"'&$"


def built_hostile_store(tmp_path_factory) -> tuple[Path, Path]:
    """(project file, run directory) of the real LUMIERE masks and predictions under hostile names: dataset, one
    model, the subject of the three time points (so the case ids) and a metadata value; scanned, evaluated and
    lesion features extracted. Built once per session."""
    if "hostile" not in _BUILT:
        import shutil

        from conftest import DEMO_DATA

        root = tmp_path_factory.mktemp("app-hostile")
        src = DEMO_DATA / "brats_audit" / "LUMIERE"
        data = root / "data"
        cases = sorted(p.name for p in (src / "LUMIERE_images").iterdir())
        new = {c: f"{HOSTILE_SUBJECT}-week-{c.rsplit('-', 1)[1]}" for c in cases}
        for case, name in new.items():
            (data / "gt" / name).mkdir(parents=True)
            shutil.copy(src / "LUMIERE_images" / case / f"{case}_seg.nii.gz", data / "gt" / name / "seg.nii.gz")
            for model in ("nnUnet", "SegResNet"):
                (data / model / name).mkdir(parents=True)
                shutil.copy(src / "LUMIERE_seg" / model / case / f"{case}_pred.nii.gz",
                            data / model / name / "pred.nii.gz")
        meta = root / "meta.csv"
        quoted = [n.replace('"', '""') for n in new.values()]
        meta.write_text("case,site\n" + "".join(f'"{q}",{HOSTILE_META if i % 2 == 0 else "plain"}\n'
                                                for i, q in enumerate(quoted)))
        project_file = root / "segaudit.yaml"
        project_file.write_text(yaml.safe_dump({"datasets": {HOSTILE_DATASET: {
            "root": str(data), "ground_truth": "{root}/gt/{case}/seg.nii.gz",
            "predictions": {HOSTILE_MODEL: "{root}/nnUnet/{case}/pred.nii.gz",
                            "SegResNet": "{root}/SegResNet/{case}/pred.nii.gz"},
            "label_convention": "audit", "longitudinal": {"pattern": r"(?P<subject>.+)-week-(?P<timepoint>\d+)"},
            "metadata": {"path": str(meta), "id_column": "case"}}}}))
        project = load_project(project_file)
        run = root / "run"
        scan_project(project, run, progress=False)
        evaluate_project(project, run, EvaluationOptions(lesion_matching="none"), progress=False)
        extract_project(project, run, FeatureOptions(groups=("lesion",), shape=False, label_texture=False),
                        progress=False)
        _BUILT["hostile"] = (project_file, run)
    return _BUILT["hostile"]
