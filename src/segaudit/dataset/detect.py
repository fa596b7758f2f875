"""Layout presets and auto-detection: propose a project file for a data folder as it lies on disk.

Recognised layouts (each proposal says which rule fired and why):

``audit``
    AUDIT / BraTS 2020 folders: ``<DS>/<DS>_images/<case>/<case>_<seq>.nii.gz`` with ``<case>_seg``, and
    predictions ``<DS>/<DS>_seg/<model>/<case>/<case>_pred.nii.gz``. A plain BraTS 2020 training folder
    (``<case>/<case>_<seq>.nii.gz``, no ``_images`` parent) is the same layout without predictions.
``brats2023``
    BraTS 2023+ names: ``<case>/<case>-t1c.nii.gz`` ... ``<case>-seg.nii.gz``.
``nnunet``
    nnU-Net raw: ``imagesTr/<case>_0000.nii.gz``, ``labelsTr/<case>.nii.gz`` and ``dataset.json`` for the
    channel and label names (v1 and v2 formats).
``brainmetshare``
    ``<case>/{t1_pre,t1_gd,flair,bravo,seg}.nii.gz``.
``flat2d``
    ``images/`` plus mask folders matched by file stem with an optional suffix (``_EX``, ``_mask``);
    folder names decide the role (``mask``/``label``/``gt`` -> ground truth, ``pred``/``output`` ->
    prediction, ``inst`` -> instances, ``ignore`` -> skipped) and lossless formats win over JPEG.

The label convention is read from the masks where the layout leaves it open (values {1, 2, 4} are BraTS 2020,
{1, 2, 3} in an AUDIT layout are AUDIT's).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from segaudit.dataset.labels import LABEL_CONVENTIONS
from segaudit.dataset.metadata import read_table
from segaudit.dataset.sniff import sniff_encoding, sniff_label_values
from segaudit.dataset.templates import match_template
from segaudit.errors import ConfigError
from segaudit.io.image import RASTER_SUFFIXES

NIFTI_RX = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")
BRAINMETSHARE_SEQS = ("t1_pre", "t1_gd", "flair", "bravo")
TABLE_SUFFIXES = (".csv", ".tsv", ".xlsx")


#: Known case-id patterns of repeated measures: (name, regex with ``subject`` and ``timepoint`` groups).
LONGITUDINAL_PATTERNS = (
    ("-week-NNN", r"(?P<subject>.+)-week-(?P<timepoint>\d+)"),
    ("_NNN", r"(?P<subject>.+)_(?P<timepoint>\d+)"),
)
#: Metadata columns that usually hold a subject (patient) id.
SUBJECT_COLUMNS = ("subject", "subject_id", "patient", "patientid", "patient_id")
_SEP = "_-."
_PRED_WORDS = ("pred", "output", "result", "fusion", "model", "infer")
_GT_WORDS = ("label", "mask", "seg", "gt", "truth", "annotation", "manual")


class UnknownLayoutError(ConfigError):
    """No known layout fits a folder; ``skeleton`` is the :class:`Detection` inferred from what was found."""

    def __init__(self, message: str, skeleton: Detection):
        super().__init__(message)
        self.skeleton = skeleton


@dataclass
class Detection:
    """A proposed project: the YAML mapping and the reasons, one line each."""

    project: dict
    notes: list[str] = field(default_factory=list)
    layouts: list[str] = field(default_factory=list)
    #: Proposals the user must check before running (e.g. an encoding that reads most sampled masks as empty).
    warnings: list[str] = field(default_factory=list)


def _nii_ext(name: str) -> str:
    return ".nii.gz" if name.endswith(".nii.gz") else ".nii"


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith("."))
    except OSError:
        return []


def _files(p: Path) -> list[Path]:
    try:
        return sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    except OSError:
        return []


def _sniff_values(paths: list[Path], limit: int = 6) -> set[int]:
    """Union of the integer values of a seeded sample of at most ``limit`` masks spread over ``paths``."""
    return sniff_label_values(paths, k=limit)


def _convention_for(values: set[int], default: str) -> tuple[str, str]:
    if 4 in values and 3 not in values:
        return "brats2020", f"mask values {sorted(values)} contain 4 but not 3: BraTS 2020 labels (1, 2, 4)"
    if 4 in values and 3 in values:
        return "brats2023", f"mask values {sorted(values)} include 3 and 4: BraTS 2023+ labels (1-4)"
    return default, f"mask values {sorted(values)}: {LABEL_CONVENTIONS[default].description}"


# --------------------------------------------------------------------------------------------- 3D layouts


def _case_folder_layout(parent: Path, sep: str) -> tuple[list[str], bool, int] | None:
    """For folders ``<case>/<case><sep><seq>.nii.gz``: (sequences, has_seg, n_cases), else None."""
    seqs: Counter = Counter()
    n_cases = 0
    has_seg = False
    for case_dir in _subdirs(parent):
        hit = False
        for f in _files(case_dir):
            m = NIFTI_RX.match(f.name)
            if not m or not m.group("stem").startswith(case_dir.name + sep):
                continue
            suffix = m.group("stem")[len(case_dir.name) + len(sep):]
            if not suffix or sep in suffix and sep == "-":
                continue
            hit = True
            if suffix == "seg":
                has_seg = True
            else:
                seqs[suffix] += 1
        n_cases += hit
    if n_cases == 0:
        return None
    return [s for s, _ in sorted(seqs.items())], has_seg, n_cases


def _detect_audit(data_dir: Path, det: Detection) -> bool:
    level1 = _subdirs(data_dir)
    level2 = [sub for d in level1 for sub in _subdirs(d)]
    image_dirs = sorted({d for d in level1 + level2 if d.name.endswith("_images")})
    found = False
    for img_dir in image_dirs:
        name = img_dir.name[: -len("_images")]
        layout = _case_folder_layout(img_dir, "_")
        if layout is None:
            continue
        seqs, has_seg, n_cases = layout
        ds_root = img_dir.parent
        ext = ".nii.gz"
        entry: dict = {"root": os.fspath(ds_root)}
        if seqs:
            entry["images"] = f"{{root}}/{img_dir.name}/{{case}}/{{case}}_{{sequence}}{ext}"
            entry["sequences"] = seqs
        if has_seg:
            entry["ground_truth"] = f"{{root}}/{img_dir.name}/{{case}}/{{case}}_seg{ext}"
        seg_dir = ds_root / f"{name}_seg"
        models = [m.name for m in _subdirs(seg_dir)] if seg_dir.is_dir() else []
        if models:
            entry["predictions"] = f"{{root}}/{name}_seg/{{model}}/{{case}}/{{case}}_pred{ext}"
        segs = sorted(img_dir.glob("*/*_seg.nii*"))
        conv, why = _convention_for(_sniff_values(segs), "audit")
        entry["label_convention"] = conv
        det.project["datasets"][name] = entry
        det.notes.append(
            f"{name}: AUDIT layout ({img_dir.name}/<case>/<case>_<seq>.nii.gz): {n_cases} case folder(s), "
            f"sequences {seqs or 'none (masks only)'}, models {models or 'none'}; {why}")
        found = True
    if found:
        det.layouts.append("audit")
    return found


def _detect_case_folders(data_dir: Path, det: Detection) -> bool:
    """BraTS 2020 training folders (``_``) and BraTS 2023+ (``-``) without an ``_images`` parent."""
    for sep, layout_name, default in (("-", "brats2023", "brats2023"), ("_", "audit", "audit")):
        layout = _case_folder_layout(data_dir, sep)
        if layout is None:
            continue
        seqs, has_seg, n_cases = layout
        if not seqs and not has_seg:
            continue
        name = data_dir.name
        entry: dict = {"root": os.fspath(data_dir)}
        if seqs:
            entry["images"] = f"{{root}}/{{case}}/{{case}}{sep}{{sequence}}.nii.gz"
            entry["sequences"] = seqs
        if has_seg:
            entry["ground_truth"] = f"{{root}}/{{case}}/{{case}}{sep}seg.nii.gz"
        conv, why = _convention_for(_sniff_values(sorted(data_dir.glob(f"*/*{sep}seg.nii*"))), default)
        entry["label_convention"] = conv
        det.project["datasets"][name] = entry
        label = "BraTS 2023+" if sep == "-" else "BraTS 2020"
        det.notes.append(f"{name}: {label} case folders (<case>/<case>{sep}<seq>.nii.gz): {n_cases} case(s), "
                         f"sequences {seqs}; {why}")
        det.layouts.append(layout_name)
        return True
    return False


def _detect_nnunet(data_dir: Path, det: Detection) -> bool:
    candidates = [data_dir, *_subdirs(data_dir)]
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
        pred_dirs = [p for p in _subdirs(d) if re.search(r"pred|infer|output", p.name, re.I)]
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


def _detect_brainmetshare(data_dir: Path, det: Detection) -> bool:
    seqs: Counter = Counter()
    n = 0
    for case_dir in _subdirs(data_dir):
        names = {NIFTI_RX.match(f.name).group("stem") for f in _files(case_dir) if NIFTI_RX.match(f.name)}
        present = [s for s in BRAINMETSHARE_SEQS if s in names]
        if present and ("seg" in names or len(present) >= 2):
            n += 1
            seqs.update(present)
    if n == 0:
        return False
    name = data_dir.name
    sequences = [s for s in BRAINMETSHARE_SEQS if s in seqs]
    ext = ".nii.gz"
    entry = {"root": os.fspath(data_dir), "images": f"{{root}}/{{case}}/{{sequence}}{ext}",
             "sequences": sequences, "ground_truth": f"{{root}}/{{case}}/seg{ext}",
             "labels": {"metastasis": 1}}
    det.project["datasets"][name] = entry
    det.notes.append(f"{name}: BrainMetShare layout (<case>/{{t1_pre,t1_gd,flair,bravo,seg}}.nii.gz): {n} case(s), "
                     f"sequences {sequences}; binary metastasis masks")
    det.layouts.append("brainmetshare")
    return True


# --------------------------------------------------------------------------------------------- 2D layout

_IMAGE_DIR = re.compile(r"^(images?|imgs?|inputs?)$", re.I)
_ROLE_RULES = (
    ("skip", re.compile(r"ignore|exclude", re.I)),
    ("instances", re.compile(r"inst", re.I)),
    ("prediction", re.compile(r"pred|output|infer|result", re.I)),
    ("ground_truth", re.compile(r"mask|label|gt|seg|annot|class|ground|truth|manual", re.I)),
)


def _raster_files(d: Path) -> list[Path]:
    return [f for f in _files(d) if f.name.lower().endswith(RASTER_SUFFIXES)]


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


def _detect_flat2d(data_dir: Path, det: Detection) -> bool:
    img_dirs = [d for d in _subdirs(data_dir) if _IMAGE_DIR.match(d.name) and _raster_files(d)]
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
    for d in _subdirs(data_dir):
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
    for f in _files(data_dir):
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


# --------------------------------------------------------------------------------------------- entry point


def detect_layout(data_dir: str | Path) -> Detection:
    """Propose a project for ``data_dir``; raises ConfigError when no known layout is found.

    Paths in the proposal are absolute; :func:`relativize` makes them relative to where the file is written.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    if not data_dir.is_dir():
        raise ConfigError(f"{data_dir}: not a folder")
    det = Detection(project={"datasets": {}})
    found = (_detect_nnunet(data_dir, det) or _detect_audit(data_dir, det) or _detect_brainmetshare(data_dir, det)
             or _detect_flat2d(data_dir, det) or _detect_case_folders(data_dir, det))
    if not found:
        skeleton = propose_skeleton(data_dir)
        raise UnknownLayoutError(
            f"{data_dir}: no known layout found (looked for AUDIT <DS>_images/, BraTS case folders, nnU-Net "
            "imagesTr/ + dataset.json, BrainMetShare <case>/seg.nii.gz, and images/ + mask folders); found: "
            + "; ".join(n.strip() for n in skeleton.notes[:6])
            + ". `segaudit init` writes a skeleton project file with templates inferred from these files",
            skeleton)
    for entry in det.project["datasets"].values():
        meta = entry.get("metadata")
        if meta and not os.path.isabs(meta["path"]):
            meta["path"] = os.path.join(entry["root"], meta["path"])
    _propose_subjects(data_dir, det)
    return det


