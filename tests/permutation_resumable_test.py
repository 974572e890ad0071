"""The permutation test's resumable run: resumption, refused settings, one writer (resumable)."""

import json
import os

import numpy as np
import pytest

from conftest import directory_held_by_another_process, run_main
from permutation_fixtures import permutation_data, synthetic_data
from vb_keras.analysis.permutation import arrays, conditions, resumable, training
from vb_keras.errors import UserInputError


@pytest.fixture(scope="module")
def data():
    return permutation_data()


def test_run_resumes_finished_trials_and_refuses_other_settings(data, tmp_path, monkeypatch):
    output = str(tmp_path / "perm")
    settings = {"data_dir": "/synthetic"}
    first = resumable.run(output, data, trials=2, epochs=2, batch_size=16, settings=settings)
    path = os.path.join(output, resumable.RESULT_FILE)
    stored = json.load(open(path))
    assert len(stored["trials"]) == 6 and stored["settings"]["epochs"] == 2
    assert all(np.isfinite(t["val_mean_ccc"]) for t in stored["trials"])
    assert {t["share_class_correct"] for t in stored["trials"] if t["condition"] == "true"} == {1.0}
    assert all(t["share_class_correct"] == 0 and t["share_age_correct"] == 0
               for t in stored["trials"] if t["condition"] == "incorrect")
    # Val keeps the true labels: the arrays are never altered.
    table, schema, sequences = synthetic_data()
    pristine = arrays.data_from_sequences(table, schema, sequences)
    np.testing.assert_array_equal(data.val.classes, pristine.val.classes)
    np.testing.assert_array_equal(data.train.ages, pristine.train.ages)

    trained = []
    real = training.train_and_score

    def counting(data, condition, seed, *args):
        trained.append((condition, seed))
        return real(data, condition, seed, *args)

    monkeypatch.setattr(training, "train_and_score", counting)
    progress = []
    second = resumable.run(output, data, trials=3, epochs=2, batch_size=16, settings=settings,
                           on_trial=lambda record, done, total: progress.append((done, total)))
    assert sorted(trained) == sorted((c, conditions.trial_seed(0, c, 2))
                                     for c in conditions.CONDITIONS)
    assert progress == [(7, 9), (8, 9), (9, 9)]
    assert second["trials"][:2] == first["trials"][:2]
    old = {(t["condition"], t["trial"]): t for t in first["trials"]}
    for record in second["trials"]:
        if record["trial"] < 2:
            assert record == old[record["condition"], record["trial"]]
    assert all(row["n"] == 3 for row in second["summary"]["conditions"].values())

    with pytest.raises(UserInputError, match="--output_dir: .* other settings \\(epochs\\); pick"):
        resumable.run(output, data, trials=3, epochs=3, batch_size=16, settings=settings)
    with pytest.raises(UserInputError, match="data_dir"):
        resumable.run(output, data, trials=3, epochs=2, batch_size=16,
                      settings={"data_dir": "/elsewhere"})
    assert len(trained) == 3   # refused before any training


def test_run_checks_conditions(data, tmp_path):
    with pytest.raises(UserInputError, match="--conditions"):
        resumable.run(str(tmp_path), data, trials=1, conditions=["true", "random"])


def test_an_output_dir_another_process_writes_is_refused(data, tmp_path):
    with directory_held_by_another_process(tmp_path / "perm") as other:
        with pytest.raises(UserInputError, match=rf"^--output_dir: .*perm is being written by "
                                                 rf"another process \(pid {other.pid}\)"):
            resumable.run(str(tmp_path / "perm"), data, trials=1, epochs=1, batch_size=16)


if __name__ == "__main__":
    run_main()
