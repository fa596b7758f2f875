"""export_instructions on real bundled data: counts, sizes, negatives, loaders and mask round trips per format,
determinism. Every expected value is computed here independently (PIL / nibabel / scipy / pycocotools)."""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw
from scipy import ndimage
from scipy.spatial.distance import pdist
from skimage.measure import find_contours

from conftest import TESTS_DATA, require_reference
from segaudit.instruct import FORMATS, decode_rle, export_instructions, load_ontology

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, small_project, source_labels, source_spacing, write_project  # noqa: E402, I001

POLYGON_MIN_IOU = 0.6  # Sa2VA polygons are contours through pixel edges' midpoints: lossy for tiny nuclei
POLYGON_MEAN_IOU = 0.85


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("instruct")
    project = write_project(tmp)
    res = export_instructions(project, tmp / "out", format="all", per_image=6, seed=3, use_model=False,
                              modalities=MODALITIES)
    records = [json.loads(line) for line in (tmp / "out" / "records.jsonl").read_text().splitlines()]
    return tmp, project, res, records


def _consep_classes(case: str) -> dict[int, int]:
    path = TESTS_DATA / "histology_consep" / "inst_masks_classes" / f"{case}_classes.csv"
    with path.open() as fh:
        return {int(r["instance_id"]): int(r["class_id"]) for r in csv.DictReader(fh)}


def _expected_count(rec: dict, target: dict) -> int:
    """Instances from the CoNSeP source table; 8-connected components (scipy) of the mask elsewhere."""
    if rec["provenance"]["dataset"] == "consep":
        inst = np.asarray(PILImage.open(rec["provenance"]["instance_file"]))
        present = set(np.unique(inst).tolist()) - {0}
        return sum(1 for i, c in _consep_classes(rec["provenance"]["case"]).items()
                   if c in target["values"] and i in present)
    mask = np.isin(source_labels(rec), target["values"])
    return ndimage.label(mask, structure=np.ones((3, 3)))[1]


def test_every_task_type_and_dataset_is_present(exported):
    _, _, res, records = exported
    assert {r["task"] for r in records} == {"segment", "detect", "count", "measure", "describe", "absent", "refuse"}
    assert {r["provenance"]["dataset"] for r in records} == {"chest", "consep", "mets", "brats"}
    assert {r["negative"] for r in records} == {None, "absent", "other_modality", "offtask"}
    assert res.summary["records"] == len(records) == len(res.records)
    slices = [r for r in records if r["provenance"]["dataset"] == "brats"]
    assert all(r["provenance"]["slice"] is not None and r["provenance"]["axis"] == 2 for r in slices)


def test_count_and_detect_answers_equal_independent_counts(exported):
    _, _, _, records = exported
    checked = 0
    for rec in records:
        if rec["task"] not in ("count", "detect"):
            continue
        t = rec["targets"][0]
        expected = _expected_count(rec, t)
        pattern = r"There (?:is|are) (\d+) " if rec["task"] == "count" else r"I found (\d+) "
        assert int(re.search(pattern, rec["answer"]).group(1)) == expected == t["count"] == len(t["boxes"]), rec["id"]
        checked += 1
    assert checked >= 30


