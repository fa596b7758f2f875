"""Export formats, all written from the one :class:`~segaudit.instruct.record.Record` list.

=============  ==============================================================================================
``jsonl``      ``records.jsonl``: one record per line, every field (masks as compressed COCO RLE).
``llava``      ``llava.json``: LLaVA / LLaVA-Med conversations; each ``[SEG]`` becomes the mask's pixel box.
``lisa``       ``lisa.json``: LISA conversations with ``[SEG]`` tokens, ``masks`` = one RLE per token, in order.
``sa2va``      ``sa2va.json``: records with masks, ``text`` = target phrases, ``polygons`` = rings per phrase
               ([x0, y0, x1, y1, ...] in pixel coordinates, contours at level 0.5: lossy, see the tests' IoU).
``glamm``      ``glamm.json``: GLaMM grounded captions, ``groundings`` = phrase -> character span + RLE masks.
``biomedparse``  ``biomedparse/annotations.json`` (COCO-refer: images, annotations with ``sentences`` and
               ``mask_file``) + ``biomedparse/masks/*.png`` (0/255, one file per distinct mask, shared by the
               annotations of the same target in the same image): segment records only.
=============  ==============================================================================================

Every entry keeps ``segaudit`` provenance (dataset, case, image and mask file, label, slice, axis). Files are
written through a temporary file and an atomic rename; JSON is written with sorted keys, so the same records give
byte-identical files.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from skimage import measure

from segaudit.instruct.language import plural, singular
from segaudit.instruct.record import Record
from segaudit.instruct.rle import decode_rle
from segaudit.io.atomic import atomic_write
from segaudit.io.paths import safe_component

FORMATS = ("jsonl", "llava", "lisa", "sa2va", "glamm", "biomedparse")


def write_atomic(path: Path, data: bytes) -> Path:
    """Write bytes through a hidden temporary file in the same folder and an atomic rename
    (:func:`segaudit.io.atomic.atomic_write`).
    """
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def _json(obj) -> bytes:
    # no indent: the C encoder (several times faster on long polygon lists); sorted keys keep bytes stable
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def provenance(r: Record) -> dict:
    """The traceability block every format carries."""
    p = dict(r.provenance.__dict__)
    return {**p, "record": r.id, "task": r.task, "labels": [t.name for t in r.targets], "template": r.template,
            "negative": r.negative, "refusal_reason": r.refusal_reason}


def grounded(r: Record) -> list:
    """The targets with a non-empty mask: the ones the answer's ``[SEG]`` tokens stand for, in order."""
    return [t for t in r.targets if t.pixels > 0]


def target_box(t) -> list[int]:
    """Pixel XYXY box (exclusive ends) around all components of a target."""
    b = np.array(t.boxes)
    return [int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())]


def plain_caption(answer: str) -> tuple[str, list[tuple[int, int]]]:
    """The answer without ``<p>``/``</p>`` and ``[SEG]``, and the character spans of the ``<p>`` phrases."""
    text = re.sub(r"\s*\[SEG\]", "", answer)
    spans, out, pos = [], [], 0
    for m in re.finditer(r"<p>(.*?)</p>", text):
        out.append(text[pos:m.start()])
        start = sum(len(s) for s in out)
        out.append(m.group(1))
        spans.append((start, start + len(m.group(1))))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out), spans


def image_ref(r: Record) -> str:
    """The record's image: the exported file (relative to the output folder) when images were exported, else the
    original file, with ``#slice=<k>,axis=<a>`` for a slice of a volume.
    """
    if r.exported_image:
        return r.exported_image
    p = r.provenance
    ref = p.image_file or ""
    return ref if p.slice is None else f"{ref}#slice={p.slice},axis={p.axis}"


def polygons(mask: np.ndarray) -> list[list[float]]:
    """Rings of a binary mask as flat [x0, y0, x1, y1, ...] lists (contours at level 0.5 of the padded mask).

    Computed on the crop around the foreground; holes are rings too (fill them with the even-odd rule).
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return []
    cols = np.flatnonzero(mask.any(axis=0))
    r0, c0 = int(rows[0]), int(cols[0])
    padded = np.pad(mask[r0:rows[-1] + 1, c0:cols[-1] + 1].astype(np.uint8), 1)
    rings = []
    for c in measure.find_contours(padded, 0.5):
        if len(c) < 3:
            continue
        xy = np.column_stack([c[:, 1] - 1 + c0, c[:, 0] - 1 + r0])
        rings.append([round(float(v), 2) for v in xy.ravel()])
    return rings


def _next_of(it: Iterator[str]) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that puts the next item of ``it`` for each match, in order."""

    def repl(_m: re.Match[str]) -> str:
        return next(it)

    return repl


def _llava(records: list[Record]) -> list[dict]:
    out = []
    for r in records:
        boxes = iter([str(target_box(t)) for t in grounded(r)])
        answer = re.sub(r"\[SEG\]", _next_of(boxes), r.answer)
        answer = re.sub(r"</?p>", "", answer)
        out.append({"id": r.id, "image": image_ref(r), "conversations": [
            {"from": "human", "value": "<image>\n" + r.instruction}, {"from": "gpt", "value": answer}],
            "segaudit": provenance(r)})
    return out


