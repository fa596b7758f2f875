"""The report's ask-eval section: drawn from a store's ``ask-eval`` rows, kept out of the ground-truth sections."""

import json

import pandas as pd

from segaudit.pipeline.ask import EVAL_DATASET, MODEL_NAME
from segaudit.report.inputs import read_inputs
from segaudit.report.page import build_report, report_sections
from segaudit.report.sections import ask_eval
from segaudit.store.store import ResultsStore


def test_ask_eval_section_table_targets_and_escaped_pairs(tmp_path):
    values = {"all": {"refusal_rate_invalid": 1.0, "false_refusal_rate_valid": 0.1, "understand_ms_mean": 12.0},
              "chest X-ray": {"refusal_rate_invalid": 1.0, "false_refusal_rate_valid": 0.2, "understand_ms_mean": 9.0}}
    rows = pd.DataFrame([{"dataset": EVAL_DATASET, "case": case, "model": MODEL_NAME, "region": "all",
                          "metric": k, "value": v, "unit": ""} for case, d in values.items() for k, v in d.items()])
    with ResultsStore(tmp_path) as store:
        run = store.start_run("ask-eval")
        rows["run_id"] = run
        store.replace("metrics", rows, where={"dataset": [EVAL_DATASET]})
        store.finish_run(run, "ok")
    pairs = [{"dataset": "chest", "case": "<b>x</b>", "kind": "valid", "instruction": "outline <script>the lungs",
              "answer": {"verdict": "refused", "reason": "r" * 500}},
             {"dataset": "chest", "case": "y", "kind": "offtask", "instruction": "is it curable?",
              "answer": {"verdict": "refused", "reason": "off-task"}}]
    (tmp_path / "ask_eval_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs) + "not json\n")
    inputs = read_inputs(tmp_path)
    assert inputs.m.empty  # ask-eval scores are not ground-truth metrics
    assert ask_eval in report_sections(inputs)
    out = ask_eval.render(inputs)
    table = ask_eval.eval_table(inputs.metrics)
    assert list(table.columns[:4]) == ["metric", "target", "met", "all"]
    met = dict(zip(table["metric"], table["met"], strict=True))
    assert met == {"refusal_rate_invalid": "yes", "false_refusal_rate_valid": "no", "understand_ms_mean": "yes"}
    assert "1 pair(s) not handled as expected" in out
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out
    assert "r" * 200 not in out  # the reason is cut
    page = build_report(tmp_path, tmp_path / "report.html").read_text()
    assert "Instruction front door (ask-eval)" in page
    assert "<script>the" not in page
