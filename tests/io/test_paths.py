"""Output paths built from data never leave --out (issue 13, severe 2): safe_component, inside, and the two
writers that build file names from data (``slices``: dataset/case/sequence names; ``export --format audit``:
dataset names), on real BraTS files with hostile names."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from segaudit.cli import main
from segaudit.errors import SegauditError
from segaudit.io.paths import inside, output_path, safe_component

SSA = "brats_audit/BraTS2024_SSA/BraTS2024_SSA_images/BraTS2024_SSA-00230-000"
CASE = "BraTS2024_SSA-00230-000"
HOSTILE = ["../../evil", "/abs/x", "a/b", "..", ".", "", "con", "NUL.txt", "nu\x00l", "new\nline", "a\\b",
           "../../../outside", "a_b"]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): _sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_component_is_one_harmless_name(name):
    s = safe_component(name)
    assert s
    assert s not in (".", "..")
    assert not s.startswith(".")
    assert "/" not in s
    assert "\\" not in s
    assert "\x00" not in s
    assert "\n" not in s
    assert not os.path.isabs(s)
    assert Path(s).name == s
    assert s.split(".")[0].lower() not in ("con", "nul")


def test_safe_component_keeps_real_names_and_keeps_hostile_ones_apart(demo_data):
    # Real dataset, case and sequence names pass unchanged (outputs stay recognisable).
    real = [p.name for p in (demo_data / "brats_audit").glob("*/*_images/*")] + ["t1ce", "flair", "BraTS2020"]
    assert real
    assert all(safe_component(n) == n for n in real)
    # Different hostile names never share a file name, and not with the name they resemble ("a/b" vs "a_b").
    out = [safe_component(n) for n in HOSTILE]
    assert len(set(out)) == len(HOSTILE)
    assert "evil" in safe_component("../../evil")
    assert "abs_x" in safe_component("/abs/x")


def test_inside_refuses_escapes_and_symlinks_out(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert inside(out, out / "a" / "b.csv") == out / "a" / "b.csv"
    for bad in (out / ".." / "x.csv", tmp_path / "x.csv", Path("/etc/passwd")):
        with pytest.raises(SegauditError, match="outside the output folder"):
            inside(out, bad)
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")  # a link inside --out pointing out of it
    with pytest.raises(SegauditError, match=str(out)):
        inside(out, out / "link" / "x.csv")
    assert output_path(out, "..", "../../x", suffix=".csv").parent.parent == out


def _crop(src: Path, dst: Path, z: slice = slice(86, 90)) -> None:
    """A real BraTS volume cut to 4 axial slices through the tumour (fast to slice)."""
    img = nib.load(src)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, z], img.affine, img.header), dst)


def _outside_with_bait(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A folder outside --out holding files named as the unsafe code would have written them."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for i in range(4):
        (outside / f"{CASE}_k{i:03d}.png").write_bytes(b"precious %d" % i)
        (outside / f"case_k{i:03d}.png").write_bytes(b"precious nnunet %d" % i)
    (outside / "extracted_information_x.csv").write_text("precious,csv\n")
    return outside, _tree(tmp_path / "outside")


def _only_under(out: Path, tmp_path: Path, before_outside: dict[str, str]) -> list[Path]:
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert _tree(tmp_path / "outside") == before_outside  # nothing outside was touched
    return [p for p in files if out in p.parents]


def test_slices_from_a_hostile_nnunet_dataset_json_stay_in_out(tmp_path, tests_data):
    """``segaudit slices DATA_DIR`` on an nnU-Net raw folder whose dataset.json names the channels hostilely."""
    outside, before = _outside_with_bait(tmp_path)
    data = tmp_path / "data" / "Dataset001_X"
    (data / "imagesTr").mkdir(parents=True)
    (data / "labelsTr").mkdir()
    names = ["../../../outside", str(outside), "a/b", "..", "con", "nu\x00l", "new\nline"]
    seqs = ["t1", "t1ce", "t2", "flair", "t1", "t1ce", "t2"]
    for i, seq in enumerate(seqs):
        _crop(tests_data / SSA / f"{CASE}_{seq}.nii.gz", data / "imagesTr" / f"case_{i:04d}.nii.gz")
    _crop(tests_data / SSA / f"{CASE}_seg.nii.gz", data / "labelsTr" / "case.nii.gz")
    (data / "dataset.json").write_text(json.dumps({
        "channel_names": {str(i): n for i, n in enumerate(names)}, "labels": {"background": 0, "tumour": 1},
        "file_ending": ".nii.gz"}))
    out = tmp_path / "out"
    assert main(["slices", str(data.parent), "--out", str(out), "--format", "png", "--norm", "none",
                 "--no-progress"]) == 0
    written = _only_under(out, tmp_path, before)
    folders = {p.parent.name for p in written}
    # Every channel got its own folder (distinct names), plus the mask: 4 slices each.
    assert len(folders) == len(names) + 1
    assert "mask" in folders
    assert len(written) == 4 * (len(names) + 1)
    assert all(p.name.startswith("case_k") for p in written)


def test_slices_and_audit_export_with_hostile_dataset_and_sequence_names(tmp_path, tests_data):
    """YAML sequences and dataset names (slices), then dataset names in ``export --format audit``."""
    outside, before = _outside_with_bait(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    for seq in ("t1", "flair", "seg"):
        _crop(tests_data / SSA / f"{CASE}_{seq}.nii.gz", data / f"{CASE}_{seq}.nii.gz")
    ds_names = ["../../outside", str(outside), "a/b"]
    project = {"datasets": {n: {
        "root": str(data),
        "images": {"../../outside": "{root}/{case}_t1.nii.gz", "/abs/x": "{root}/{case}_flair.nii.gz"},
        "ground_truth": "{root}/{case}_seg.nii.gz", "label_convention": "audit"} for n in ds_names}}
    proj = tmp_path / "p.yaml"
    proj.write_text(yaml.safe_dump(project))
    out = tmp_path / "out"
    assert main(["slices", str(proj), "--out", str(out), "--format", "png", "--norm", "none", "--no-progress"]) == 0
    written = _only_under(out, tmp_path, before)
    assert len(written) == 3 * 4 * 3  # 3 datasets x 4 slices x (2 sequences + mask)
    assert len({p.parents[2].name for p in written}) == 3  # one folder per dataset, all different
    assert all(p.parents[1].name == CASE for p in written)
    # npz: the sequence names stay in the file, as data.
    out_npz = tmp_path / "out_npz"
    assert main(["slices", str(proj), "--out", str(out_npz), "--no-progress"]) == 0
    npz = _only_under(out_npz, tmp_path, before)
    assert len(npz) == 3 * 4
    assert list(np.load(npz[0])["sequences"]) == ["../../outside", "/abs/x"]

    # export --format audit: dataset names with separators in the store (AUDIT's own SSA metric table imported
    # under three names).
    res = tmp_path / "res"
    table = tests_data / "audit_outputs" / "metrics" / "extracted_information_BraTS2024_SSA.csv"
    for n in ["/../../outside/extracted_information_x", "a/b", "a_b"]:
        assert main(["import-audit", "--metrics", str(table), "--dataset", n, "--out", str(res)]) == 0
    exp = tmp_path / "exp"
    assert main(["export", str(res), "--format", "audit", "--out", str(exp)]) == 0
    csvs = _only_under(exp, tmp_path, before)
    assert len(csvs) == 3
    assert all(p.parent == exp and p.suffix == ".csv" for p in csvs)
    assert (exp / "extracted_information_a_b.csv").is_file()  # a safe name is kept as it is