def test_boxes_are_the_components_extents(exported):
    _, _, _, records = exported
    for rec in records:
        if rec["task"] != "detect" or rec["provenance"]["dataset"] == "consep":
            continue
        t = rec["targets"][0]
        lab, n = ndimage.label(np.isin(source_labels(rec), t["values"]), structure=np.ones((3, 3)))
        want = []
        for k in range(1, n + 1):
            rows, cols = np.nonzero(lab == k)
            want.append([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        assert sorted(map(list, t["boxes"])) == sorted([[int(v) for v in b] for b in want]), rec["id"]


def test_measure_answers_equal_independent_areas_and_diameters(exported):
    _, _, _, records = exported
    checked = 0
    for rec in records:
        if rec["task"] != "measure":
            continue
        t = rec["targets"][0]
        mask = np.isin(source_labels(rec), t["values"])
        spacing = source_spacing(rec)
        assert t["pixels"] == int(mask.sum())
        if spacing is None:
            assert t["unit"] == "px"
            assert "pixel spacing of this image is not known" in rec["answer"]
            assert re.search(rf"covers? {int(mask.sum())} pixels", rec["answer"])
            spacing = (1.0, 1.0)
        else:
            area = mask.sum() * spacing[0] * spacing[1]
            assert t["unit"] == "mm"
            assert t["area"] == pytest.approx(area)
            shown = float(re.search(r"covers? ([\d,.]+) mm", rec["answer"]).group(1).replace(",", ""))
            assert shown == pytest.approx(area, abs=0.051 if area < 1000 else 0.51)
        lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
        largest = lab == 1 + int(np.argmax(np.bincount(lab.ravel())[1:])) if rec["provenance"]["dataset"] != "consep" \
            else None
        if largest is not None and largest.sum() <= 4000:
            # the longest chord of the outline (marching squares at 0.5 on the padded mask), all pairs
            outline = np.concatenate(find_contours(np.pad(largest.astype(float), 1), 0.5)) * np.asarray(spacing)
            expect = pdist(outline).max() if len(outline) > 1 else 0.0
            assert t["diameter"] == pytest.approx(expect, abs=1e-3), rec["id"]
            checked += 1
    assert checked >= 5


def test_negatives_never_name_a_target_present_in_the_image(exported):
    _, _, _, records = exported
    ontology = load_ontology()
    for rec in records:
        if not rec["negative"]:
            continue
        labels = source_labels(rec)
        if rec["negative"] == "absent":
            t = rec["targets"][0]
            assert not np.isin(labels, t["values"]).any(), rec["id"]
            assert t["pixels"] == 0
            assert decode_rle(t["rle"]).sum() == 0
            assert "[SEG]" not in rec["answer"]
        elif rec["negative"] == "other_modality":
            name = rec["refusal_reason"].split(": ")[1].split(" is a target of ")[0]
            concept = ontology.concepts[name]
            assert concept.modality != rec["modality"]
            assert rec["modality"] in rec["answer"]
            assert rec["targets"] == []
        else:
            assert rec["targets"] == []
            assert rec["refusal_reason"].startswith("offtask")
        assert rec["refusal_reason"]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _source_mask(rec_by_id: dict, rid: str, values) -> np.ndarray:
    return np.isin(source_labels(rec_by_id[rid]), values)


def _check(errors: list, cond: bool, what: str) -> None:
    if not cond:
        errors.append(what)


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_every_format_loads_with_zero_schema_errors_and_masks_round_trip(exported):
    tmp, _, _, records = exported
    mask_api = require_reference("pycocotools.mask")
    out = tmp / "out"
    by_id = {r["id"]: r for r in records}
    errors: list[str] = []

    def coco_decode(rle):
        return mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)

    # jsonl: every record, every target mask
    for r in records:
        for key, typ in (("id", str), ("task", str), ("instruction", str), ("answer", str), ("targets", list),
                         ("provenance", dict), ("height", int), ("width", int)):
            _check(errors, isinstance(r.get(key), typ), f"jsonl {r.get('id')}: {key}")
        for t in r["targets"]:
            _check(errors, _iou(coco_decode(t["rle"]), _source_mask(by_id, r["id"], t["values"])) == 1.0
                   if t["pixels"] else not coco_decode(t["rle"]).any(), f"jsonl {r['id']} mask")
    # LLaVA: two turns, <image> first, no leftover [SEG]
    llava = json.loads((out / "llava.json").read_text())
    assert len(llava) == len(records)
    for e in llava:
        conv = e["conversations"]
        _check(errors, [c["from"] for c in conv] == ["human", "gpt"] and conv[0]["value"].startswith("<image>\n"),
               f"llava {e['id']} turns")
        _check(errors, "[SEG]" not in conv[1]["value"] and "<p>" not in conv[1]["value"], f"llava {e['id']} tokens")
        _check(errors, e["segaudit"]["dataset"] and e["segaudit"]["mask_file"], f"llava {e['id']} provenance")
    # LISA: one mask per [SEG], each the exact source mask
    lisa = json.loads((out / "lisa.json").read_text())
    n_lisa_masks = 0
    for e in lisa:
        answer = e["conversations"][1]["value"]
        _check(errors, answer.count("[SEG]") == len(e["masks"]), f"lisa {e['id']} [SEG] count")
        rec = by_id[e["id"]]
        grounded = [t for t in rec["targets"] if t["pixels"]]
        for m, t in zip(e["masks"], grounded, strict=False):
            _check(errors, _iou(coco_decode(m), _source_mask(by_id, e["id"], t["values"])) == 1.0,
                   f"lisa {e['id']} mask")
            n_lisa_masks += 1
    assert n_lisa_masks > 50
    # GLaMM: each grounding's span is its phrase in the caption; masks exact
    glamm = json.loads((out / "glamm.json").read_text())
    for e in glamm:
        rec = by_id[e["id"]]
        grounded = [t for t in rec["targets"] if t["pixels"]]
        _check(errors, len(e["groundings"]) == len(grounded), f"glamm {e['id']} groundings")
        by_phrase = {t["phrase"]: t for t in grounded}
        for phrase, g in e["groundings"].items():  # JSON objects are unordered: matched by phrase
            t = by_phrase.get(re.sub(r" \(\d+\)$", "", phrase))
            s, end = g["token_positives"]
            span = e["caption"][s:end].split()
            words = t["phrase"].split() if t else []
            # the phrase itself, or its plural (same words, the last one inflected: nucleus -> nuclei)
            _check(errors, t is not None and span[:-1] == words[:-1] and span[-1][:3] == words[-1][:3],
                   f"glamm {e['id']} span")
            if t is None:
                continue
            _check(errors, _iou(coco_decode(g["rle_masks"][0]), _source_mask(by_id, e["id"], t["values"])) == 1.0,
                   f"glamm {e['id']} mask")
    # Sa2VA: polygons rasterised with the even-odd rule (PIL), IoU stated
    sa2va = json.loads((out / "sa2va.json").read_text())
    ious = []
    for e in sa2va:
        _check(errors, len(e["text"]) == len(e["polygons"]) > 0, f"sa2va {e['id']} lists")
        rec = by_id[e["id"]]
        for rings, t in zip(e["polygons"], [t for t in rec["targets"] if t["pixels"]], strict=True):
            acc = np.zeros((e["height"], e["width"]), bool)
            for ring in rings:
                img = PILImage.new("1", (e["width"], e["height"]), 0)
                ImageDraw.Draw(img).polygon([(ring[i], ring[i + 1]) for i in range(0, len(ring), 2)], fill=1)
                acc ^= np.asarray(img, bool)
            ious.append(_iou(acc, _source_mask(by_id, e["id"], t["values"])))
    assert min(ious) >= POLYGON_MIN_IOU, (min(ious), np.mean(ious))
    assert float(np.mean(ious)) >= POLYGON_MEAN_IOU, (min(ious), np.mean(ious))
    # BiomedParse: COCO-refer schema, mask files equal the source masks, the RLE too
    coco = json.loads((out / "biomedparse" / "annotations.json").read_text())
    image_ids = {i["id"] for i in coco["images"]}
    cat_ids = {c["id"] for c in coco["categories"]}
    assert len(coco["annotations"]) == sum(1 for r in records if r["task"] == "segment")
    for a in coco["annotations"]:
        _check(errors, a["image_id"] in image_ids and a["category_id"] in cat_ids and a["sentences"][0]["raw"],
               f"biomedparse {a['id']} refs")
        png = np.asarray(PILImage.open(out / "biomedparse" / a["mask_file"])) > 0
        src = _source_mask(by_id, a["segaudit"]["record"], by_id[a["segaudit"]["record"]]["targets"][0]["values"])
        _check(errors, _iou(png, src) == 1.0 and _iou(coco_decode(a["segmentation"]), src) == 1.0,
               f"biomedparse {a['id']} mask")
        x, y, w, h = a["bbox"]
        rows, cols = np.nonzero(src)
        _check(errors, [x, y, x + w, y + h] == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1],
               f"biomedparse {a['id']} bbox")
    assert errors == []


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(exported, tmp_path):
    tmp, project, res, _ = exported
    again = export_instructions(project, tmp_path / "a", format="all", per_image=6, seed=3, use_model=False,
                                modalities=MODALITIES)
    first = {p.relative_to(tmp / "out"): p.read_bytes() for p in res.files}
    second = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in again.files}
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    assert not list((tmp_path / "a").rglob(".*"))  # no temporary file left behind
    other = export_instructions(project, tmp_path / "b", format="jsonl", per_image=6, seed=4, use_model=False,
                                modalities=MODALITIES)
    assert (tmp_path / "b" / "records.jsonl").read_bytes() != first[Path("records.jsonl")]
    assert len(other.records) > 0