def infer_longitudinal(cases: list[str]) -> tuple[str, str] | None:
    """A known subject/time-point pattern that every case id matches, with a subject seen at least twice.

    Patterns tried in order: ``-week-NNN`` (LUMIERE), ``_NNN`` (UCSF; for 2D slice exports the number may be a
    slice index rather than a time point, which the note says). With ``_NNN`` the subject part must itself end
    in a digit (``UCSF_100302_1``), so that numbered cases of one cohort (``BraTS20_Training_001``) are not
    taken for time points of a subject ``BraTS20_Training``. Returns (regex, note) or None.
    """
    if len(cases) < 2:
        return None
    for name, rx in LONGITUDINAL_PATTERNS:
        matches = [re.fullmatch(rx, c) for c in cases]
        if not all(matches):
            continue
        if name == "_NNN" and not all(m.group("subject")[-1].isdigit() for m in matches):
            continue
        subjects = Counter(m.group("subject") for m in matches)
        if max(subjects.values()) < 2:
            continue
        repeated = sum(1 for v in subjects.values() if v > 1)
        return rx, (f"case ids look like <subject>{name} ({len(subjects)} subject(s), {repeated} with several "
                    f"cases): proposed longitudinal pattern {rx!r}; check that the number is a time point")
    return None


def _propose_subjects(data_dir: Path, det: Detection) -> None:
    """Add a longitudinal pattern (and a note on a metadata subject column) to each detected dataset."""
    for name, entry in det.project["datasets"].items():
        try:
            tpl = entry.get("ground_truth") or next(iter((entry.get("images") or {"": None}).values()), None)
            if isinstance(entry.get("images"), str):
                tpl = entry.get("ground_truth") or entry["images"]
            cases = sorted({m.case for m in match_template(tpl, Path(entry["root"]))}) if tpl else []
        except Exception:  # noqa: BLE001 - a proposal is optional; detection itself succeeded
            cases = []
        if "longitudinal" not in entry:
            found = infer_longitudinal(cases)
            if found:
                entry["longitudinal"] = {"pattern": found[0]}
                det.notes.append(f"  {name}: {found[1]}")
        meta = entry.get("metadata")
        if meta:
            try:
                cols = [str(c) for c in read_table(Path(meta["path"])).columns]
            except Exception:  # noqa: BLE001
                cols = []
            subj = [c for c in cols if c.lower() in SUBJECT_COLUMNS]
            if subj:
                det.notes.append(f"  {name}: metadata column {subj[0]!r} looks like a subject id: cases that share "
                                 "it are repeated measures of one subject (not independent)")


