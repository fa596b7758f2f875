"""Section 'Instruction front door (ask-eval)': the stored ``segaudit ask-eval`` table against its targets.

Drawn only when the store holds rows of dataset ``ask-eval`` (:func:`segaudit.pipeline.ask.ask_eval` writes them:
case = modality or ``all``, one metric per row). Below the table, the pairs of the run's ``ask_eval_pairs.jsonl``
(beside the store) that were not handled as expected: a valid or absent-target pair not answered, an invalid one
answered. All text from the data is escaped.
"""

from __future__ import annotations

import json

import pandas as pd

from segaudit.pipeline.ask import EVAL_DATASET
from segaudit.report.inputs import ReportInputs
from segaudit.report.markup import note_html, table_html, why_html

#: The section's heading (``<h2>``) in the report.
TITLE = "Instruction front door (ask-eval)"

#: metric -> (comparison, target) of issue 18's "Targets".
TARGETS: dict[str, tuple[str, float]] = {
    "refusal_rate_invalid": (">=", 0.95), "false_refusal_rate_valid": ("<=", 0.05),
    "understand_ms_mean": ("<=", 20.0), "request_s_mean": ("<=", 2.0),
}
#: Longest reason quoted in the table of unexpected answers (characters).
REASON_CHARS = 200
#: Most unexpected pairs listed.
MAX_PAIRS = 25


def has_rows(inputs: ReportInputs) -> bool:
    """Whether the store holds ``ask-eval`` rows (the section is then part of the report)."""
    return not inputs.metrics.empty and bool((inputs.metrics["dataset"] == EVAL_DATASET).any())


def eval_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metric x modality (``all`` first) of the stored ``ask-eval`` rows, with the target and whether it is met."""
    rows = metrics[metrics["dataset"] == EVAL_DATASET]
    if rows.empty:
        return pd.DataFrame()
    wide = rows.pivot_table(index="metric", columns="case", values="value", aggfunc="first", sort=False)
    cols = ["all", *sorted(c for c in wide.columns if c != "all")] if "all" in wide.columns else sorted(wide.columns)
    wide = wide[cols].reset_index()
    wide.columns.name = None  # no "case" header row above the metric column
    target, met = [], []
    for metric, value in zip(wide["metric"], wide[cols[0]], strict=True):
        op, goal = TARGETS.get(metric, ("", float("nan")))
        target.append(f"{op} {goal:g}" if op else "")
        met.append("" if not op or pd.isna(value) else ("yes" if (value >= goal if op == ">=" else value <= goal)
                                                       else "no"))
    wide.insert(1, "target", target)
    wide.insert(2, "met", met)
    return wide


def unexpected_pairs(lines: list[str]) -> pd.DataFrame:
    """The pairs (JSON lines of ``ask_eval_pairs.jsonl``) whose verdict is not the expected one; bad lines skipped."""
    out = []
    for line in lines:
        try:
            p = json.loads(line)
        except ValueError:
            continue
        if not isinstance(p, dict):
            continue
        ans = p.get("answer") or {}
        verdict = str(ans.get("verdict", ""))
        ok = verdict == "answered" if p.get("kind") in ("valid", "absent") else verdict in ("refused", "clarify")
        if p.get("kind") == "absent" and ok and (ans.get("count") or 0) != 0:
            ok = False
        if not ok:
            reason = str(ans.get("reason", ""))
            out.append({"kind": str(p.get("kind", "")), "image": f"{p.get('dataset', '')}/{p.get('case', '')}",
                        "instruction": str(p.get("instruction", "")), "verdict": verdict,
                        "count": ans.get("count"),
                        "reason": reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS - 1] + "…"})
    return pd.DataFrame(out)


def render(inputs: ReportInputs) -> str:
    """The section's HTML: the evaluation table with its targets, then the pairs not handled as expected."""
    table = eval_table(inputs.metrics)
    if table.empty:
        return why_html("no ask-eval rows in this store (run segaudit ask-eval PROJECT.yaml --out RUN)")
    parts = [note_html("segaudit ask-eval: held-out images of the project with valid, absent-target, "
                       "wrong-modality, off-task and unknown-target requests; columns are the image modalities"),
             table_html(table)]
    path = inputs.run_dir / "ask_eval_pairs.jsonl"
    if path.is_file():
        bad = unexpected_pairs(path.read_text(encoding="utf-8", errors="replace").splitlines())
        if bad.empty:
            parts.append(note_html("every pair of the run was handled as expected"))
        else:
            parts.append(note_html(f"{len(bad)} pair(s) not handled as expected"
                                   + (f" (first {MAX_PAIRS} shown)" if len(bad) > MAX_PAIRS else "")))
            parts.append(table_html(bad.head(MAX_PAIRS)))
    return "".join(parts)
