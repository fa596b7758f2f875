"""Promptable-model results (``segaudit prompt``): Dice per prompt kind, click curves, robustness and flips.

Everything is computed from the store's rows: the ``prompts`` table (one row per prompt: its Dice against the
ground-truth component it was simulated from, under a ``setting``) and the ``metrics`` Dice that ``evaluate``
gave each image's mask (the union of one kind's masks) as the model ``<model>/<kind>``.

Robustness (:func:`stability_table`): every setting other than ``default`` re-ran one prompt kind under a change
(resize filter, box jitter, more points ...). Per object, its Dice under each setting is paired with the same
object's Dice under the default box; per case (mean over its objects) the spread (max - min over the settings),
the worst drop from the default box, and a **flip** flag when the Dice moves by more than :data:`FLIP_DELTA` across
the settings a user would call equivalent (``default`` box, the other resize filters, divide-by-255 scaling, a
5-pixel jitter).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from segaudit.analysis.summary import bootstrap_ci

__all__ = ["EQUIVALENT_SETTINGS", "FLIP_DELTA", "attribution_summary", "click_curve", "prompt_summary",
           "stability_summary", "stability_table"]

#: A Dice moving by more than this across equivalent settings is a flip (the issue's rule).
FLIP_DELTA = 0.2
#: Settings that give what a user would call the same prompt as the default box.
EQUIVALENT_SETTINGS = ("default", "filter=area", "filter=bilinear-antialias", "scaling=divide255", "jitter=5px")


def _ci(values: pd.Series) -> tuple[float, float]:
    v = values.dropna().to_numpy(dtype=float)
    return bootstrap_ci(v, n_resamples=1000) if v.size else (np.nan, np.nan)


def prompt_summary(prompts: pd.DataFrame, dice: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per dataset and prompted model (``<model>/<kind>``), default setting.

    Columns: ``dataset``, ``model``, ``n_images``, ``image_dice_mean``/``_ci_low``/``_ci_high`` (the ``evaluate``
    Dice of each image's union mask, bootstrap 95 % CI; NaN without ``dice`` rows), ``n_objects``,
    ``object_dice_mean``, ``object_dice_std``, ``object_dice_median`` (per prompt against its component),
    ``predicted_iou_mean``, ``decode_ms`` (mean decoder time per prompt), ``encode_s`` (mean encoder time per
    image). ``dice``: the store's ``metric_values(["dice"])`` rows (other models are ignored).

    Examples
    --------
    >>> p = pd.DataFrame({"dataset": "x", "case": ["a", "a", "b"], "model": "litemedsam/box",
    ...                   "setting": "default", "component": [1, 2, 1], "dice": [0.9, 0.8, 0.7],
    ...                   "predicted_iou": 0.9, "decode_seconds": 0.05, "encode_seconds": 1.0})
    >>> round(float(prompt_summary(p).object_dice_mean.iloc[0]), 3)
    0.8
    """
    if prompts.empty:
        return pd.DataFrame()
    p = prompts[prompts.setting == "default"]
    rows = []
    for (ds, model), g in p.groupby(["dataset", "model"], sort=True):
        row = {"dataset": ds, "model": model, "n_images": int(g.case.nunique())}
        if dice is not None and len(dice):
            d = dice[(dice.dataset == ds) & (dice.model == model) & (dice.metric == "dice")]
            per_image = d.groupby("case").value.mean()
            lo, hi = _ci(per_image)
            row.update(image_dice_mean=float(per_image.mean()) if len(per_image) else np.nan,
                       image_dice_ci_low=lo, image_dice_ci_high=hi)
        else:
            row.update(image_dice_mean=np.nan, image_dice_ci_low=np.nan, image_dice_ci_high=np.nan)
        row.update(n_objects=len(g), object_dice_mean=float(g.dice.mean()), object_dice_std=float(g.dice.std()),
                   object_dice_median=float(g.dice.median()), predicted_iou_mean=float(g.predicted_iou.mean()),
                   decode_ms=float(g.decode_seconds.mean() * 1000),
                   encode_s=float(g.groupby("case").encode_seconds.first().mean()))
        rows.append(row)
    return pd.DataFrame(rows)


