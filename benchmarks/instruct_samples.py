"""One record of each task type in each export format, the diversity numbers and the mask round trip, on the demo.

    python benchmarks/instruct_samples.py [--out DIR] [--per-image 4] [--seed 0] [--text-rule] [--width 60]

Exports the bundled demo project (``segaudit instruct export`` with ``--format all``), then prints, per format, one
record per task type (segment, detect, count, measure, describe, absent, refuse: the first in file order; long
strings such as RLE counts and polygon lists cut to ``--width`` characters with an ellipsis), the diversity
report's numbers from ``summary.json``, and a round-trip table: every mask of every format decoded (COCO RLE with
``pycocotools``, PNG with PIL, Sa2VA polygons rasterised with the even-odd rule) and compared with the source
label map read independently (``segaudit.io.read_mask`` of the record's mask file, its slice, its label values).
Needs pycocotools (the ``reference`` extra).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageDraw

from segaudit.dataset import load_project
from segaudit.instruct import export_instructions
from segaudit.io import read_mask
from segaudit.pipeline.demo import demo_project_path

TASKS = ("segment", "detect", "count", "measure", "describe", "absent", "refuse")
SUMMARY_KEYS = ("records", "views", "negative_share", "distinct_1", "distinct_2", "distinct_2_per_view",
                "near_duplicate_rate", "near_duplicate_method", "near_duplicates_removed")


def shorten(x: Any, width: int) -> Any:
    """``x`` with long strings cut to ``width`` characters, lists to their first two items and empty fields
    dropped (an ellipsis marks each cut)."""
    if isinstance(x, str):
        return x if len(x) <= width else x[:width] + "\u2026"
    if isinstance(x, dict):
        return {k: shorten(v, width) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        if x and all(isinstance(v, (int, float)) for v in x):
            text = json.dumps(x)
            return x if len(text) <= width else text[:width] + "\u2026"
        head = [shorten(v, width) for v in x[:2]]
        return head if len(x) <= 2 else [*head, f"\u2026 +{len(x) - 2}"]
    return x


def _entries(out: Path) -> dict[str, list[dict]]:
    fmts = {f: json.loads((out / f"{f}.json").read_text()) for f in ("llava", "lisa", "sa2va", "glamm")}
    fmts["biomedparse"] = json.loads((out / "biomedparse" / "annotations.json").read_text())["annotations"]
    fmts["jsonl"] = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    return fmts


def _record_id(fmt: str, e: dict) -> str:
    return e["segaudit"]["record"] if fmt == "biomedparse" else e["id"]


def _coco(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_api  # test-only reference decoder

    counts = rle["counts"].encode("ascii") if isinstance(rle["counts"], str) else rle["counts"]
    if isinstance(counts, list):
        counts = mask_api.frPyObjects(rle, *rle["size"])["counts"]
    return mask_api.decode({"size": rle["size"], "counts": counts}).astype(bool)


def _rings(rings: list[list[float]], h: int, w: int) -> np.ndarray:
    acc = np.zeros((h, w), bool)
    for ring in rings:
        img = PILImage.new("1", (w, h), 0)
        ImageDraw.Draw(img).polygon([(ring[i], ring[i + 1]) for i in range(0, len(ring), 2)], fill=1)
        acc ^= np.asarray(img, bool)
    return acc


class Sources:
    """Source masks read independently of the exporter: the mask file, its slice, the target's label values."""

    def __init__(self, project_path: Path):
        self.encodings = {d.name: d.mask_encoding for d in load_project(project_path).datasets}
        self.cache: dict[str, np.ndarray] = {}

    def mask(self, rec: dict, values: list[int]) -> np.ndarray:
        p = rec["provenance"]
        if p["mask_file"] not in self.cache:
            self.cache[p["mask_file"]] = np.asarray(read_mask(p["mask_file"], self.encodings[p["dataset"]]).array)
        arr = self.cache[p["mask_file"]]
        if p["slice"] is not None:
            arr = np.take(arr, p["slice"], axis=p["axis"])
        return np.isin(arr, values)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def round_trip(out: Path, fmts: dict[str, list[dict]], sources: Sources) -> list[tuple[str, str, list[float]]]:
    """(format, decoder, IoUs) for every mask every format holds."""
    recs = {r["id"]: r for r in fmts["jsonl"]}

    def grounded(rid: str) -> list[dict]:
        return [t for t in recs[rid]["targets"] if t["pixels"]]

    def src(rid: str, t: dict) -> np.ndarray:
        return sources.mask(recs[rid], t["values"])

    rows = [("jsonl", "pycocotools RLE", [_iou(_coco(t["rle"]), src(r["id"], t)) for r in fmts["jsonl"]
                                           for t in r["targets"] if t["pixels"]])]
    rows.append(("lisa", "pycocotools RLE", [_iou(_coco(m), src(e["id"], t)) for e in fmts["lisa"]
                                             for m, t in zip(e["masks"], grounded(e["id"]), strict=True)]))
    rows.append(("glamm", "pycocotools RLE", [_iou(_coco(g["rle_masks"][0]), src(e["id"], t)) for e in fmts["glamm"]
                                              for g, t in zip(e["groundings"].values(), grounded(e["id"]),
                                                              strict=True)]))
    rows.append(("biomedparse", "pycocotools RLE", [_iou(_coco(a["segmentation"]),
                                                         src(_record_id("biomedparse", a), grounded(
                                                             _record_id("biomedparse", a))[0]))
                                                    for a in fmts["biomedparse"]]))
    rows.append(("biomedparse", "PNG mask file", [_iou(np.asarray(PILImage.open(out / "biomedparse" / a["mask_file"]))
                                                       > 0, src(a["segaudit"]["record"],
                                                                grounded(a["segaudit"]["record"])[0]))
                                                  for a in fmts["biomedparse"]]))
    rows.append(("sa2va", "polygons, even-odd", [_iou(_rings(p, e["height"], e["width"]), src(e["id"], t))
                                                 for e in fmts["sa2va"]
                                                 for p, t in zip(e["polygons"], grounded(e["id"]), strict=True)]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="export folder (default: a temporary one)")
    ap.add_argument("--per-image", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--text-rule", action="store_true", help="near-duplicates by the text rule, not MiniLM")
    ap.add_argument("--width", type=int, default=60)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "export"
        export_instructions(demo_project_path(), out, format="all", per_image=args.per_image, seed=args.seed,
                            use_model=not args.text_rule)
        fmts = _entries(out)
        task_of = {r["id"]: r["task"] for r in fmts["jsonl"]}
        for fmt, entries in fmts.items():
            print(f"== {fmt} ({len(entries)} entries)")
            for task in TASKS:
                e = next((e for e in entries if task_of[_record_id(fmt, e)] == task), None)
                if e is None:
                    held = "segment records" if fmt == "biomedparse" else "records with a mask"
                    print(f"  {task}: none (this format holds {held} only)")
                    continue
                e = {k: v for k, v in e.items() if k != "segaudit"} if fmt != "jsonl" else \
                    {k: v for k, v in e.items() if k not in ("provenance", "strata")}
                print(f"  {task}: {json.dumps(shorten(e, args.width), ensure_ascii=False)}")
        summary = json.loads((out / "summary.json").read_text())
        print("== diversity (summary.json)")
        print("  " + ", ".join(f"{k} {summary[k]}" for k in SUMMARY_KEYS))
        for key in ("tasks", "negatives", "register", "templates_used"):
            if isinstance(summary.get(key), dict):
                print(f"  {key}: " + ", ".join(f"{k} {v}" for k, v in sorted(summary[key].items())))
        print("== round trip: every mask decoded and compared with the source label map")
        print(f"  {'format':<12} {'decoder':<20} {'masks':>5} {'IoU=1':>6} {'min IoU':>7} {'mean IoU':>8}")
        for fmt, how, ious in round_trip(out, fmts, Sources(demo_project_path())):
            a = np.array(ious)
            exact = f"{(a == 1.0).mean():.0%}" if a.size else "-"
            lo, mean = (f"{a.min():.3f}", f"{a.mean():.3f}") if a.size else ("-", "-")
            print(f"  {fmt:<12} {how:<20} {a.size:>5} {exact:>6} {lo:>7} {mean:>8}")


if __name__ == "__main__":
    main()
