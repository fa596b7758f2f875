"""Section 'Promptable model (simulated prompts)'.

What ``segaudit prompt`` stored: Dice per prompt kind (the image's union mask as ``evaluate`` scored it, with its
bootstrap CI, and per object against its ground-truth component, mean ± std and median), the Dice-after-each-click
curve, the robustness summary and the cases whose answer flips, and for each prompt kind the best and the worst
image with the prompts drawn over the image and the mask (true positives green, false positives red, false
negatives blue). Drawn only when the store has ``prompts`` rows.
"""

from __future__ import annotations

import html
import json
import re

import numpy as np
import pandas as pd

from segaudit.analysis.prompting import (
    EQUIVALENT_SETTINGS,
    FLIP_DELTA,
    attribution_summary,
    click_curve,
    prompt_summary,
    stability_summary,
    stability_table,
)
from segaudit.report import figures
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, png_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Promptable model (simulated prompts)"


def _ci_text(mean: float, lo: float, hi: float) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{mean:.3f} (n too small for a CI)"


def summary_table(prompts: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
    """The per-kind table as shown: image Dice with its CI, object Dice mean ± std and median, times."""
    s = prompt_summary(prompts, m[m.metric == "dice"] if len(m) else None)
    if s.empty:
        return s
    return pd.DataFrame({
        "dataset": s.dataset, "model": s.model, "images": s.n_images,
        "image Dice [95% CI]": [_ci_text(a, b, c) for a, b, c in zip(s.image_dice_mean, s.image_dice_ci_low,
                                                                     s.image_dice_ci_high, strict=True)],
        "objects": s.n_objects,
        "object Dice mean ± std": [f"{a:.3f} ± {b:.3f}" for a, b in zip(s.object_dice_mean,
                                                                       s.object_dice_std.fillna(0), strict=True)],
        "object Dice median": s.object_dice_median, "predicted IoU": s.predicted_iou_mean,
        "decoder ms / prompt": s.decode_ms.round(1), "encoder s / image": s.encode_s.round(2)})


def _prompt_marks(ax, prompt: dict, f: float) -> None:
    """Draw one prompt (box, positive and negative points) on an axis whose image was reduced by ``f``."""
    if prompt.get("box"):
        x0, y0, x1, y1 = (v / f for v in prompt["box"])
        ax.add_patch(figures.pyplot().Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="#ffd600", lw=1.2))
    for (x, y), lab in zip(prompt.get("points", []), prompt.get("labels", []), strict=False):
        ax.plot(x / f, y / f, marker="P" if lab else "X", color="#00e5ff" if lab else "#ff1744", ms=7, mec="black",
                mew=0.6)


def overlay_figure(image: np.ndarray, gt: np.ndarray, mask: np.ndarray, prompts: list[dict], title: str):
    """The image with the mask's errors coloured (green/red/blue) and every prompt of the kind drawn on it."""
    fig = figures.overlay_panel(image, gt, mask)
    ax = fig.axes[0]
    f = float(np.ceil(max(gt.shape) / figures._PANEL_PIXELS)) if max(gt.shape) > figures._PANEL_PIXELS else 1.0
    for p in prompts:
        _prompt_marks(ax, p, f)
    ax.set_title(title, fontsize=8)
    return fig


