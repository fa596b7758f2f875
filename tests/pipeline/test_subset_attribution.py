"""Attribution from declared subset predictions (``subset_predictions``) on the bundled BraTS 2024 SSA case.

The subset predictions are real files made from nnUnet's real prediction by the documented degradation of
``conftest.degrade_for_subset`` (no t1ce: no enhancing tumour; no t2: whole tumour eroded by one voxel; no flair:
edema eroded by two). Stored Shapley values are checked against a brute force over every ordering of the
sequences, computed from the per-subset Dice read back from the store; the Dice against one computed here with
numpy from the same files; efficiency, the null player, drop-one; and the error cases.
"""

from __future__ import annotations

import duckdb
import nibabel as nib
import numpy as np
import pytest

from conftest import SSA_CASE, SSA_ROOT, SUBSET_SEQUENCES, shapley_brute_force, write_subset_project
from segaudit.analysis.prompting import attribution_summary
from segaudit.cli.parser import main
from segaudit.dataset.project import load_project
from segaudit.errors import ConfigError
from segaudit.pipeline.resume import replace_case_rows
from segaudit.pipeline.subset_attribution import attribute_predictions_project
from segaudit.store import DB_NAME, ResultsStore
from segaudit.store.schema import SCHEMAS

AUDIT_REGIONS = {"ENH": (1,), "NEC": (2,), "EDE": (3,), "WT": (1, 2, 3), "TC": (1, 2), "ET": (1,)}


def _subset_key(name: str) -> frozenset[str]:
    return frozenset(name.split("+")) if name else frozenset()



@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """Every non-empty subset declared and written; a live row of the same case stored first (step attribute)."""
    root = tmp_path_factory.mktemp("subsets")
    project = load_project(write_subset_project(root))
    run = root / "run"
    with ResultsStore(run) as store:
        rid = store.start_run("attribute")
        live = [{"dataset": "SSA", "case": SSA_CASE, "model": "litemedsam/box", "region": "WT", "method": "shapley",
                 "sequences": "flair", "value": 0.5, "fill": "zero", "slice": 70, "source": "live"}]
        replace_case_rows(store, "attributions", "attribute", "SSA", SSA_CASE, live, [], [], rid)
        store.finish_run(rid)
    res = attribute_predictions_project(project, run, progress=False)
    with ResultsStore(run, read_only=True) as store:
        rows = store.attributions()
    return {"root": root, "run": run, "res": res, "rows": rows, "project": project}


def test_stored_shapley_is_the_brute_force_of_the_stored_subset_dice(complete):
    a = complete["rows"]
    d = a[a.source == "declared"]
    assert complete["res"].attributed == 1
    assert complete["res"].errors.empty
    assert set(d.region) == set(AUDIT_REGIONS)
    full = frozenset(SUBSET_SEQUENCES)
    for region, g in d.groupby("region"):
        sub = g[g.method == "subset"]
        assert len(sub) == 8  # the seven declared subsets and the undeclared empty set
        scores = {_subset_key(s): v for s, v in zip(sub.sequences, sub.value, strict=True)}
        assert scores[frozenset()] == 0.0  # the empty set predicts nothing; every region's ground truth is non-empty
        phi = g[g.method == "shapley"].set_index("sequences").value
        ref = shapley_brute_force(SUBSET_SEQUENCES, scores)
        for seq in SUBSET_SEQUENCES:
            assert phi[seq] == pytest.approx(ref[seq], abs=1e-12), (region, seq)
        assert phi.sum() == pytest.approx(scores[full] - scores[frozenset()], abs=1e-12)  # efficiency
        drop = g[g.method == "drop_one"].set_index("sequences").value
        for seq in SUBSET_SEQUENCES:
            assert drop[seq] == pytest.approx(scores[full] - scores[full - {seq}], abs=1e-12)
        assert g.note.isna().all()
    # Null player: flair's degradation touches only the edema (3), so it adds nothing to enhancing tumour.
    et = d[(d.region == "ET") & (d.sequences == "flair")].set_index("method").value
    assert et["shapley"] == pytest.approx(0.0, abs=1e-12)
    assert et["drop_one"] == pytest.approx(0.0, abs=1e-12)
    # The live row of the same case is another step's: kept, and told apart by its source.
    live = a[a.source == "live"]
    assert list(live.value) == [0.5]