def seg_answer(r: Record) -> str:
    """The answer with exactly one ``[SEG]`` per grounded target.

    Detect, count and measure answers state boxes or numbers in words, so their masks are appended as ``Mask: [SEG].``
    (LISA's one token per mask).
    """
    answer = re.sub(r"</?p>", "", r.answer)
    missing = len(grounded(r)) - answer.count("[SEG]")
    return answer + " Mask: " + ", ".join(["[SEG]"] * missing) + "." if missing > 0 else answer


def _lisa(records: list[Record]) -> list[dict]:
    return [{"id": r.id, "image": image_ref(r), "height": r.height, "width": r.width, "conversations": [
        {"from": "human", "value": "<image>\n" + r.instruction}, {"from": "gpt", "value": seg_answer(r)}],
        "masks": [t.rle for t in grounded(r)], "segaudit": provenance(r)} for r in records]


def _sa2va(records: list[Record]) -> list[dict]:
    out = []
    cache: dict[str, list] = {}

    def rings(rle: dict) -> list:
        key = json.dumps(rle, sort_keys=True)
        if key not in cache:
            cache[key] = polygons(decode_rle(rle))
        return cache[key]

    for r in records:
        g = grounded(r)
        if not g:
            continue
        out.append({"id": r.id, "image": image_ref(r), "height": r.height, "width": r.width,
                    "question": r.instruction, "answer": plain_caption(r.answer)[0],
                    "text": [t.phrase for t in g], "polygons": [rings(t.rle) for t in g],
                    "segaudit": provenance(r)})
    return out


def _glamm(records: list[Record]) -> list[dict]:
    out = []
    for r in records:
        caption, spans = plain_caption(r.answer)
        groundings: dict[str, dict] = {}
        for i, t in enumerate(grounded(r)):
            if i < len(spans):
                span = spans[i]
            else:
                span = (0, 0)
                # count/detect answers name the countable forms ('1 lung', '2 lungs', '3 regions of edema')
                for form in (t.phrase, plural(t.phrase), singular(t.phrase)):
                    m = re.search(r"\b" + re.escape(form) + r"\b", caption)
                    if m:
                        span = m.span()
                        break
            key = t.phrase if t.phrase not in groundings else f"{t.phrase} ({i + 1})"
            groundings[key] = {"token_positives": list(span), "rle_masks": [t.rle]}
        out.append({"id": r.id, "file_name": image_ref(r), "height": r.height, "width": r.width,
                    "question": r.instruction, "caption": caption, "groundings": groundings,
                    "segaudit": provenance(r)})
    return out


def _png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(mask.view(np.uint8) * np.uint8(255)).save(buf, format="PNG")
    return buf.getvalue()


def _biomedparse(records: list[Record], out_dir: Path) -> list[Path]:
    images: dict[str, int] = {}
    img_rows: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    cats: dict[str, int] = {}
    written = []
    mask_files: dict[tuple[str, str, str], str] = {}  # (image, target, RLE) -> file: one PNG per distinct mask
    for r in records:
        if r.task != "segment":
            continue
        ref = image_ref(r)
        if ref not in images:
            images[ref] = len(images) + 1
            img_rows.append({"id": images[ref], "file_name": ref, "height": r.height, "width": r.width,
                             "segaudit": dict(r.provenance.__dict__)})
        for t in grounded(r):
            cats.setdefault(t.name, len(cats) + 1)
            ann_id = len(anns) + 1
            key = (ref, t.name, str(t.rle["counts"]))
            mask_file = mask_files.get(key, "")
            if not mask_file:
                # names from data only through safe_component; the running number keeps them unique
                mask_file = (f"masks/{len(mask_files) + 1:06d}_{safe_component(r.provenance.case)}_"
                             f"{safe_component(t.name)}.png")
                mask_files[key] = mask_file
                written.append(write_atomic(out_dir / "biomedparse" / mask_file, _png(decode_rle(t.rle))))
            x0, y0, x1, y1 = target_box(t)
            anns.append({"id": ann_id, "image_id": images[ref], "category_id": cats[t.name], "mask_file": mask_file,
                         "sentences": [{"raw": r.instruction, "sent": r.instruction.lower()}],
                         "bbox": [x0, y0, x1 - x0, y1 - y0], "area": t.pixels,
                         # COCO reads a list-form RLE only on crowd annotations
                         "iscrowd": int(isinstance(t.rle["counts"], list)),
                         "segmentation": t.rle, "segaudit": provenance(r)})
    coco = {"images": img_rows, "annotations": anns,
            "categories": [{"id": i, "name": n} for n, i in cats.items()]}
    written.append(write_atomic(out_dir / "biomedparse" / "annotations.json", _json(coco)))
    return written


def write_format(records: list[Record], out_dir: str | Path, fmt: str) -> list[Path]:
    """Write ``records`` in one format under ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    simple: dict[str, tuple[str, Callable[[list[Record]], list[dict]]]] = {
        "llava": ("llava.json", _llava), "lisa": ("lisa.json", _lisa), "sa2va": ("sa2va.json", _sa2va),
        "glamm": ("glamm.json", _glamm)}
    if fmt == "jsonl":
        lines = "".join(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False) + "\n" for r in records)
        return [write_atomic(out_dir / "records.jsonl", lines.encode("utf-8"))]
    if fmt in simple:
        name, fn = simple[fmt]
        return [write_atomic(out_dir / name, _json(fn(records)))]
    if fmt == "biomedparse":
        return _biomedparse(records, out_dir)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
