"""Slice propagation and tiling with a real (deliberately simple) promptable segmenter: the pixels above an
intensity threshold inside the box. It implements the PromptableModel protocol without torch, so the propagation
rule itself is checked exactly; the LiteMedSAM run on a BraTS volume is in test_litemedsam.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from segaudit.models import ImageEmbedding, Prediction, Prompt, PromptableModel
from segaudit.models.propagate import key_slice, predict_tiled, propagate_3d, tile_windows


@dataclass
class BoxThreshold:
    """Segment ``image > threshold`` inside the box (inclusive pixel indices)."""

    threshold: float = 0.5
    name: str = "box-threshold"
    calls: int = 0

    def encode(self, image):
        self.calls += 1
        return ImageEmbedding(embedding=np.asarray(image), original_size=image.shape[:2], input_size=image.shape[:2],
                              key="", encode_seconds=0.0, preprocessing={})

    def decode(self, embedding, prompts):
        img = embedding.embedding
        out = []
        for p in prompts:
            x0, y0, x1, y1 = (int(round(v)) for v in p.box)
            m = np.zeros(img.shape[:2], bool)
            m[y0:y1 + 1, x0:x1 + 1] = img[y0:y1 + 1, x0:x1 + 1] > self.threshold
            out.append(Prediction(mask=m, predicted_iou=1.0, low_res_logits=m.astype(np.float32),
                                  decode_seconds=0.0, prompt=p))
        return out

    def predict(self, image, prompts):
        return self.decode(self.encode(image), prompts)

    def run_record(self):
        return {"model": self.name, "threshold": self.threshold}


def ellipsoid(shape=(21, 64, 64), centre=(10, 30, 34), radii=(8, 14, 10)) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    return sum(((a - c) / r) ** 2 for a, c, r in zip((zz, yy, xx), centre, radii, strict=True)) <= 1.0


def test_the_test_model_satisfies_the_protocol():
    assert isinstance(BoxThreshold(), PromptableModel)


def test_key_slice_largest_area_and_upstream_middle():
    gt = np.zeros((10, 5, 5), bool)
    gt[2, :2, :2] = True       # area 4
    gt[3, :3, :3] = True       # area 9: largest
    gt[8, 0, 0] = True         # extent 2..8, middle int(6/2 + 2) = 5
    assert key_slice(gt) == 3
    assert key_slice(gt, rule="middle") == 5
    assert key_slice(np.moveaxis(gt, 0, 2), axis=2) == 3
    assert key_slice(np.zeros((3, 4, 4), bool)) is None


def test_propagation_recovers_a_smooth_object_from_the_key_slice_box():
    gt = ellipsoid()
    model = BoxThreshold()
    res = propagate_3d(model, gt.astype(np.float32), gt, bbox_shift=3, shift_frame=None)
    assert res.key_slice == 10
    assert res.source[10] == "key"
    zs = np.flatnonzero(gt.any(axis=(1, 2)))
    assert sorted(res.source) == list(range(zs[0], zs[-1] + 1))      # exactly the ground truth's extent
    assert all(res.source[z] == "previous" for z in res.source if z != 10)
    assert model.calls == len(zs)
    np.testing.assert_array_equal(res.mask, gt)
    # each slice's box is the previous slice's mask box grown by the shift (3 px), clipped to the image
    ys, xs = np.nonzero(res.mask[11 - 1])
    assert res.boxes[11] == (xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)


def test_propagation_along_another_axis_and_with_a_shift_in_model_frame_pixels():
    gt = ellipsoid()
    res = propagate_3d(BoxThreshold(), np.moveaxis(gt, 0, 2).astype(np.float32), np.moveaxis(gt, 0, 2), axis=2,
                       bbox_shift=3, shift_frame=16)  # 3 px of a 16-px frame = 12 px of 64
    np.testing.assert_array_equal(res.mask, np.moveaxis(gt, 0, 2))
    ys, xs = np.nonzero(gt[10])
    assert res.boxes[11] == (max(0, xs.min() - 12), max(0, ys.min() - 12), xs.max() + 12, ys.max() + 12)


@pytest.mark.parametrize("fallback", ["last", "key"])
def test_an_empty_slice_falls_back_to_the_last_or_the_key_box(fallback):
    gt = ellipsoid()
    img = gt.astype(np.float32)
    img[13] = 0.0                      # the model finds nothing on slice 13
    res = propagate_3d(BoxThreshold(), img, gt, fallback=fallback, bbox_shift=3, shift_frame=None)
    assert not res.mask[13].any()
    assert res.source[14] == "fallback"
    assert res.source[15] == "previous"
    assert res.boxes[14] == (res.boxes[13] if fallback == "last" else res.boxes[10])
    assert res.boxes[13] != res.boxes[10]
    np.testing.assert_array_equal(res.mask[14:], gt[14:])   # recovered after the gap (the boxes still cover it)


def test_empty_ground_truth_gives_an_empty_mask_without_calling_the_model():
    model = BoxThreshold()
    res = propagate_3d(model, np.ones((4, 8, 8)), np.zeros((4, 8, 8), bool))
    assert not res.mask.any()
    assert model.calls == 0
    assert res.key_slice == -1


@pytest.mark.parametrize(("shape", "tile", "overlap"), [((1000, 1300), 512, 0), ((1000, 1300), 512, 64),
                                                 ((300, 200), 512, 0), ((512, 1024), 512, 0)])
def test_tile_windows_cover_the_image_with_full_size_tiles(shape, tile, overlap):
    wins = tile_windows(shape, tile, overlap)
    cover = np.zeros(shape, int)
    for y0, x0, y1, x1 in wins:
        assert (y1 - y0, x1 - x0) == (min(tile, shape[0]), min(tile, shape[1]))
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1
    if overlap == 0 and shape[0] % tile == 0 and shape[1] % tile == 0:
        assert cover.max() == 1
    with pytest.raises(ValueError):
        tile_windows(shape, 64, 64)


def test_predict_tiled_prompts_only_tiles_with_ground_truth_and_unions_their_masks():
    rng = np.random.default_rng(0)
    gt = np.zeros((1000, 1300), bool)
    for _ in range(12):
        y, x = rng.integers(20, 980), rng.integers(20, 1280)
        gt[y - 8:y + 8, x - 8:x + 8] = True
    image = gt.astype(np.float32) + rng.normal(0, 0.05, gt.shape).astype(np.float32)
    res = predict_tiled(BoxThreshold(), image, gt, tile=512)
    np.testing.assert_array_equal(res.mask, gt)
    windows_with_gt = [w for w in tile_windows(gt.shape, 512) if gt[w[0]:w[2], w[1]:w[3]].any()]
    assert res.windows == windows_with_gt
    assert res.prompts >= 12
    assert predict_tiled(BoxThreshold(), image, np.zeros_like(gt)).windows == []


def test_prompt_requires_something_and_consistent_points():
    with pytest.raises(ValueError):
        Prompt()
    with pytest.raises(ValueError):
        Prompt(points=((1.0, 2.0),), labels=())
    with pytest.raises(ValueError):
        Prompt(points=((1.0, 2.0),), labels=(2,))
    with pytest.raises(ValueError):
        Prompt(box=(5.0, 0.0, 1.0, 3.0))


def test_normalise_mr_clips_to_the_percentiles_of_the_nonzero_voxels_and_keeps_zeros():
    from segaudit.models.propagate import normalise_mr

    rng = np.random.default_rng(3)
    vol = np.zeros((6, 20, 20), np.float32)
    vol[1:5, 4:16, 4:16] = rng.uniform(100, 200, (4, 12, 12))
    vol[2, 8, 8] = 10_000.0                     # one bright outlier: clipped, not the new maximum
    out = normalise_mr(vol)
    assert out.dtype == np.uint8
    assert (out[vol == 0] == 0).all()
    inside = vol[vol != 0]
    lo, hi = np.percentile(inside, [0.5, 99.5])
    assert out[2, 8, 8] == 255
    expected = np.rint((np.clip(inside, lo, hi) - lo) / (hi - lo) * 255)
    np.testing.assert_array_equal(out[vol != 0], expected)
    assert np.median(out[vol != 0]) > 100      # the outlier did not squash the contrast
    assert not normalise_mr(np.zeros((2, 3, 3))).any()
