"""Stratified quotas on real records: caps honoured, rare strata filled first, the summary's achieved counts
recomputable from the records written, the same seed keeping the same records."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from segaudit.instruct import export_instructions
from segaudit.instruct.sampling import apply_quotas, parse_quota, parse_quotas, record_strata

sys.path.insert(0, str(Path(__file__).parent))
from conftest_instruct import MODALITIES, small_project  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return small_project(tmp_path_factory.mktemp("quota_project"), ("chest", "mets", "consep"))


@pytest.fixture(scope="module")
def unconstrained(project, tmp_path_factory):
    return export_instructions(project, tmp_path_factory.mktemp("free"), per_image=6, seed=5, use_model=False,
                               modalities=MODALITIES)


def test_quota_words_parse_and_bad_ones_are_refused():
    assert parse_quota("task=100") == ("task", None, 100)
    assert parse_quota("dataset:chest x-ray=20") == ("dataset", "chest x-ray", 20)
    assert parse_quotas(["task=10", "task:segment=2", "size=3"]) == {"task": {"*": 10, "segment": 2}, "size": 3}
    for bad in ("task", "task=-1", "=3", "task=many"):
        with pytest.raises(ValueError):
            parse_quota(bad)


def test_task_quota_caps_every_task_and_the_summary_says_what_was_achieved(project, unconstrained, tmp_path):
    res = export_instructions(project, tmp_path / "q", per_image=6, seed=5, use_model=False, modalities=MODALITIES,
                              quotas={"task": 12, "dataset": {"consep": 15}})
    written = [json.loads(line) for line in (tmp_path / "q" / "records.jsonl").read_text().splitlines()]
    free = Counter(r.task for r in unconstrained.records)
    got = Counter(r["task"] for r in written)
    assert all(got[t] <= 12 for t in got)
    assert sum(1 for r in written if r["provenance"]["dataset"] == "consep") <= 15
    report = res.summary["quotas"]
    for task, n in free.items():
        assert report["task"][task]["available"] == n
        assert report["task"][task]["achieved"] == got[task]
        assert report["task"][task]["quota"] == 12
    assert report["dataset"]["chest"]["quota"] is None
    assert res.summary["records_generated"] == len(unconstrained.records) > len(written) == res.summary["records"]
    ids = {r.id for r in unconstrained.records}
    assert {r["id"] for r in written} <= ids  # a subset of what generation made, same seed
    order = [r.id for r in unconstrained.records if r.id in {w["id"] for w in written}]
    assert [r["id"] for r in written] == order  # original order kept


def test_rare_strata_are_filled_first(unconstrained):
    records = unconstrained.records
    sizes = Counter(record_strata(r)["size"] for r in records)
    assert "" not in sizes  # describe records take their smallest target's bin
    rarest = min(sizes, key=lambda k: (sizes[k], k))
    kept, report = apply_quotas(records, {"size": 4, "dataset": 10}, seed=0)
    got = Counter(record_strata(r)["size"] for r in kept)
    assert got[rarest] == min(4, sizes[rarest])
    assert all(c["achieved"] <= 4 for c in report["size"].values())
    again, _ = apply_quotas(records, {"size": 4, "dataset": 10}, seed=0)
    assert [r.id for r in again] == [r.id for r in kept]
    with pytest.raises(ValueError):
        apply_quotas(records, {"task": -2})
