"""``segaudit instruct export`` on the bundled demo project: records written, options checked at parse time."""

import json

import pytest

from segaudit.cli import main


def test_instruct_export_writes_records_and_summary(tmp_path, demo_data, capsys):
    out = tmp_path / "instruct"
    assert main(["instruct", "export", str(demo_data / "segaudit.yaml"), "--out", str(out), "--no-model",
                 "--format", "jsonl", "--format", "llava", "--per-image", "2", "--seed", "3"]) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert len(records) == summary["records"] > 0
    assert {r["task"] for r in records} >= {"segment", "refuse"}
    printed = capsys.readouterr().out
    assert f"{len(records)} record(s)" in printed
    assert "normalised" in printed or "text" in printed  # the dedup rule without the model is named


@pytest.mark.parametrize("bad", [["--negatives", "1.5"], ["--per-image", "0"], ["--format", "coco"],
                                 ["--images", "tiff"], ["--quota", "task"]])
def test_instruct_options_are_checked_before_anything_runs(tmp_path, demo_data, bad):
    with pytest.raises(SystemExit) as exc:
        main(["instruct", "export", str(demo_data / "segaudit.yaml"), "--out", str(tmp_path / "o"), *bad])
    assert exc.value.code == 2
    assert not (tmp_path / "o").exists()
