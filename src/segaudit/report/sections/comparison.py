"""Section 'Pairwise comparison': paired tests of two models' Dice per dataset, with the test explained in words."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from segaudit.analysis.compare import compare_models, mean_over_regions
from segaudit.analysis.summary import subject_of
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Pairwise comparison"


def comparison_words(r, models: tuple[str, str]) -> str:
    """One ``<li>`` that says in words what one region's comparison row ``r`` found, or why there is no test.

    The test, why it was chosen, p and Holm p, effect sizes, pass/fail flips.
    """
    base, cand = models
    if not np.isfinite(r.p):
        return (f"<li><b>{html.escape(r.region)}</b>: mean Dice {html.escape(cand)} {r.mean_candidate:.3f} vs "
                f"{html.escape(base)} {r.mean_baseline:.3f} (difference {r.mean_diff:+.3f}, n = {r.n}); no test: "
                f"{html.escape(r.reason)}.</li>")
    verdict = ("a significant difference" if r.p_holm < 0.05 else "no significant difference") \
        + " at the 0.05 level after Holm's correction across regions"
    ci = f"95 % CI {r.ci_low:+.3f} to {r.ci_high:+.3f}" if np.isfinite(r.ci_low) else f"CI: {r.ci_note}"
    unit = ", subjects: each subject's cases averaged first" if r.unit == "subjects" else ""
    return (f"<li><b>{html.escape(r.region)}</b>: mean Dice {html.escape(cand)} {r.mean_candidate:.3f} vs "
            f"{html.escape(base)} {r.mean_baseline:.3f} (difference {r.mean_diff:+.3f}, {html.escape(ci)}, "
            f"n = {r.n}{unit}). We used the {html.escape(r.test)} because "
            f"{html.escape(r.reason)}; p = {r.p:.3g}, Holm p = {r.p_holm:.3g}: {verdict}. Cohen's d_z = "
            f"{r.cohens_dz:.2f}, rank-biserial = {r.rank_biserial:.2f}; {r.n_flip_to_correct} case(s) went from "
            f"fail to pass at Dice {r.pass_threshold:g} and {r.n_flip_to_incorrect} from pass to fail "
            f"(exact McNemar p = {r.mcnemar_p:.3g}).</li>")


#: Up to this many models, the report compares every pair; beyond, the top-ranked against each other.
ALL_PAIRS_MAX_MODELS = 4


def default_pairs(d: pd.DataFrame) -> list[tuple[str, str]]:
    """The (baseline, candidate) pairs the report compares in one dataset's Dice rows when the user names none.

    Up to :data:`ALL_PAIRS_MAX_MODELS` models: every pair (sorted by name). Beyond: the top-ranked model (the
    highest mean over cases of the per-case mean over regions) as baseline against each other model.
    """
    models = sorted(d.model.unique())
    if len(models) <= ALL_PAIRS_MAX_MODELS:
        return [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    per_case = mean_over_regions(d)
    top = per_case.groupby("model").value.mean().sort_values(ascending=False, kind="stable").index[0]
    return [(top, m) for m in models if m != top]


def comparisons_html(m: pd.DataFrame, metrics: pd.DataFrame, pairs: list[tuple[str, str]] | None = None,
                     expected: pd.DataFrame | None = None, cases: pd.DataFrame | None = None) -> str:
    """Per dataset, each (baseline, candidate) pair's paired Dice comparison.

    A table, one sentence per region, and the warnings of the test.

    ``pairs``: the pairs asked for (default :func:`default_pairs` per dataset); a case a model lacks is scored as
    an empty prediction (policy 'worst', over ``expected``); ``cases`` gives the subjects resampled together. A
    pair that cannot be compared says why.
    """
    parts, why = [], []
    dice = m[m.metric == "dice"]
    for ds in sorted(dice.dataset.unique()):
        d = dice[dice.dataset == ds]
        have = set(d.model)
        if pairs:
            todo = [pr for pr in pairs if set(pr) <= have]
            if not todo:
                why.append(f"{ds}: none of the requested pairs ({', '.join(f'{a}:{b}' for a, b in pairs)}) has "
                           f"both models here (models: {', '.join(sorted(have))})")
                continue
        else:
            todo = default_pairs(d)
            if not todo:
                why.append(f"{ds}: one model only ({', '.join(sorted(have))}); a comparison needs two scored on "
                           "the same cases")
                continue
        if not pairs and len(have) > ALL_PAIRS_MAX_MODELS:
            parts.append(note_html(f"{ds}: {len(have)} models, so the top-ranked ({todo[0][0]}, highest mean Dice over "
                                   "regions) against each other; name other pairs with --compare A:B."))
        for base, cand in todo:
            res = compare_models(metrics, base, cand, "dice", dataset=ds, missing="worst", expected=expected,
                                 subjects=subject_of(cases))
            parts.append(f"<h3>{html.escape(ds)}: {html.escape(cand)} vs {html.escape(base)}</h3>")
            first = res.iloc[0]
            parts.append(note_html(f"Missing-prediction policy 'worst': a case a model lacks is scored as an empty "
                                   f"prediction (cases scored so: {base} {int(first.n_imputed_baseline)}, {cand} "
                                   f"{int(first.n_imputed_candidate)}). Cases where both models are both-empty are "
                                   "set apart (n_both_empty)."))
            parts.append(table_html(res[["region", "n", "unit", "n_both_empty", "mean_baseline", "mean_candidate",
                                     "mean_diff", "ci_low", "ci_high", "test", "p", "p_holm", "cohens_dz",
                                     "rank_biserial", "n_flip_to_correct", "n_flip_to_incorrect", "mcnemar_p",
                                     "sign_p"]], 4))
            words = "".join(comparison_words(r, (base, cand)) for r in res.itertuples())
            parts.append(f"<ul class='note'>{words}</ul>")
            parts += [f"<p class='warn'>{html.escape(f'{r.region}: {r.note}')}</p>" for r in res.itertuples()
                      if r.note]
    if pairs:
        known = set(dice.model)
        for a, b in pairs:
            if not {a, b} <= known:
                why.append(f"--compare {a}:{b}: no Dice for {', '.join(x for x in (a, b) if x not in known)} in this "
                           f"store (models: {', '.join(sorted(known))})")
    return "".join(parts) + "".join(why_html(w) for w in why) if parts or why else \
        why_html("no Dice in this store, so no model can be compared")


def render(inputs: ReportInputs) -> str:
    """The section's HTML: each compared pair's table and sentences, or why a pair cannot be compared."""
    return comparisons_html(inputs.m, inputs.metrics, inputs.compare, inputs.expected, inputs.cases)
