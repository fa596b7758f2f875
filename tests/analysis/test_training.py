"""Training logs in the layouts people have on disk (Keras, Lightning, plain prefixes), and clear errors.

No real training log ships with the public sample data, so these are small CSV files written the way Keras'
``CSVLogger`` and Lightning's ``CSVLogger`` write them.
"""

import re

import numpy as np
import pandas as pd
import pytest

from segaudit.analysis.training import read_training_log, training_summary
from segaudit.errors import SegauditError


def _write(path, text):
    path.write_text(text)
    return path


def test_keras_layout(tmp_path):
    log = _write(tmp_path / "unet.csv", "epoch,dice,loss,val_dice,val_loss\n0,0.31,0.90,0.28,0.95\n"
                 "1,0.52,0.61,0.47,0.70\n2,0.70,0.40,0.58,0.62\n3,0.81,0.25,0.55,0.66\n")
    t = read_training_log(log)
    assert set(t.model) == {"unet"}
    assert set(t.split) == {"train", "val"}
    assert set(t.name) == {"dice", "loss"}
    assert len(t) == 16
    s = training_summary(t).set_index("name")
    raw = pd.read_csv(log)
    # Best validation Dice is the maximum, best validation loss the minimum.
    assert s.loc["dice", "best_epoch"] == raw.epoch[raw.val_dice.idxmax()] == 2
    assert s.loc["loss", "best_epoch"] == raw.epoch[raw.val_loss.idxmin()] == 2
    assert s.loc["dice", "gap_last"] == pytest.approx(0.55 - 0.81)
    assert s.loc["loss", "epochs"] == 4


def test_lightning_layout_averages_rows_of_an_epoch(tmp_path):
    # Lightning writes training steps and the validation epoch on separate rows, the rest left empty.
    log = _write(tmp_path / "metrics.csv", "epoch,step,train_loss,val_loss,val_dice\n"
                 "0,10,1.0,,\n0,20,0.8,,\n0,20,,0.85,0.40\n1,30,0.6,,\n1,40,0.4,,\n1,40,,0.55,0.61\n")
    t = read_training_log(log, model="segresnet")
    tr = t[(t.split == "train") & (t.name == "loss")].set_index("epoch").value
    np.testing.assert_allclose(tr.to_numpy(), [0.9, 0.5])
    assert t[(t.split == "val") & (t.name == "dice")].value.tolist() == [0.40, 0.61]
    s = training_summary(t).set_index("name")
    assert np.isnan(s.loc["dice", "last_train"])
    assert s.loc["dice", "best_val"] == 0.61
    assert "step" not in set(t.name)


def test_suffix_and_validation_prefix(tmp_path):
    log = _write(tmp_path / "log.tsv",
                 "Epoch\tloss/train\tloss/val\tvalidation_iou\n1\t0.5\t0.6\t0.3\n2\t0.4\t0.5\t0.4\n")
    t = read_training_log(log)
    assert set(zip(t.split, t.name, strict=True)) == {("train", "loss"), ("val", "loss"), ("val", "iou")}
    assert t.epoch.tolist()[:2] == [1, 2]


@pytest.mark.parametrize(("text", "reason"), [
    ("step,train_loss\n1,0.5\n", "no 'epoch' column"),
    ("epoch,lr\n1,0.01\n", "no train_*/val_* columns"),
    ("epoch,train_loss\n1,abc\n", "no numeric"),
])
def test_bad_logs_name_the_file_and_reason(tmp_path, text, reason):
    log = _write(tmp_path / "bad.csv", text)
    with pytest.raises(SegauditError, match=re.escape(reason)) as err:
        read_training_log(log)
    assert str(log) in str(err.value)


def test_missing_log(tmp_path):
    with pytest.raises(SegauditError, match="not found"):
        read_training_log(tmp_path / "nope.csv")