def examples_html(prompts: pd.DataFrame, m: pd.DataFrame, max_kinds: int = 6,
                  encodings: dict | None = None) -> str:
    """Best and worst image per prompt kind (by the image's evaluate Dice), prompts drawn; reasons when not.

    ``encodings``: dataset -> the ground truth's declared :class:`~segaudit.io.masks.MaskEncoding` (a binary
    mask drawn with a threshold, a colour channel...), so the panel's ground truth is the one that was scored;
    the masks written by ``segaudit prompt`` are 0/255 PNGs (binary, threshold 127).
    """
    from segaudit.io.masks import MaskEncoding, read_mask
    from segaudit.io.readers import read_image

    p = prompts[(prompts.setting == "default") & prompts.mask_path.notna()]
    dice = m[m.metric == "dice"] if len(m) else pd.DataFrame(columns=["dataset", "case", "model", "value"])
    parts, missing = [], []
    for (ds, model), g in list(p.groupby(["dataset", "model"], sort=True))[:max_kinds]:
        d = dice[(dice.dataset == ds) & (dice.model == model)].groupby("case").value.mean()
        if d.empty:
            continue
        picks = [("worst", d.idxmin())] + ([("best", d.idxmax())] if d.idxmax() != d.idxmin() else [])
        figs = []
        for label, case in picks:
            rows = g[g.case == case]
            r = rows.iloc[0]
            try:
                image = read_image(r.image_path).array
                gt = read_mask(r.ground_truth_path, (encodings or {}).get(ds)).array != 0
                mask = read_mask(r.mask_path, MaskEncoding(kind="binary", threshold=127)).array != 0
            except Exception as exc:  # noqa: BLE001 - a moved or deleted file costs one panel, said so
                missing.append(f"{ds}/{case} {model}: {exc}")
                continue
            marks = [json.loads(x) for x in rows.prompt]
            title = f"{label}: {case} (Dice {d[case]:.3f})"
            if gt.ndim == 3:  # a propagated volume (box-3d): its key slice, with the key slice's box
                z, axis = int(marks[0].get("key_slice", -1)), int(marks[0].get("axis", 2))
                if z < 0 or image.shape[:3] != gt.shape or mask.shape != gt.shape:
                    missing.append(f"{ds}/{case} {model}: no key slice to draw")
                    continue
                image, gt, mask = (np.take(a, z, axis=axis) for a in (image, gt, mask))
                title = f"{label}: {case}, slice {z} (volume Dice {d[case]:.3f})"
            figs.append(png_html(overlay_figure(image, gt, mask, marks, title)))
        if figs:
            parts.append(f"<h3>{html.escape(ds)} / {html.escape(model)}</h3><div class='panels'>{''.join(figs)}"
                         "</div>")
    if missing:
        parts.append(note_html("Panels not drawn (file unreadable or gone): " + "; ".join(missing)))
    return "".join(parts)


def clicks_html(prompts: pd.DataFrame) -> str:
    """Mean Dice after each refinement click (one line per dataset and model), with NoC@85/90."""
    c = click_curve(prompts)
    if c.empty:
        return ""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    for (ds, model), g in c.groupby(["dataset", "model"], sort=True):
        ax.plot(g.click, g.dice_mean, marker="o", label=f"{ds} {model}")
    ax.set_xlabel("click")
    ax.set_ylabel("mean Dice")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    noc = c.drop_duplicates(["dataset", "model"])[["dataset", "model", "noc85", "noc90"]]
    return (note_html("Interactive refinement (RITM/SimpleClick protocol): each next click at the maximum of the "
                      "distance transform of the larger error; an object that never reaches the target counts the "
                      "maximum number of clicks.") + png_html(fig) + table_html(noc))


def robustness_html(prompts: pd.DataFrame) -> str:
    """The robustness summary (paired with the default box) and the cases that flip or drop most."""
    s = stability_summary(prompts)
    if s.empty:
        return ""
    t = stability_table(prompts)
    flips = t[t.flip]
    parts = [note_html(
        "Each setting re-ran the prompts under one change; per object its Dice is paired with the same object's "
        f"Dice under the default box (delta = setting − default, bootstrap 95% CI). A case flips when an object's "
        f"Dice moves by more than {FLIP_DELTA} across settings a user would call equivalent "
        f"({', '.join(EQUIVALENT_SETTINGS)})."), table_html(s)]
    parts.append(note_html(f"{len(flips)} of {len(t)} case(s) flip." if len(flips) else
                           f"No case of {len(t)} flips."))
    worst = t.sort_values("worst_drop", ascending=False).head(10).drop(columns=["equivalent_spread"])
    parts.append(note_html("The cases with the largest drop from the default box (one column per setting: the "
                           "Dice under it, mean over the case's objects)."))
    parts.append(fitted_table_html(worst.rename(columns=stability_column)))
    return "".join(parts)


def stability_column(name: str) -> str:
    """A stability-table column as the report heads it.

    ``dice[filter=area]`` -> ``filter=area`` (the note says the columns are Dice), ``n_objects`` -> ``objects``,
    ``worst_drop`` -> ``worst drop``.
    """
    if name.startswith("dice[") and name.endswith("]"):
        return name[5:-1]
    return {"n_objects": "objects", "worst_drop": "worst drop"}.get(name, name)


def fitted_table_html(df: pd.DataFrame) -> str:
    """:func:`table_html` of a table with many columns whose headers may break after ``=`` and ``-``.

    A header such as ``filter=bilinear-antialias`` has no space to break at, so without this each column is as
    wide as its header and ten settings make the table wider than the page; a ``<wbr>`` (a break opportunity,
    nothing drawn) after each ``=`` and ``-`` of the header cells lets them wrap there (``filter=`` /
    ``bilinear-`` / ``antialias``). The table is marked with the class ``fit`` (report.css).
    """
    out = table_html(df).replace('<table class="dataframe"', '<table class="dataframe fit"', 1)
    head, sep, body = out.partition("</thead>")
    head = re.sub(r"(<th>)(.*?)(</th>)", lambda m: m.group(1) + re.sub(r"([=-])", r"\1<wbr>", m.group(2))
                  + m.group(3), head)
    return head + sep + body


