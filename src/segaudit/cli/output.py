"""Console output of the CLI: the one console, tables of summaries, QC findings and step errors."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

# A wide console when piped (CI logs, files) so tables keep whole paths and names.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


_COUNT_COLUMNS = {"cases", "subjects", "files", "missing", "errors", "warnings", "info", "rows", "nan", "gt_empty",
                  "pred_empty", "both_empty"}


def _is_count(col: str) -> bool:
    """Columns that hold counts (printed as integers even when the store sums them as floats)."""
    col = str(col)
    return col in _COUNT_COLUMNS or col == "n" or col.startswith("n_") or col.endswith(("_undefined", "_count"))


def _cell(value, count: bool) -> str:
    if count and isinstance(value, float) and value == value and float(value).is_integer():
        return str(int(value))
    return str(value)


def _print_summary(summary, title: str) -> None:
    table = Table(title=title, title_justify="left")
    counts = [_is_count(c) for c in summary.columns]
    for col in summary.columns:
        table.add_column(str(col), justify="right" if summary[col].dtype.kind in "iuf" else "left")
    for _, row in summary.iterrows():
        table.add_row(*[_cell(v, c) for v, c in zip(row.tolist(), counts, strict=True)])
    console.print(table)


def _print_findings(qc, limit: int, show_info: bool = False) -> None:
    if qc.empty:
        console.print("QC: no findings.")
        return
    order = {"error": 0, "warning": 1, "info": 2}
    shown = qc if show_info else qc[qc.severity != "info"]
    shown = shown.sort_values(by="severity", key=lambda s: s.map(order), kind="stable")
    if shown.empty:
        console.print(f"QC: {len(qc)} informational finding(s), no error or warning (--show-all lists them).")
        return
    what = "all severities" if show_info else "errors and warnings"
    console.print(f"QC findings ({what}; {len(shown)} in all):")
    colour = {"error": "red", "warning": "yellow", "info": "cyan"}
    for _, f in shown.head(limit).iterrows():
        console.print(f"  [{colour[f.severity]}]{f.severity:7}[/] {f.dataset}/{f.case} {f.check}: {f.message}",
                      soft_wrap=True)
    if len(shown) > limit:
        console.print(f"  ... {len(shown) - limit} more (see the qc table, or --show-all)")


def _print_step_errors(errors, with_model: bool) -> None:
    from rich.markup import escape

    for _, e in errors.iterrows():
        colour = "red" if e.severity == "error" else "yellow"
        model = f" {e.model}" if with_model and e.model else ""
        # Names and messages are data: a model named 'dropout[t2+flair]' must not be read as markup.
        console.print(f"  [{colour}]{e.severity:7}[/] " + escape(f"{e.dataset}/{e.case}{model}: {e.message}"),
                      soft_wrap=True)
