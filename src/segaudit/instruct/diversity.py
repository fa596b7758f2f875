"""The diversity report of an instruction export: ``report.html`` next to the records, one self-contained page.

Sections: the headline numbers against the issue's targets (distinct-2 >= 0.5, near-duplicate rate <= 5 %,
negative share as asked), records per stratum and task, quotas (quota / available / achieved), template usage
per task (how often each phrasing was drawn, its register and form), mask-size bins per class, and one example
record per task. Every text from data (names, instructions, answers) is HTML-escaped; no script, no external
file; written through an atomic rename.

Distinct-n is computed twice: over the whole corpus (``distinct_2``: distinct word bigrams / all bigrams of every
instruction; it falls as a templated corpus grows, since the same phrasings recur across images) and per view
(``distinct_2_per_view``: the mean over views of the same ratio within one view's instructions, what a model sees
about one image).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from segaudit.instruct.formats import write_atomic
from segaudit.instruct.language import Template
from segaudit.instruct.record import Record

#: The issue's targets for the headline numbers.
TARGET_DISTINCT_2 = 0.5
TARGET_NEAR_DUPLICATE_RATE = 0.05
SIZE_COLUMNS = ("tiny", "small", "medium", "large", "empty")
#: Example answers longer than this (a count of 347 exudates lists 347 boxes) are cut, marked with an ellipsis.
EXAMPLE_CHARS = 400

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;
color:#1d2430;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;
padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}
.sub{color:#5b6576;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #dde2ea;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#5b6576;font-size:12px}
.ok{color:#17723a}.bad{color:#b42318}
table{border-collapse:collapse;margin:4px 0 12px;font-size:13px}
th,td{border:1px solid #e3e7ee;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f4f6f9}td.l,th.l{text-align:left}
.bar{display:inline-block;height:10px;background:#4a78c2;vertical-align:middle;margin-right:6px}
.ex td{text-align:left;max-width:460px}
code{font-size:12px;background:#f4f6f9;padding:0 3px}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(head: list[str], rows: Sequence[Sequence[object]], left: int = 1, cls: str = "") -> str:
    th = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _card(value: str, label: str, verdict: bool | None = None) -> str:
    mark = "" if verdict is None else (' <span class="ok">&#10003; target met</span>' if verdict
                                       else ' <span class="bad">&#10007; below target</span>')
    return f'<div class="card"><b>{value}</b><span>{_e(label)}</span>{mark}</div>'


def _bar(n: int, most: int, width: int = 160) -> str:
    w = 0 if most <= 0 else max(1, round(width * n / most)) if n else 0
    return f'<span class="bar" style="width:{w}px"></span>{n}'


def render_report(summary: dict, records: list[Record], bank: dict[str, list[Template]],
                  title: str = "Instruction data") -> str:
    """The report page (module docstring) from an export's summary, its records and the template bank."""
    s = summary
    settings = s.get("settings", {})
    d2v = s.get("distinct_2_per_view", 0.0)
    cards = "".join([
        _card(f"{s['records']:,}", f"records from {s['views']:,} views ({s.get('records_generated', s['records']):,}"
              " generated)"),
        _card(f"{s['negative_share']:.1%}", f"negative share (asked {settings.get('negatives', '?')})"),
        _card(f"{s['distinct_2']:.3f}", "distinct-2, whole corpus", s["distinct_2"] >= TARGET_DISTINCT_2),
        _card(f"{d2v:.3f}", "distinct-2 per view (mean)", d2v >= TARGET_DISTINCT_2),
        _card(f"{s['distinct_1']:.3f}", "distinct-1, whole corpus"),
        _card(f"{s['near_duplicate_rate']:.1%}", f"near-duplicate rate ({s['near_duplicate_method']}, cosine "
              f"{s['near_duplicate_cosine']})", s["near_duplicate_rate"] <= TARGET_NEAR_DUPLICATE_RATE),
    ])
    parts = [f"<h1>{_e(title)}</h1>",
             f'<p class="sub">seed {_e(settings.get("seed", "?"))}, {_e(settings.get("per_image", "?"))} records '
             f"per view, formats {_e(', '.join(settings.get('formats', [])))}; near-duplicates removed within each "
             f"view: {s['near_duplicates_removed']:,} of {s['candidates']:,} candidates. Targets: distinct-2 &ge; "
             f"{TARGET_DISTINCT_2}, near-duplicate rate &le; {TARGET_NEAR_DUPLICATE_RATE:.0%}.</p>",
             f'<div class="cards">{cards}</div>']
    tasks = list(s["tasks"])
    parts.append("<h2>Records per task</h2>" + _table(
        ["task", "records", "negatives"],
        [[_e(t), n, sum(1 for r in records if r.task == t and r.negative)] for t, n in s["tasks"].items()]))
    parts.append("<h2>Records per stratum and task</h2>")
    for key, by_value in s["per_stratum"].items():
        rows = [[_e(v or "(none)"), *[c.get(t, 0) for t in tasks], sum(c.values())] for v, c in by_value.items()]
        parts.append(f"<h3>{_e(key)}</h3>" + _table([key, *tasks, "all"], rows))
    if s.get("quotas"):
        parts.append("<h2>Quotas</h2>")
        for key, by_value in s["quotas"].items():
            rows = [[_e(v or "(none)"), "&ndash;" if c["quota"] is None else c["quota"], c["available"],
                     c["achieved"]] for v, c in by_value.items()]
            parts.append(f"<h3>{_e(key)}</h3>" + _table([key, "quota", "available", "achieved"], rows))
    parts.append("<h2>Template usage</h2>" + f'<p class="sub">templates used per task: '
                 f"{_e(', '.join(f'{t} {u}' for t, u in s['templates_used'].items()))}; register: "
                 f"{_e(', '.join(f'{k} {v}' for k, v in s['register'].items()))}</p>")
    usage = s["template_usage"]
    for task, templates in bank.items():
        if not templates:
            continue
        most = max((usage.get(t.id, 0) for t in templates), default=0)
        rows = [[f"<code>{_e(t.id)}</code>", _e(t.register), _e(t.form), _e(t.text), _bar(usage.get(t.id, 0), most)]
                for t in templates]
        parts.append(f"<h3>{_e(task)}</h3>" + _table(["template", "register", "form", "text", "records"], rows,
                                                       left=4))
    sizes = s["mask_size_bins"]
    parts.append("<h2>Mask sizes per class</h2>" + '<p class="sub">share of the view\'s pixels: tiny &lt; 0.1 %, '
                 "small &lt; 1 %, medium &lt; 10 %, large &ge; 10 %; empty: the absent-target negatives.</p>")
    parts.append(_table(["class", *SIZE_COLUMNS, "all"],
                        [[_e(name), *[c.get(b, 0) for b in SIZE_COLUMNS], sum(c.values())]
                         for name, c in sizes.items()]))
    examples = []
    for task in tasks:
        r = next((x for x in records if x.task == task), None)
        if r is not None:
            answer = r.answer if len(r.answer) <= EXAMPLE_CHARS else r.answer[:EXAMPLE_CHARS] + " \u2026"
            examples.append([_e(task), _e(r.instruction), _e(answer), f"<code>{_e(r.id)}</code>"])
    parts.append("<h2>One record per task</h2>" + _table(["task", "instruction", "answer", "record"], examples,
                                                         left=4, cls="ex"))
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + _e(title)
            + f"</title><style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n")


def write_report(path: str | Path, summary: dict, records: list[Record], bank: dict[str, list[Template]],
                 title: str = "Instruction data") -> Path:
    """Write :func:`render_report` to ``path`` atomically; returns the path."""
    return write_atomic(Path(path), render_report(summary, records, bank, title).encode("utf-8"))
