"""nnU-Net raw.

``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` and ``dataset.json`` for the channel and label names (v1 and
v2 formats), in the folder or one level down; prediction folders are those named like ``pred``/``infer``/``output``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from segaudit.dataset.layouts._base import Detection, Layout, list_subdirs
from segaudit.errors import ConfigError


def detect(data_dir: Path, det: Detection) -> bool:
    """Whether ``data_dir`` (or a sub-folder) is an nnU-Net raw dataset; fills ``det`` when it does."""
    candidates = [data_dir, *list_subdirs(data_dir)]
    found = False
    for d in candidates:
        if not ((d / "imagesTr").is_dir() and (d / "dataset.json").is_file()):
            continue
        try:
            meta = json.loads((d / "dataset.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{d / 'dataset.json'}: not valid JSON ({exc})") from exc
        ext = meta.get("file_ending", ".nii.gz")
        channels = meta.get("channel_names") or meta.get("modality") or {"0": "image"}
        images = {str(name): f"{{root}}/imagesTr/{{case}}_{int(idx):04d}{ext}" for idx, name in channels.items()}
        entry: dict = {"root": os.fspath(d), "images": images, "sequences": list(images)}
        if (d / "labelsTr").is_dir():
            entry["ground_truth"] = f"{{root}}/labelsTr/{{case}}{ext}"
        labels_raw = meta.get("labels") or {}
        labels: dict[str, int] = {}
        regions: dict[str, list[int]] = {}
        for k, v in labels_raw.items():
            if isinstance(v, int | str) and str(v).isdigit() and not str(k).isdigit():  # v2: name -> value
                if int(v) > 0:
                    labels[str(k)] = int(v)
            elif isinstance(v, list):  # v2 region-based: name -> [values]
                regions[str(k)] = [int(x) for x in v if int(x) > 0]
            elif str(k).isdigit() and int(k) > 0:  # v1: value -> name
                labels[str(v)] = int(k)
        if labels:
            entry["labels"] = labels
        if regions:
            entry["regions"] = regions
        name = d.name
        pred_dirs = [p for p in list_subdirs(d) if re.search(r"pred|infer|output", p.name, re.I)]
        if pred_dirs:
            entry["predictions"] = {p.name: f"{{root}}/{p.name}/{{case}}{ext}" for p in pred_dirs}
        det.project["datasets"][name] = entry
        det.notes.append(f"{name}: nnU-Net raw layout (imagesTr/<case>_XXXX{ext}, labelsTr, dataset.json): "
                         f"channels {list(images)} and labels {labels} from dataset.json"
                         + (f"; prediction folders {[p.name for p in pred_dirs]}" if pred_dirs else ""))
        found = True
    if found:
        det.layouts.append("nnunet")
    return found


LAYOUT = Layout("nnunet", detect, "nnU-Net imagesTr/ + dataset.json")