def test_subset_dice_is_the_dice_of_the_files(complete):
    """The engine's Dice of two subsets equals 2|A∩B|/(|A|+|B|) computed here from the files, region by region."""
    a = complete["rows"]
    gt = np.asarray(nib.load(SSA_ROOT / "BraTS2024_SSA_images" / SSA_CASE / f"{SSA_CASE}_seg.nii.gz").dataobj)
    for name, tag in (("t1ce+t2+flair", "t1ce_t2_flair"), ("t2", "t2")):
        pred = np.asarray(nib.load(complete["root"] / "subsets" / tag / f"{SSA_CASE}.nii.gz").dataobj)
        for region, values in AUDIT_REGIONS.items():
            g, p = np.isin(gt, values), np.isin(pred, values)
            ref = 2 * (g & p).sum() / (g.sum() + p.sum())
            got = a[(a.source == "declared") & (a.method == "subset") & (a.region == region)
                    & (a.sequences == name)].value
            assert float(got.iloc[0]) == pytest.approx(ref, abs=1e-12), (name, region)


def test_a_rerun_skips_the_unchanged_case(complete):
    res = attribute_predictions_project(complete["project"], complete["run"], progress=False)
    assert res.attributed == 0
    assert res.skipped == [("SSA", SSA_CASE)]