def _common_affixes(names: list[str]) -> tuple[str, str]:
    """Common prefix and suffix of names, cut at a separator (``_``, ``-``, ``.``) so no token is split."""
    if len(names) == 1:
        return names[0], ""
    pre = os.path.commonprefix(names)
    suf = os.path.commonprefix([n[::-1] for n in names])[::-1]
    shortest = min(len(n) for n in names)
    while pre and pre[-1] not in _SEP and not pre.endswith("}"):
        pre = pre[:-1]
    while suf and suf[0] not in _SEP:
        suf = suf[1:]
    if len(pre) + len(suf) > shortest:
        suf = suf[len(pre) + len(suf) - shortest:]
    return pre, suf


def _role_of(folder: str, name: str) -> str:
    word = (folder or name).lower()
    if any(w in word for w in _PRED_WORDS):
        return "prediction"
    if any(w in word for w in _GT_WORDS):
        return "ground_truth"
    return "image"


def _image_like(p: Path) -> bool:
    n = p.name.lower()
    return n.endswith((".nii", ".nii.gz", ".npy", ".npz")) or n.endswith(RASTER_SUFFIXES)


def propose_skeleton(data_dir: str | Path, max_cases: int = 50) -> Detection:
    """A skeleton project for an unknown layout: templates inferred from the case folders' files.

    Each sub-folder of ``data_dir`` is taken as a case. Inside it, files are grouped by their folder (relative
    to the case); the case id in names becomes ``{case}``; the part that varies between the names of a group
    becomes ``{model}`` (folders named like pred/output/fusion), ``{sequence}`` (images) or nothing (one file
    per case: a ground truth when named like seg/mask/label). ``notes`` lists what was found, one line per
    folder, and what is missing (no ground truth: nothing for ``evaluate`` to score).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    cases = [d for d in _subdirs(data_dir)][:max_cases]
    det = Detection(project={"datasets": {}}, layouts=["skeleton"])
    groups: dict[str, dict[str, set[str]]] = {}  # folder -> generalised name -> cases
    for case in cases:
        for f in sorted(case.rglob("*")):
            if not f.is_file() or not _image_like(f) or any(p.startswith(".") for p in f.relative_to(case).parts):
                continue
            rel = f.relative_to(case)
            folder = rel.parent.as_posix() if rel.parent != Path(".") else ""
            groups.setdefault(folder, {}).setdefault(rel.name.replace(case.name, "{case}"), set()).add(case.name)
    if not cases or not groups:
        loose = [f.name for f in _files(data_dir) if _image_like(f)]
        det.notes.append(f"{data_dir}: {len(_subdirs(data_dir))} sub-folder(s), {len(loose)} image file(s) at the top"
                         + (f" (e.g. {', '.join(loose[:3])})" if loose else "") + "; no case folders with images")
        if loose:
            pre, suf = _common_affixes(loose)
            det.project["datasets"][data_dir.name] = {"root": str(data_dir), "images": f"{{root}}/{pre}{{case}}{suf}"}
        return det
    entry: dict = {"root": str(data_dir)}
    preds: list[str] = []
    roles: dict[str, str] = {}
    det.notes.append(f"{data_dir.name}: {len(cases)} case folder(s) (e.g. {cases[0].name}); templates inferred from "
                     "their files, check each one")
    for folder, names in sorted(groups.items()):
        base = f"{{root}}/{{case}}/{folder + '/' if folder else ''}"
        generic = sorted(names)
        pre, suf = _common_affixes(generic)
        varying = sorted({n[len(pre):len(n) - len(suf) if suf else None] for n in generic}) if len(generic) > 1 else []
        role = _role_of(folder, generic[0])
        roles[folder] = role
        where = f"{folder or '.'}"
        if role == "prediction":
            tpl = base + (f"{pre}{{model}}{suf}" if varying else generic[0])
            preds.append(tpl)
            det.notes.append(f"  {where}: predictions of {len(varying) or 1} model(s) "
                             f"({', '.join(varying) or generic[0]}): {tpl}")
        elif role == "ground_truth" and not varying:
            entry["ground_truth"] = base + generic[0]
            det.notes.append(f"  {where}: ground truth (one file per case): {entry['ground_truth']}")
        elif varying:
            entry["images"] = base + f"{pre}{{sequence}}{suf}"
            entry["sequences"] = varying
            det.notes.append(f"  {where}: images, {len(varying)} sequence(s) ({', '.join(varying)}): {entry['images']}")
        else:
            entry["images"] = base + generic[0]
            det.notes.append(f"  {where}: one image per case: {entry['images']}")
    if preds:
        entry["predictions"] = preds if len(preds) > 1 else preds[0]
    if "ground_truth" not in entry:
        det.notes.append("  no ground truth found: `segaudit evaluate` will have nothing to score; compare the "
                         "models with each other instead (segaudit agree), or add ground_truth: <template>")
    if not preds:
        det.notes.append("  no predictions found: add predictions: <template with {model}> to evaluate models")
    mask_folders = [f for f, r in roles.items() if r in ("ground_truth", "prediction")]
    values: set[int] = set()
    for folder in mask_folders:  # a few masks of each folder: one file may lack a label
        values |= _sniff_values([f for f in _files(cases[0] / folder if folder else cases[0]) if _image_like(f)], 3)
    if 4 in values:
        conv, why = _convention_for(values, "brats2020")
        entry["label_convention"] = conv
        det.notes.append(f"  masks: {why}")
    elif values:
        det.notes.append(f"  masks: values {sorted(values)}; declare labels or label_convention (audit: 1 ENH, "
                         "2 NEC, 3 EDE; brats2023: 1 NETC, 2 SNFH, 3 ET)")
    found = infer_longitudinal([c.name for c in cases])
    if found:
        entry["longitudinal"] = {"pattern": found[0]}
        det.notes.append(f"  {found[1]}")
    det.project["datasets"][data_dir.name] = entry
    return det


def relativize(project: dict, base_dir: str | Path) -> dict:
    """Copy of a detected project with roots and metadata paths relative to ``base_dir`` where possible."""
    base = os.fspath(Path(base_dir).resolve())
    out = {"datasets": {}}
    for name, entry in project["datasets"].items():
        e = dict(entry)
        for key in ("root",):
            e[key] = _rel(e[key], base)
        if "metadata" in e:
            e["metadata"] = dict(e["metadata"], path=_rel(e["metadata"]["path"], base))
        out["datasets"][name] = e
    return out


def _rel(path: str, base: str) -> str:
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith(".." + os.sep + "..") else rel