def test_summary_numbers_are_recomputable_from_the_records(exported):
    _, _, res, records = exported
    s = res.summary
    assert s["negative_share"] == pytest.approx(sum(1 for r in records if r["negative"]) / len(records), abs=1e-4)
    bigrams = [tuple(w[i:i + 2]) for r in records for w in [r["instruction"].lower().split()]
               for i in range(len(w) - 1)]
    assert s["distinct_2"] == pytest.approx(len(set(bigrams)) / len(bigrams), abs=1e-4)
    assert sum(s["template_usage"].values()) == len(records)
    assert s["per_stratum"]["dataset"]["mets"] == {
        k: sum(1 for r in records if r["provenance"]["dataset"] == "mets" and r["task"] == k)
        for k in {r["task"] for r in records if r["provenance"]["dataset"] == "mets"}}
    assert s["near_duplicate_method"] == "normalised-text"


def test_negative_share_follows_the_setting_on_views_with_targets(tmp_path):
    project = small_project(tmp_path)
    for share in (0.0, 0.5):
        res = export_instructions(project, tmp_path / f"o{share}", per_image=8, negatives=share, seed=1,
                                  use_model=False, modalities=MODALITIES)
        with_targets = [r for r in res.records if r.strata.get("slice") != "empty"]
        got = sum(1 for r in with_targets if r.negative) / len(with_targets)
        assert got == pytest.approx(share, abs=0.12)
    with pytest.raises(ValueError):
        export_instructions(project, tmp_path / "bad", negatives=1.5, use_model=False)
    with pytest.raises(ValueError):
        export_instructions(project, tmp_path / "bad", format="coco-ish", use_model=False)


def test_formats_constant_lists_every_writer():
    assert set(FORMATS) == {"jsonl", "llava", "lisa", "sa2va", "glamm", "biomedparse"}


def test_a_data_folder_exports_without_touching_its_files(tmp_path):
    from conftest import tree_digest

    folder = TESTS_DATA / "chest_xray_lungs"
    before = tree_digest(folder)
    res = export_instructions(folder, tmp_path / "o", format=["jsonl", "lisa"], per_image=3, use_model=False)
    assert tree_digest(folder) == before
    assert {r.provenance.dataset for r in res.records} == {"chest_xray_lungs"}
    assert {r.modality for r in res.records} == {"chest X-ray"}  # guessed from the label name via the ontology
    assert (tmp_path / "o" / "lisa.json").is_file()
    assert (tmp_path / "o" / "summary.json").is_file()
    lungs = [r for r in res.records if r.task in ("count", "detect")]
    assert lungs
    for r in lungs:
        mask = np.asarray(PILImage.open(r.provenance.mask_file)) > 127
        assert r.targets[0].count == ndimage.label(mask, structure=np.ones((3, 3)))[1]
