"""One trial of the permutation test (training)."""

import numpy as np
import pytest

from conftest import run_main
from permutation_fixtures import permutation_data
from vb_keras.analysis.permutation import training


def test_a_trial_trains_on_altered_labels_and_scores_val_on_the_true_ones():
    data = permutation_data()
    val_classes, train_classes = data.val.classes.copy(), data.train.classes.copy()
    record = training.train_and_score(data, "incorrect", seed=3, epochs=1, batch_size=16)
    assert set(record) == {"condition", "seed", "val_mean_ccc", "share_class_correct",
                           "share_age_correct", "seconds"}
    assert record["condition"] == "incorrect" and record["seed"] == 3
    assert np.isfinite(record["val_mean_ccc"]) and -1 <= record["val_mean_ccc"] <= 1
    assert record["share_class_correct"] == 0 and record["share_age_correct"] == 0
    # The altered labels are the trial's own: the data's arrays are left as they were.
    np.testing.assert_array_equal(data.val.classes, val_classes)
    np.testing.assert_array_equal(data.train.classes, train_classes)
    assert training.ADAM_EPSILON == pytest.approx(1e-8)


if __name__ == "__main__":
    run_main()