def click_curve(prompts: pd.DataFrame) -> pd.DataFrame:
    """Mean Dice after each refinement click, per dataset and model (``clicks`` rows of the default setting).

    Columns ``dataset``, ``model``, ``click`` (1..N), ``dice_mean``, ``n`` (objects reaching that click: an
    object stops when its Dice target is reached or no error is left, and then keeps its last Dice), plus per
    dataset and model the mean number of clicks to reach 0.85 and 0.90 (``noc85``, ``noc90``; an object that
    never does counts as N, as NoC@85 does).
    """
    p = prompts[(prompts.setting == "default") & prompts.clicks_dice.notna()] if len(prompts) else prompts
    rows = []
    for (ds, model), g in p.groupby(["dataset", "model"], sort=True):
        curves = [json.loads(c) for c in g.clicks_dice]
        n_max = max((len(c) for c in curves), default=0)
        if not n_max:
            continue
        padded = np.array([c + [c[-1]] * (n_max - len(c)) if c else [np.nan] * n_max for c in curves])
        nocs = {}
        for target, name in ((0.85, "noc85"), (0.90, "noc90")):
            reach = [next((i + 1 for i, v in enumerate(c) if v >= target), n_max) for c in curves]
            nocs[name] = float(np.mean(reach))
        for k in range(n_max):
            rows.append({"dataset": ds, "model": model, "click": k + 1, "dice_mean": float(np.nanmean(padded[:, k])),
                         "n": int(sum(len(c) > k for c in curves)), **nocs})
    return pd.DataFrame(rows)


def _object_wide(prompts: pd.DataFrame) -> pd.DataFrame:
    """(dataset, case, component) × setting Dice; the default box under ``default``."""
    p = prompts[(prompts.setting != "default") | (prompts.kind == "box")]
    return p.pivot_table(index=["dataset", "case", "component"], columns="setting", values="dice", aggfunc="mean")


