"""Flat 2D: ``images/`` plus mask folders matched by file stem with an optional suffix (``_EX``, ``_mask``).

Folder names decide the role (``mask``/``label``/``gt`` -> ground truth, ``pred``/``output`` -> prediction,
``inst`` -> instances, ``ignore`` -> skipped) and lossless formats win over JPEG. Each mask folder's encoding
(0/255, a colour channel, label values) is guessed from a sample of its files (:mod:`segaudit.dataset.sniff`);
a metadata table whose column matches the image stems is proposed as ``metadata``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

from segaudit.dataset.layouts._base import Detection, Layout, list_files, list_subdirs
from segaudit.dataset.metadata import read_table
from segaudit.dataset.sniff import sniff_encoding
from segaudit.errors import ConfigError
from segaudit.io.readers import RASTER_SUFFIXES

TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx")

_IMAGE_DIR = re.compile(r"^(images?|imgs?|inputs?)$", re.I)
_ROLE_RULES = (
    ("skip", re.compile(r"ignore|exclude", re.I)),
    ("instances", re.compile(r"inst", re.I)),
    ("prediction", re.compile(r"pred|output|infer|result", re.I)),
    ("ground_truth", re.compile(r"mask|label|gt|seg|annot|class|ground|truth|manual", re.I)),
)


def _raster_files(d: Path) -> list[Path]:
    return [f for f in list_files(d) if f.name.lower().endswith(RASTER_SUFFIXES)]


def _stem(p: Path) -> str:
    return p.name.rsplit(".", 1)[0]


def _name_template(folder: str, files: list[Path], image_stems: set[str]) -> tuple[str, str, int]:
    """(template, suffix, n matched) for a mask folder whose stems are image stems plus a suffix."""
    suffixes: Counter = Counter()
    for f in files:
        s = _stem(f)
        if s in image_stems:
            suffixes[""] += 1
            continue
        for i in image_stems:
            if s.startswith(i) and len(s) > len(i) and not s[len(i)].isalnum():
                suffixes[s[len(i):]] += 1
                break
    if not suffixes:
        return "", "", 0
    suffix, n = suffixes.most_common(1)[0]
    exts = {f.name.rsplit(".", 1)[1] for f in files}
    ext = "{ext}" if len(exts) > 1 else exts.pop()
    return f"{{root}}/{folder}/{{case}}{suffix}.{ext}", suffix, n


def _label_name(folder: str) -> str:
    noise = {"mask", "masks", "label", "labels", "gt", "seg", "binary", "png", "jpg", "jpeg", "original"}
    tokens = [t for t in re.split(r"[_\-]", folder) if t and t.lower() not in noise]
    return "_".join(tokens) or "foreground"


def detect(data_dir: Path, det: Detection) -> bool:
    """Whether ``data_dir`` holds flat folders of 2D images and masks; fills ``det`` when it does."""
    img_dirs = [d for d in list_subdirs(data_dir) if _IMAGE_DIR.match(d.name) and _raster_files(d)]
    if not img_dirs:
        return False
    img_dir = img_dirs[0]
    images = _raster_files(img_dir)
    image_stems = {_stem(f) for f in images}
    exts = {f.name.rsplit(".", 1)[1] for f in images}
    name = data_dir.name
    entry: dict = {"root": os.fspath(data_dir),
                   "images": f"{{root}}/{img_dir.name}/{{case}}." + ("{ext}" if len(exts) > 1 else exts.pop())}
    notes = [f"{name}: flat 2D layout, {len(images)} image(s) in {img_dir.name}/"]
    gt_candidates = []
    predictions: dict[str, str] = {}
    pred_encoding = None
    for d in list_subdirs(data_dir):
        if d == img_dir:
            continue
        files = _raster_files(d)
        if not files:
            continue
        role = next((r for r, rx in _ROLE_RULES if rx.search(d.name)), None)
        if role is None:
            notes.append(f"  {d.name}/: not used (name says neither mask nor prediction)")
            continue
        if role == "skip":
            notes.append(f"  {d.name}/: not used (an ignore/exclude region, not a label)")
            continue
        tpl, suffix, n = _name_template(d.name, files, image_stems)
        if not tpl:
            notes.append(f"  {d.name}/: not used (no file stem matches an image stem)")
            continue
        lossy = all(f.suffix.lower() in (".jpg", ".jpeg") for f in files)
        if role == "ground_truth":
            score = (0 if lossy else 4) + ("binary" in d.name.lower()) + ("class" in d.name.lower())
            gt_candidates.append((score, d.name, tpl, files, lossy, suffix, n))
        elif role == "instances":
            entry["instances"] = tpl
            notes.append(f"  {d.name}/: instance masks ({n} matched), ids used as given")
        else:
            model = re.sub(r"^(pred(iction)?s?|outputs?|infer(ence)?|results?)[_-]?", "", d.name, flags=re.I)
            model = re.sub(r"[_-]?(png|jpe?g)$", "", model, flags=re.I) or d.name
            predictions[model] = tpl
            guess = sniff_encoding(files, what=f"predictions in {d.name}/")
            enc, why = guess.encoding, guess.reason
            pred_encoding = enc
            if guess.warning:
                det.warnings.append(f"{name}: {guess.warning}")
            notes.append(f"  {d.name}/: predictions of model {model!r} ({n} matched); {why}"
                         + ("; lossy JPEG, edges are approximate" if lossy else ""))
    if gt_candidates:
        gt_candidates.sort(key=lambda c: (-c[0], c[1]))
        score, folder, tpl, files, lossy, suffix, n = gt_candidates[0]
        entry["ground_truth"] = tpl
        guess = sniff_encoding(files, what=f"ground-truth masks in {folder}/")
        enc, values, why = guess.encoding, guess.values, guess.reason
        if guess.warning:
            det.warnings.append(f"{name}: {guess.warning}")
        entry["mask_encoding"] = enc
        if enc["kind"] == "binary":
            entry["labels"] = {_label_name(folder): 1}
        else:
            entry["labels"] = {f"class_{v}": v for v in sorted(values)}
        notes.append(f"  {folder}/: ground truth ({n} matched{', suffix ' + repr(suffix) if suffix else ''}); {why}")
        for c in gt_candidates[1:]:
            reason = "lossy JPEG masks" if c[4] else f"{folder}/ preferred"
            notes.append(f"  {c[1]}/: not used ({reason})")
    if predictions:
        entry["predictions"] = predictions
        if pred_encoding and pred_encoding != entry.get("mask_encoding"):
            entry["prediction_encoding"] = pred_encoding
    meta = _find_metadata(data_dir, image_stems)
    if meta:
        entry["metadata"] = meta[0]
        notes.append(f"  {meta[1]}")
    det.project["datasets"][name] = entry
    det.notes += notes
    det.layouts.append("flat2d")
    return True


def _find_metadata(data_dir: Path, cases: set[str]) -> tuple[dict, str] | None:
    best = None
    for f in list_files(data_dir):
        if not f.name.lower().endswith(TABLE_SUFFIXES):
            continue
        try:
            df = read_table(f)
        except ConfigError:
            continue
        for col in df.columns:
            vals = df[col].dropna().astype(str).str.replace(r"\.[A-Za-z]{3,4}$", "", regex=True)
            hits = int(vals.isin(cases).sum())
            if hits and (best is None or hits > best[0]):
                best = (hits, f.name, col)
    if best is None:
        return None
    hits, fname, col = best
    return ({"path": f"{{root}}/{fname}".replace("{root}/", ""), "id_column": col},
            f"{fname}: metadata table, column {col!r} matches {hits} case(s)")


LAYOUT = Layout("flat2d", detect, "images/ + mask folders")
