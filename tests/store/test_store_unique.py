"""The store refuses to hold one value twice: (dataset, case, model, region, metric) is a key."""

import pandas as pd
import pytest

from segaudit.errors import SegauditError
from segaudit.store import ResultsStore
from segaudit.store.audit import read_audit_metrics


def test_duplicate_metric_rows_are_refused(tmp_path, tests_data):
    rows = read_audit_metrics(tests_data / "audit_outputs" / "metrics" / "extracted_information_UCSF.csv")
    with ResultsStore(tmp_path / "run") as store:
        store.replace("metrics", rows, {"dataset": ["UCSF"]})
        assert store.duplicates("metrics").empty
        doubled = pd.concat([rows, rows.head(3)])
        with pytest.raises(SegauditError, match="stored once"):
            store.replace("metrics", doubled, {"dataset": ["UCSF"]})
        # Appending rows whose key is already stored is refused too, and the store is left as it was.
        with pytest.raises(SegauditError, match="stored twice"):
            store.replace("metrics", rows.head(3))
        assert len(store.read("metrics")) == len(rows)
        keys = pd.DataFrame([(rows.dataset[0], rows.case[0], rows.model[0])], columns=["dataset", "case", "model"])
        other = rows[rows.case != rows.case[0]].head(2)
        with pytest.raises(SegauditError, match="outside the keys"):
            store.replace_keyed({"metrics": other}, keys)
        assert len(store.read("metrics")) == len(rows)