def test_missing_subset_file_is_an_error_row_and_shapley_is_not_computable(tmp_path, complete, capsys):
    """t2+flair (all but t1ce) declared, its file absent: an error row naming it, the run goes on."""
    path = write_subset_project(tmp_path, drop=("t2+flair",))
    code = main(["attribute", str(path), "--out", str(tmp_path / "run"), "--from-predictions", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    missing = tmp_path / "subsets" / "t2_flair" / f"{SSA_CASE}.nii.gz"
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        a = store.attributions()
        errors = store.errors("attribute-predictions")
    err = errors[errors.severity == "error"]
    assert list(err.model) == ["dropout[t2+flair]"]
    assert list(err.path) == [str(missing)]
    assert "prediction file not found" in err.message.iloc[0]
    phi = a[a.method == "shapley"]
    assert phi.value.isna().all()
    assert phi.note.str.contains("Shapley not computable: subset(s) 't2+flair' not scored", regex=False).all()
    drop = a[a.method == "drop_one"]
    assert drop[drop.sequences == "t1ce"].value.isna().all()  # needs all-but-t1ce = t2+flair
    assert drop[drop.sequences == "t1ce"].note.str.contains("'t2+flair' not scored", regex=False).all()
    # The other drop-one losses need only the subsets that are there: the complete run's values.
    ref = complete["rows"]
    for seq in ("t2", "flair"):
        for region in AUDIT_REGIONS:
            got = drop[(drop.sequences == seq) & (drop.region == region)].value.iloc[0]
            want = ref[(ref.source == "declared") & (ref.method == "drop_one") & (ref.sequences == seq)
                       & (ref.region == region)].value.iloc[0]
            assert got == pytest.approx(want, abs=1e-12)
    s = attribution_summary(a)
    assert (s.n_cases == 0).all()
    assert (s.n_left_out == 1).all()
    assert s[s.sequence == "t2"].n_drop_one.eq(1).all()
    assert f"left out of SSA dropout: {SSA_CASE}: Shapley not computable" in out
    assert "dropout[t2+flair]" in out
    assert str(missing) in out


def test_empty_ground_truth_region_is_stored_with_a_note_and_left_out(tmp_path):
    """A declared label the case does not have (4): every subset predicts nothing there, Dice 1 by the empty-case
    policy; the values are stored with the note and left out of the means."""
    extra = ("    labels: {ENH: 1, NEC: 2, EDE: 3, RES: 4}\n"
             "    regions: {WT: [ENH, NEC, EDE]}\n")
    path = write_subset_project(tmp_path, extra=extra)
    text = path.read_text().replace("    label_convention: audit\n", "")
    path.write_text(text)
    attribute_predictions_project(load_project(path), tmp_path / "run", progress=False)
    with ResultsStore(tmp_path / "run", read_only=True) as store:
        a = store.attributions()
    res = a[a.region == "RES"]
    assert (res[res.method == "subset"].value == 1.0).all()
    assert (res[res.method == "shapley"].value == 0.0).all()
    assert res[res.method != "subset"].note.str.startswith("ground truth of RES empty in this case").all()
    s = attribution_summary(a)
    assert (s[s.region == "RES"].n_cases == 0).all()
    assert (s[s.region == "WT"].n_cases == 1).all()


@pytest.mark.parametrize(("subsets", "message"), [
    ('{"t1ce+dwi": "{root}/x/{case}.nii.gz"}', r"subsets: 't1ce\+dwi' names unknown sequence\(s\) dwi \(the "
                                               r"dataset's sequences: t1, t1ce, t2, flair\)"),
    ('{"t1ce+flair": "{root}/a/{case}.nii.gz", "flair+t1ce": "{root}/b/{case}.nii.gz"}',
     r"subsets 't1ce\+flair' and 'flair\+t1ce' are the same set"),
    ('{"t1ce": "{root}/a/pred.nii.gz"}', r"subsets.t1ce: template .* has no \{case\} field"),
    ('{"t1ce+": "{root}/a/{case}.nii.gz"}', r"has an empty sequence name"),
])
def test_invalid_subsets_are_refused_naming_the_file_and_key(tmp_path, subsets, message):
    path = tmp_path / "p.yaml"
    path.write_text(f"datasets:\n  SSA:\n    root: {SSA_ROOT}\n"
                    "    images: '{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz'\n"
                    "    sequences: [t1, t1ce, t2, flair]\n"
                    "    ground_truth: '{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz'\n"
                    f"    subset_predictions: {{model: dropout, subsets: {subsets}}}\n")
    with pytest.raises(ConfigError, match=rf"{path}: dataset 'SSA': subset_predictions: .*{message}"):
        load_project(path)


def test_subset_predictions_keys_are_checked(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(f"datasets:\n  SSA:\n    root: {SSA_ROOT}\n    sequences: [t1, flair]\n"
                    "    images: '{root}/BraTS2024_SSA_images/{case}/{case}_{sequence}.nii.gz'\n"
                    "    subset_predictions: {model: m, subset: {flair: '{root}/{case}.nii.gz'}}\n")
    with pytest.raises(ConfigError, match=r"subset_predictions: unknown key\(s\) 'subset'"):
        load_project(path)


def test_a_project_without_declarations_says_what_to_declare(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(f"datasets:\n  SSA:\n    root: {SSA_ROOT}\n    sequences: [t1, flair]\n"
                    "    ground_truth: '{root}/BraTS2024_SSA_images/{case}/{case}_seg.nii.gz'\n")
    with pytest.raises(Exception, match="SSA: declares no subset_predictions; left out .*declare subset_predictions"):
        attribute_predictions_project(load_project(path), tmp_path / "run", progress=False)


def test_live_settings_are_refused_with_from_predictions(tmp_path, capsys):
    path = write_subset_project(tmp_path)
    args = ["attribute", str(path), "--out", str(tmp_path / "run"), "--from-predictions", "--sequences", "t2"]
    assert main(args) == 2
    assert "settings of the live removal" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_version_3_store_reads_its_attributions_as_live(tmp_path):
    """Schema 4 added ``attributions.source`` and ``note``: an older store's rows are the live ones."""
    run = tmp_path / "run"
    ResultsStore(run).close()
    con = duckdb.connect(str(run / DB_NAME))
    con.execute("ALTER TABLE attributions DROP COLUMN source")
    con.execute("ALTER TABLE attributions DROP COLUMN note")
    con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.execute("INSERT INTO attributions VALUES ('SSA', 'c', 'litemedsam/box', 'WT', 'shapley', 'flair', 0.4, "
                "'zero', 70, NULL)")
    con.close()
    with pytest.warns(UserWarning, match="schema version 3 is older"), ResultsStore(run, read_only=True) as store:
        assert list(store.attributions().source) == ["live"]
    with ResultsStore(run) as store:  # upgraded in place
        assert store.schema_version == 4
    con = duckdb.connect(str(run / DB_NAME), read_only=True)
    assert con.execute("SELECT source FROM attributions").fetchall() == [("live",)]
    cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = 'attributions'").fetchall()]
    con.close()
    assert set(cols) == set(SCHEMAS["attributions"])
