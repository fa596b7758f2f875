"""``segaudit ask-eval`` on the public sample set: writes the project file and runs the evaluation.

    SEGAUDIT_SAMPLE_DATA=/path/to/sample/data python benchmarks/ask_eval_sample.py --out /tmp/ask-eval [--holdout 0.3]

Chest x-rays (lungs), IDRiD fundus photos (hard exudates), brain-metastasis T2w slices and the CoNSeP H&E tiles.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml


def sample_project(root: Path, out: Path) -> Path:
    data = {"name": "ask-sample", "datasets": {
        "chest": {"root": str(root / "chest_xray_lungs"), "images": "{root}/images/{case}.{ext}",
                  "ground_truth": "{root}/masks_lung/{case}.png", "labels": {"lung": 1},
                  "mask_encoding": {"kind": "binary", "threshold": 127}},
        "fundus": {"root": str(root / "fundus_exudates"), "images": "{root}/images/{case}.jpg",
                   "ground_truth": "{root}/masks_EX_binary_png/{case}_EX.png", "labels": {"exudate": 1},
                   "mask_encoding": {"kind": "binary", "threshold": 127}},
        "mets": {"root": str(root / "brainmets_t2w_slices"), "images": "{root}/images/{case}.jpg",
                 "ground_truth": "{root}/masks_binary_png/{case}.png", "labels": {"metastasis": 1},
                 "mask_encoding": {"kind": "binary", "threshold": 127}},
        "consep": {"root": str(root / "histology_consep"), "images": "{root}/images/{case}.jpg",
                   "ground_truth": "{root}/class_masks/{case}.png", "instances": "{root}/inst_masks/{case}.png",
                   "label_convention": "consep"},
    }}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "ask_sample.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--holdout", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = os.environ.get("SEGAUDIT_SAMPLE_DATA")
    if not root:
        print("set SEGAUDIT_SAMPLE_DATA", file=sys.stderr)
        return 2
    project = sample_project(Path(root), Path(args.out))
    from segaudit.cli import main as cli

    return cli(["ask-eval", str(project), "--out", args.out, "--holdout", str(args.holdout), "--seed",
                str(args.seed)])


if __name__ == "__main__":
    raise SystemExit(main())