#: What each attribution source measured, as the report says it.
ATTRIBUTION_NOTES = {
    "live": ("Live removal (segaudit attribute): on each case's key slice (largest ground-truth area), a 3-channel "
             "image of the sequences below, every subset kept in turn (the others replaced by the fill), one box "
             "from the ground truth, LiteMedSAM's answer scored against that slice."),
    "declared": ("Declared subset predictions (segaudit attribute --from-predictions): the project file's "
                 "subset_predictions, one prediction per subset of the sequences (as a model trained with modality "
                 "dropout makes them), each scored by evaluate per region; an undeclared empty set predicts "
                 "nothing (Dice 0 where the ground truth is not empty). Cases whose region has an empty ground "
                 "truth, or lacks a subset, are left out of the means and listed."),
}


def attribution_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One source's attribution summary as shown: Shapley and drop-one with their CIs, cases used and left out."""
    return pd.DataFrame({
        "dataset": summary.dataset, "model": summary.model, "region": summary.region, "sequence": summary.sequence,
        "Shapley [95% CI]": [_ci_text(a, b, c) for a, b, c in zip(summary.shapley_mean, summary.shapley_ci_low,
                                                                  summary.shapley_ci_high, strict=True)],
        "drop-one [95% CI]": [_ci_text(a, b, c) for a, b, c in zip(summary.drop_one_mean, summary.drop_one_ci_low,
                                                                   summary.drop_one_ci_high, strict=True)],
        "cases": summary.n_cases, "full Dice": summary.full_dice, "empty Dice": summary.empty_dice,
        "left out": summary.n_left_out})


def attribution_html(attributions: pd.DataFrame) -> str:
    """The modality-attribution tables, one per source (live removal, declared subset predictions), labelled.

    Exact Shapley value of each sequence over all subsets (they sum to the Dice with all sequences minus the Dice
    with none) and the Dice lost when it alone is removed; mean over cases, bootstrap 95% CI.
    """
    s = attribution_summary(attributions)
    if s.empty:
        return ""
    parts = ["<h3>Modality attribution</h3>", note_html(
        "Which sequences the answer relies on: the exact Shapley value of each sequence over all subsets (they "
        "sum to the Dice with all sequences minus the Dice with none) and the Dice lost when it alone is removed; "
        "mean over cases, bootstrap 95% CI (none below 10 cases).")]
    for source, label in (("live", "Live removal (LiteMedSAM)"), ("declared", "Declared subset predictions")):
        t = s[s.source == source]
        if t.empty:
            continue
        parts += [f"<h4>{html.escape(label)}</h4>", note_html(ATTRIBUTION_NOTES[source]),
                  table_html(attribution_table(t))]
        out = t[t.n_left_out > 0]
        if len(out):
            reasons: dict[str, list[str]] = {}
            for model, region, text in zip(out.model, out.region, out.left_out, strict=True):
                for r in (x for x in text.split("; ") if x):
                    where = f"{model} {region}"
                    if where not in reasons.setdefault(r, []):
                        reasons[r].append(where)
            parts.append(note_html("Left out: " + "; ".join(f"{r} ({', '.join(w)})" for r, w in reasons.items())))
    return "".join(parts)


def render(inputs: ReportInputs) -> str:
    """The section's HTML, or why there is nothing (no ``prompts`` rows: run ``segaudit prompt``)."""
    prompts = inputs.prompts
    if prompts is None or prompts.empty:
        attribution = attribution_html(inputs.attributions)
        return attribution or why_html(
            "no promptable-model results in this store (segaudit prompt PROJECT.yaml --out RUN)")
    prep = json.loads(prompts[prompts.setting == "default"].preprocessing.iloc[0]) \
        if (prompts.setting == "default").any() else {}
    parts = [note_html(
        "Prompts simulated from the ground truth (seed "
        f"{', '.join(str(s) for s in sorted(prompts.seed.dropna().unique()))}); image Dice is the evaluate Dice "
        "of each image's mask (the union of a kind's masks), object Dice each prompt against its own ground-truth "
        f"component. Preprocessing: resize {prep.get('resize', '?')} to {prep.get('size', '?')} with the "
        f"{prep.get('filter', '?')} filter, {prep.get('scaling', '?')} scaling, {prep.get('padding', '?')} "
        "padding."), table_html(summary_table(prompts, inputs.m))]
    parts += [clicks_html(prompts), robustness_html(prompts), attribution_html(inputs.attributions),
              examples_html(prompts, inputs.m, encodings=inputs.mask_encodings)]
    return "".join(parts)
