"""Coverage.

Which cases each model was expected to score, scored, failed or never delivered, and what a comparison does with the
ones it lacks.

A summary that reports "n 3, Dice 1.000" for a model that delivered three of six predictions ranks a broken
submission first. So every summary row carries the model's coverage beside its statistics:

``n_expected``  cases with a ground truth in the dataset (the files the scan found; for stores without a scan,
                e.g. imported AUDIT tables, every case any model was scored on or failed on)
``n_scored``    cases with metric rows for this model
``n_missing``   expected cases whose prediction file does not exist
``n_failed``    expected cases whose prediction exists but could not be scored (corrupt, wrong grid, ...),
                with the file and the reason in the store's ``errors`` table

and ``n_expected = n_scored + n_missing + n_failed`` up to cases with neither a row nor an error (counted as
missing).

The missing-prediction policy of comparisons and rankings (:data:`MISSING_POLICIES`):

``worst``    (default) a missing or failed prediction is scored as an empty prediction, as BraTS does: Dice,
             IoU, NSD, sensitivity and the lesion scores 0 where the ground truth is not empty (the empty-case
             value where it is), distances the penalty distance. Every case with a ground truth counts.
``exclude``  only the cases that every compared model scored are used (paired on the cases both have).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segaudit.analysis.compare import higher_is_better

MISSING_POLICIES = ("worst", "exclude")
KEY = ["dataset", "model"]
# Metrics with a known value for an empty prediction; everything else is left undefined when imputed.
_ZERO_WHEN_PRED_EMPTY = ("dice", "iou", "sensitivity", "lesion_f1", "lesion_dice", "lesion_recall", "f1")
_NAN_WHEN_PRED_EMPTY = ("precision", "lesion_precision", "relative_volume_error")


@dataclass
class MissingFilled:
    """Metric rows after a missing-prediction policy, and what it changed.

    Attributes
    ----------
    metrics:
        The rows to analyse (imputed rows included under ``worst``, incomplete cases dropped under ``exclude``).
    policy:
        ``worst`` or ``exclude``.
    imputed:
        Per (dataset, model): number of cases scored as empty predictions (``worst``) or dropped (``exclude``).
    """

    metrics: pd.DataFrame
    policy: str
    imputed: pd.DataFrame

    def describe(self) -> str:
        """One sentence for a report or the CLI: the policy and how many cases it touched."""
        if self.imputed.empty or int(self.imputed.n.sum()) == 0:
            return f"missing-prediction policy '{self.policy}': every model has every case"
        parts = ", ".join(f"{r.model} {int(r.n)}" for r in self.imputed.itertuples() if r.n)
        if self.policy == "worst":
            return (f"missing-prediction policy 'worst': missing or failed predictions scored as empty "
                    f"predictions (Dice 0, penalty distance), cases per model: {parts}")
        return f"missing-prediction policy 'exclude': cases dropped because a model lacks them: {parts}"


def expected_cases(metrics: pd.DataFrame, errors: pd.DataFrame | None = None,
                   files: pd.DataFrame | None = None) -> pd.DataFrame:
    """The (dataset, case) pairs every model of a dataset should have scored.

    From the scan's ``files`` table when it has ground-truth rows for the dataset (existing ground-truth
    files), otherwise every case with a metric row or an ``evaluate`` error for any model.
    """
    parts = []
    have_files = set()
    if files is not None and len(files):
        gt = files[(files.role == "ground_truth") & files.exists.fillna(False).astype(bool)]
        have_files = set(gt.dataset)
        parts.append(gt[["dataset", "case"]])
    rest = [metrics[["dataset", "case"]]]
    if errors is not None and len(errors):
        rest.append(errors[errors.step == "evaluate"][["dataset", "case"]])
    other = pd.concat(rest, ignore_index=True)
    parts.append(other[~other.dataset.isin(have_files)])
    out = pd.concat(parts, ignore_index=True).astype(str).drop_duplicates()
    return out.sort_values(["dataset", "case"]).reset_index(drop=True)


def _is_missing(errors: pd.DataFrame) -> pd.Series:
    """Error rows that say the prediction file does not exist (the evaluate step's own wording)."""
    return errors.message.astype(str).str.contains("prediction file not found", regex=False)


def coverage(metrics: pd.DataFrame, errors: pd.DataFrame | None = None, files: pd.DataFrame | None = None,
             models: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (dataset, model): ``n_expected``, ``n_scored``, ``n_missing``, ``n_failed``, ``complete``.

    Parameters
    ----------
    metrics:
        The store's long ``metrics`` rows.
    errors:
        The store's ``errors`` table (its ``evaluate`` rows are used), or None.
    files:
        The scan's ``files`` table, or None: with it, expected cases are the ground truths found on disk and
        missing predictions are the prediction files that do not exist.
    models:
        Extra (dataset, model) pairs to report even without any row (e.g. a model whose every file failed).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, model), with ``failed_cases`` and ``missing_cases`` (comma-separated ids) and
        ``complete`` (``n_scored == n_expected``).
    """
    expected = expected_cases(metrics, errors, files)
    pairs = [metrics[KEY]]
    err = pd.DataFrame(columns=["dataset", "case", "model", "message", "severity", "step"])
    if errors is not None and len(errors):
        err = errors[(errors.step == "evaluate") & (errors.severity == "error")].copy()
        pairs.append(err[KEY])
    if files is not None and len(files):
        pred = files[files.role == "prediction"]
        pairs.append(pred.rename(columns={"key": "model"})[KEY])
    if models is not None:
        pairs.append(models[KEY])
    all_pairs = pd.concat(pairs, ignore_index=True).dropna().astype(str).drop_duplicates()
    missing_files = set()
    if files is not None and len(files):
        pred = files[(files.role == "prediction") & ~files.exists.fillna(False).astype(bool)]
        missing_files = set(zip(pred.dataset.astype(str), pred.case.astype(str), pred.key.astype(str), strict=True))
    scored = set(zip(metrics.dataset.astype(str), metrics.case.astype(str), metrics.model.astype(str), strict=True))
    err_missing: set[tuple[str, str, str]] = set()
    err_failed: set[tuple[str, str, str]] = set()
    if len(err):
        miss = _is_missing(err)
        for sel, target in ((miss, err_missing), (~miss, err_failed)):
            e = err[sel]
            target.update(zip(e.dataset.astype(str), e.case.astype(str), e.model.astype(str), strict=True))
    rows = []
    for ds, model in sorted(all_pairs.itertuples(index=False, name=None)):
        cases = expected[expected.dataset == ds].case.tolist()
        s, miss, fail = [], [], []
        for c in cases:
            k = (ds, c, model)
            if k in scored:
                s.append(c)
            elif k in err_failed and k not in missing_files:
                fail.append(c)
            else:  # no file, an error saying so, or nothing at all: never delivered
                miss.append(c)
        rows.append({"dataset": ds, "model": model, "n_expected": len(cases), "n_scored": len(s),
                     "n_missing": len(miss), "n_failed": len(fail), "complete": len(s) == len(cases),
                     "missing_cases": ", ".join(miss), "failed_cases": ", ".join(fail)})
    cols = ["dataset", "model", "n_expected", "n_scored", "n_missing", "n_failed", "complete", "missing_cases",
            "failed_cases"]
    return pd.DataFrame(rows, columns=cols)


def failure_list(errors: pd.DataFrame | None) -> pd.DataFrame:
    """The ``evaluate`` errors per model with file and reason (dataset, model, case, path, message)."""
    cols = ["dataset", "model", "case", "path", "message"]
    if errors is None or errors.empty:
        return pd.DataFrame(columns=cols)
    e = errors[(errors.step == "evaluate") & (errors.severity == "error")]
    return e[cols].sort_values(["dataset", "model", "case"]).reset_index(drop=True)


def _empty_prediction_value(metric: str, gt_empty: bool, both_empty_value: float, penalty: float) -> float:
    """The value an empty prediction gets for one metric (see the module docstring); NaN when unknown."""
    m = metric.lower()
    if gt_empty:  # nothing to find and nothing predicted: the both-empty values of the policy
        if m in _ZERO_WHEN_PRED_EMPTY or m in ("precision", "lesion_precision") or m.startswith("nsd"):
            return both_empty_value
        if not higher_is_better(m) and m.startswith(("hd", "assd", "masd", "lesion_hd")):
            return 0.0
        return np.nan
    if m in _ZERO_WHEN_PRED_EMPTY or m.startswith("nsd"):
        return 0.0
    if m in _NAN_WHEN_PRED_EMPTY:
        return np.nan
    if m.startswith(("hd", "assd", "masd", "lesion_hd")):
        return penalty
    return np.nan


def fill_missing(metrics: pd.DataFrame, models: list[str], policy: str = "worst",
                 expected: pd.DataFrame | None = None, both_empty_value: float = 1.0,
                 penalty: dict[str, float] | float | None = None) -> MissingFilled:
    """Apply the missing-prediction policy to the rows of ``models`` (see the module docstring).

    Parameters
    ----------
    metrics:
        Long metric rows (several metrics and regions allowed; flags ``gt_empty``/``pred_empty`` are used to
        know whether a case's region has an empty ground truth).
    models:
        The models being compared or ranked.
    policy:
        ``"worst"`` or ``"exclude"``.
    expected:
        (dataset, case) pairs each model should have; default: every case any of ``models`` has.
    both_empty_value:
        The project's :class:`~segaudit.metrics.policy.EmptyPolicy` value of similarity metrics when both
        masks are empty (1.0 by default).
    penalty:
        Penalty distance for distances to an empty prediction, per dataset or one number; default: the
        largest value of that distance metric stored for the dataset (the penalty itself whenever any model
        left a structure empty).

    Returns
    -------
    MissingFilled
    """
    if policy not in MISSING_POLICIES:
        raise ValueError(f"missing-prediction policy must be one of {MISSING_POLICIES}, not {policy!r}")
    m = metrics[metrics.model.isin(models)]
    flags = metrics[metrics.metric == "gt_empty"].groupby(["dataset", "case", "region"]).value.max()
    values = m[~m.metric.isin(["gt_empty", "pred_empty"])]
    if expected is None:
        expected = values[["dataset", "case"]].drop_duplicates()
    # Only the datasets these models were scored on: another dataset's cases are not theirs to lack.
    expected = expected[expected.dataset.isin(set(values.dataset))].astype(str).drop_duplicates()
    have = values[["dataset", "case", "model"]].drop_duplicates()
    grid = expected.merge(pd.DataFrame({"model": models}), how="cross")
    lacking = grid.merge(have, how="left", indicator=True)
    lacking = lacking[lacking["_merge"] == "left_only"].drop(columns="_merge")
    counts = lacking.groupby(KEY).size().reindex(
        pd.MultiIndex.from_product([sorted(expected.dataset.unique()), models], names=KEY), fill_value=0)
    imputed = counts.rename("n").reset_index()
    if policy == "exclude":
        complete = grid.merge(have, how="inner").groupby(["dataset", "case"]).model.nunique()
        keep = complete[complete == len(models)].reset_index()[["dataset", "case"]]
        out = m.merge(keep, on=["dataset", "case"], how="inner")
        dropped = expected.merge(keep, how="left", indicator=True)
        dropped = dropped[dropped["_merge"] == "left_only"]
        n_drop = dropped.groupby("dataset").size()
        imputed["n"] = imputed.dataset.map(n_drop).fillna(0).astype(int)
        return MissingFilled(out.reset_index(drop=True), policy, imputed)
    if lacking.empty:
        return MissingFilled(m.reset_index(drop=True), policy, imputed)
    combos = values[["dataset", "region", "metric"]].drop_duplicates()
    new = lacking.merge(combos, on="dataset", how="inner")
    if new.empty:
        return MissingFilled(m.reset_index(drop=True), policy, imputed)
    if penalty is None:
        pen = values.groupby(["dataset", "metric"]).value.max()
        pen_of = {k: float(v) for k, v in pen.items()}
    else:
        pen_of = None
    vals = []
    for r in new.itertuples(index=False):
        gt_empty = bool(flags.get((r.dataset, r.case, r.region), 0.0) == 1.0)
        if pen_of is not None:
            p = pen_of.get((r.dataset, r.metric), np.nan)
        elif isinstance(penalty, dict):
            p = float(penalty.get(r.dataset, np.nan))
        else:
            assert penalty is not None  # None means pen_of above
            p = float(penalty)
        vals.append(_empty_prediction_value(r.metric, gt_empty, both_empty_value, p))
    new = new.assign(value=vals)
    flag_rows = new[["dataset", "case", "model", "region"]].drop_duplicates()
    gt_flags = [float(flags.get((d, c, rg), 0.0)) for d, c, rg in
                zip(flag_rows.dataset, flag_rows.case, flag_rows.region, strict=True)]
    extra_flags = pd.concat([flag_rows.assign(metric="gt_empty", value=gt_flags),
                             flag_rows.assign(metric="pred_empty", value=1.0)], ignore_index=True)
    out = pd.concat([m, new[m.columns.intersection(new.columns)],
                     extra_flags[m.columns.intersection(extra_flags.columns)]], ignore_index=True)
    return MissingFilled(out, policy, imputed)