def stability_table(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and case: Dice under each setting (mean over its objects), spread, worst drop, flip.

    Columns: ``dataset``, ``case``, ``n_objects``, one ``dice[<setting>]`` column per setting present (the default
    box as ``dice[default]``), ``spread`` (max - min over every setting), ``worst_drop`` (default minus the lowest
    setting), ``equivalent_spread`` (over :data:`EQUIVALENT_SETTINGS` only), ``flip`` (``equivalent_spread`` >
    :data:`FLIP_DELTA`, computed per object: a case flips when one of its objects does). Empty when the store has
    no robustness rows (no setting besides ``default``) or no default box.
    """
    if prompts.empty or not (prompts.setting != "default").any():
        return pd.DataFrame()
    wide = _object_wide(prompts)
    if "default" not in wide.columns:
        return pd.DataFrame()
    eq = [c for c in wide.columns if c in EQUIVALENT_SETTINGS]
    obj = wide.copy()
    obj["flip"] = (wide[eq].max(axis=1) - wide[eq].min(axis=1)) > FLIP_DELTA
    per_case = obj.groupby(level=["dataset", "case"])
    settings = ["default"] + sorted(c for c in wide.columns if c != "default")
    out = per_case[settings].mean()
    out.columns = [f"dice[{c}]" for c in settings]
    vals = out.to_numpy(dtype=float)
    out.insert(0, "n_objects", per_case.size())
    out["spread"] = np.nanmax(vals, axis=1) - np.nanmin(vals, axis=1)
    out["worst_drop"] = vals[:, 0] - np.nanmin(vals, axis=1)
    eq_vals = out[[f"dice[{c}]" for c in settings if c in eq]].to_numpy(dtype=float)
    out["equivalent_spread"] = np.nanmax(eq_vals, axis=1) - np.nanmin(eq_vals, axis=1)
    out["flip"] = per_case["flip"].any()
    return out.reset_index()


def stability_summary(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and setting: how far the per-object Dice moves from the default box.

    Objects, mean Dice, the mean paired difference from the default box with its 95 % bootstrap CI, the largest
    drop, and the number of objects whose Dice moves by more than :data:`FLIP_DELTA`.

    Columns: ``dataset``, ``setting``, ``n_objects``, ``dice_mean``, ``delta_mean``, ``delta_ci_low``,
    ``delta_ci_high``, ``worst_drop``, ``n_moved`` (``|delta| > FLIP_DELTA``). Empty without robustness rows.
    """
    if prompts.empty or not (prompts.setting != "default").any():
        return pd.DataFrame()
    wide = _object_wide(prompts)
    if "default" not in wide.columns:
        return pd.DataFrame()
    rows = []
    for ds, g in wide.groupby(level="dataset", sort=True):
        for setting in sorted(c for c in g.columns if c != "default"):
            pair = g[["default", setting]].dropna()
            if pair.empty:
                continue
            delta = pair[setting] - pair["default"]
            lo, hi = _ci(delta)
            rows.append({"dataset": ds, "setting": setting, "n_objects": len(pair),
                         "dice_mean": float(pair[setting].mean()), "delta_mean": float(delta.mean()),
                         "delta_ci_low": lo, "delta_ci_high": hi, "worst_drop": float(-delta.min()),
                         "n_moved": int((delta.abs() > FLIP_DELTA).sum())})
    return pd.DataFrame(rows)


def attribution_summary(attributions: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, source, model, region and sequence: Shapley value and drop-one loss, mean over cases, 95 % CIs.

    Columns: ``dataset``, ``source`` (``live``: sequences removed from the model's input; ``declared``: the
    project file's subset predictions), ``model``, ``region``, ``sequence``, ``n_cases`` (cases whose Shapley
    value is used), ``shapley_mean``, ``shapley_ci_low``, ``shapley_ci_high`` (bootstrap; NaN below 10 cases),
    ``n_drop_one``, ``drop_one_mean``, ``drop_one_ci_low``, ``drop_one_ci_high`` (drop-one is defined in cases where
    Shapley is not, when only other subsets are missing), ``full_dice`` / ``empty_dice`` (mean Dice with every
    sequence kept / none, over the ``n_cases`` cases), ``n_left_out`` and ``left_out`` (``case: reason; ...``: the
    cases whose Shapley value is NaN or carries a ``note``, e.g. missing subsets or an empty ground truth). A row
    with a ``note`` is left out of the means. Empty without ``attributions`` rows.

    Examples
    --------
    >>> a = pd.DataFrame({"dataset": "d", "case": ["a", "b", "c"], "source": "declared", "model": "m",
    ...                   "region": "WT", "method": "shapley", "sequences": "t2", "value": [0.2, 0.4, np.nan],
    ...                   "note": [None, None, "Shapley not computable: subset(s) '' not scored"]})
    >>> s = attribution_summary(a).iloc[0]
    >>> round(float(s.shapley_mean), 3), int(s.n_cases), s.left_out
    (0.3, 2, "c: Shapley not computable: subset(s) '' not scored")
    """
    if attributions.empty:
        return pd.DataFrame()
    a = attributions.copy()
    for col, default in (("source", "live"), ("note", None), ("model", ""), ("region", "")):
        if col not in a:
            a[col] = default
    a["source"] = a["source"].fillna("live")
    keep = a.note.isna() & np.isfinite(a.value.astype(float))
    rows = []
    for (ds, source, model, region), g in a.groupby(["dataset", "source", "model", "region"], sort=True,
                                                    dropna=False):
        k = keep[g.index]
        phis = g[g.method == "shapley"]
        players = list(dict.fromkeys(phis.sequences))
        sub = g[g.method == "subset"]
        for seq in sorted(players):
            ph = phis[phis.sequences == seq]
            used = ph[k[ph.index]]
            out = ph[~k[ph.index]]
            drop = g[(g.method == "drop_one") & (g.sequences == seq)]
            drop = drop[k[drop.index]]
            cases = set(used.case)
            is_full = [frozenset(t.split("+")) == frozenset(players) if t else not players for t in sub.sequences]
            full = sub[sub.case.isin(cases) & pd.Series(is_full, index=sub.index, dtype=bool)]
            empty = sub[sub.case.isin(cases) & (sub.sequences == "")]
            lo, hi = _ci(used.value)
            dlo, dhi = _ci(drop.value)
            why = [f"{c}: {n if isinstance(n, str) else 'value undefined'}" for c, n in zip(out.case, out.note,
                                                                                         strict=True)]
            rows.append({"dataset": ds, "source": source, "model": model, "region": region, "sequence": seq,
                         "n_cases": len(used), "shapley_mean": float(used.value.mean()) if len(used) else np.nan,
                         "shapley_ci_low": lo, "shapley_ci_high": hi, "n_drop_one": len(drop),
                         "drop_one_mean": float(drop.value.mean()) if len(drop) else np.nan,
                         "drop_one_ci_low": dlo, "drop_one_ci_high": dhi,
                         "full_dice": float(full.value.mean()) if len(full) else np.nan,
                         "empty_dice": float(empty.value.mean()) if len(empty) else np.nan,
                         "n_left_out": len(out), "left_out": "; ".join(why)})
    return pd.DataFrame(rows)
