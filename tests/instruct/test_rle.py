"""COCO RLE against pycocotools (reference, test-only) and a literal re-implementation of the spec."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from conftest import require_reference
from segaudit.instruct.rle import decode_rle, encode_rle, rle_area, string_to_counts


def _spec_counts(mask: np.ndarray) -> list[int]:
    """Literal reading of the COCO definition: walk the pixels column by column, count runs starting with 0s."""
    counts, current, run = [], 0, 0
    h, w = mask.shape
    for x in range(w):
        for y in range(h):
            v = 1 if mask[y, x] else 0
            if v != current:
                counts.append(run)
                run, current = 0, v
            run += 1
    counts.append(run)
    return counts


def _real_masks(tests_data):
    lung = np.asarray(PILImage.open(tests_data / "chest_xray_lungs" / "masks_lung" / "thnov10p5641g006-c.png")) > 127
    if lung.ndim == 3:
        lung = lung[..., 0]
    inst = np.asarray(PILImage.open(tests_data / "histology_consep" / "inst_masks" / "test_12_012.png"))
    nuclei = [inst == v for v in np.unique(inst)[1:6]]
    edge = np.zeros((7, 5), bool)
    edge[0, 0] = edge[-1, -1] = True  # foreground at both ends of the column-major order
    return [lung, *nuclei, edge, np.zeros((4, 6), bool), np.ones((3, 3), bool)]


def test_uncompressed_counts_follow_the_spec_and_round_trip(tests_data):
    for mask in _real_masks(tests_data):
        small = mask[:60, :60]
        assert encode_rle(small, compressed=False)["counts"] == _spec_counts(small)
        for compressed in (True, False):
            rle = encode_rle(mask, compressed=compressed)
            assert np.array_equal(decode_rle(rle), mask)
            assert rle_area(rle) == int(mask.sum())


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_pycocotools_both_ways(tests_data):
    mask_api = require_reference("pycocotools.mask")
    for mask in _real_masks(tests_data):
        ref = mask_api.encode(np.asfortranarray(mask.astype(np.uint8)))
        ours = encode_rle(mask)
        assert ours["counts"] == ref["counts"].decode("ascii")
        assert ours["size"] == list(ref["size"])
        back = mask_api.decode({"size": ours["size"], "counts": ours["counts"].encode("ascii")})
        assert np.array_equal(back.astype(bool), mask)
        # uncompressed counts -> pycocotools' compressed form decodes to the same mask
        unc = encode_rle(mask, compressed=False)
        fr = mask_api.frPyObjects(unc, *unc["size"])
        assert np.array_equal(mask_api.decode(fr).astype(bool), mask)


def test_malformed_strings_are_refused():
    with pytest.raises(ValueError):
        decode_rle({"size": [2, 2], "counts": [1, 1]})  # runs do not cover the mask
    with pytest.raises(ValueError):
        string_to_counts("0\x7f")
    with pytest.raises(ValueError):
        string_to_counts("o")  # a continuation bit with nothing after it


@pytest.mark.reference
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_uncompressed_export_decodes_with_pycocotools_to_the_source_masks(tmp_path):
    import json
    import sys
    from pathlib import Path

    from segaudit.instruct import export_instructions

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest_instruct import MODALITIES, small_project, source_labels

    mask_api = require_reference("pycocotools.mask")
    res = export_instructions(small_project(tmp_path, ("chest",)), tmp_path / "o", format=["jsonl", "lisa"],
                              per_image=4, use_model=False, modalities=MODALITIES, rle="uncompressed")
    assert res.summary["settings"]["rle"] == "uncompressed"
    records = [json.loads(line) for line in (tmp_path / "o" / "records.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r for r in records}
    checked = 0
    for e in json.loads((tmp_path / "o" / "lisa.json").read_text()):
        grounded = [t for t in by_id[e["id"]]["targets"] if t["pixels"]]
        for m, t in zip(e["masks"], grounded, strict=True):
            assert isinstance(m["counts"], list)
            h, w = m["size"]
            got = mask_api.decode(mask_api.frPyObjects(m, h, w)).astype(bool)
            assert np.array_equal(got, np.isin(source_labels(by_id[e["id"]]), t["values"]))
            checked += 1
    assert checked > 5
    with pytest.raises(ValueError, match="RLE form"):
        export_instructions(small_project(tmp_path, ("chest",)), tmp_path / "x", use_model=False, rle="zip")
