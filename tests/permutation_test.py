"""The section 3.1 permutation test: altered labels, statistics, Figure 1, and the resumable run."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import directory_held_by_another_process, run_main
from vb_keras.analysis import permutation
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema

EMOTIONS = ("Joy", "Fear")
SCHEMA = LabelSchema(emotion_columns=EMOTIONS, class_column="Country", age_column="Age")
DIM = 8


def synthetic_data(num_train=40, num_val=16, seed=0):
    """A table and window embeddings (1-3 windows of DIM) where emotions follow the embeddings."""
    rng = np.random.default_rng(seed)
    rows, sequences = [], {}
    for index in range(num_train + num_val):
        file_id = f"clip{index:03d}"
        sequence = rng.normal(size=(int(rng.integers(1, 4)), DIM)).astype(np.float32)
        sequences[file_id] = sequence
        joy = 1 / (1 + np.exp(-sequence.mean(axis=0)[0] * 3))
        rows.append({"File_ID": file_id, "Split": "Train" if index < num_train else "Val",
                     "Subject_ID": f"s{index % 7}", "Joy": joy, "Fear": 1 - joy,
                     "Country": str(index % 3), "Age": float(20 + index % 9),
                     exvo.LABELLED: True})
    table = pd.DataFrame(rows)
    return table, SCHEMA.with_classes(["0", "1", "2"]), sequences


@pytest.fixture(scope="module")
def data():
    table, schema, sequences = synthetic_data()
    return permutation.data_from_sequences(table, schema, sequences)


# ---------------------------------------------------------------- labels


def test_data_pads_once_and_standardises_age_on_train(data):
    assert data.train.embeddings.shape == (40, 3, DIM) and data.val.embeddings.shape[0] == 16
    assert data.extra_dim == 4
    extra = data.extra(data.train.classes, data.train.ages)
    assert extra.shape == (40, 4) and extra.dtype == np.float32
    np.testing.assert_array_equal(extra[:, :3].argmax(axis=1), data.train.classes)
    assert extra[:, 3].mean() == pytest.approx(0, abs=1e-5)
    assert extra[:, 3].std() == pytest.approx(1, abs=1e-4)


def test_shuffled_labels_keep_the_distributions_with_separate_seeds():
    classes = np.arange(200) % 4
    ages = (20 + np.arange(200) % 11).astype(np.float32)
    new_classes, new_ages, share_class, share_age = permutation.shuffled_labels(classes, ages, 5)
    np.testing.assert_array_equal(np.sort(new_classes), np.sort(classes))
    np.testing.assert_array_equal(np.sort(new_ages), np.sort(ages))
    assert share_class == pytest.approx(np.mean(new_classes == classes))
    assert share_age == pytest.approx(np.mean(new_ages == ages))
    assert 0.1 < share_class < 0.4 and 0.02 < share_age < 0.2   # about 1/4 and 1/11
    # The same permutation would move unique values identically: the two seeds differ.
    unique = np.arange(200)
    moved_classes, moved_ages, _, _ = permutation.shuffled_labels(unique, unique, 5)
    assert not np.array_equal(moved_classes, moved_ages)
    again = permutation.shuffled_labels(classes, ages, 5)
    np.testing.assert_array_equal(again[0], new_classes)
    assert not np.array_equal(permutation.shuffled_labels(classes, ages, 6)[0], new_classes)


def test_incorrect_labels_are_always_wrong_and_integer_years_within_the_range():
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 4, 500)
    ages = rng.choice([21.0, 25.0, 26.4, 30.0, 34.0], 500).astype(np.float32)
    new_classes, new_ages = permutation.incorrect_labels(classes, ages, 4, seed=3)
    assert np.all(new_classes != classes) and set(new_classes) <= {0, 1, 2, 3}
    assert np.all(new_ages != ages) and np.all(new_ages != np.rint(ages))
    assert np.all(new_ages == np.round(new_ages))
    assert new_ages.min() >= 21 and new_ages.max() <= 34
    # Uniform over the years, not the original distribution: years nobody has appear.
    assert len(set(new_ages)) > 10
    two = permutation.incorrect_labels(np.array([0, 1, 1]), np.array([20.0, 21.0, 21.0]), 2, 0)
    np.testing.assert_array_equal(two[0], [1, 0, 0])
    np.testing.assert_array_equal(two[1], [21.0, 20.0, 20.0])


@pytest.mark.parametrize("classes, ages, num_classes, fragment", [
    ([0, 0], [20.0, 30.0], 1, "--class_column"),
    ([0, 1], [25.0, 25.2], 2, "--age_column"),
])
def test_incorrect_labels_need_two_classes_and_two_ages(classes, ages, num_classes, fragment):
    with pytest.raises(UserInputError, match=fragment):
        permutation.incorrect_labels(np.array(classes), np.array(ages), num_classes, 0)


def test_trial_seeds_differ_per_condition_and_trial_and_are_reproducible():
    seeds = {(c, k): permutation.trial_seed(7, c, k) for c in permutation.CONDITIONS
             for k in range(20)}
    assert len(set(seeds.values())) == len(seeds)
    assert permutation.trial_seed(7, "shuffled", 3) == seeds["shuffled", 3]
    assert permutation.trial_seed(8, "shuffled", 3) != seeds["shuffled", 3]


# ---------------------------------------------------------------- statistics and Figure 1


def synthetic_trials(seed=0):
    rng = np.random.default_rng(seed)
    means = {"true": 0.60, "shuffled": 0.60, "incorrect": 0.58}
    return [{"condition": c, "trial": k, "val_mean_ccc": float(rng.normal(means[c], 0.01)),
             "share_class_correct": 0.25 if c == "shuffled" else 1.0,
             "share_age_correct": 0.05 if c == "shuffled" else 1.0}
            for c in permutation.CONDITIONS for k in range(50)]


def test_summary_has_ddof1_stds_welch_t_tests_and_shares():
    trials = synthetic_trials()
    summary = permutation.summarize(trials)
    scores = {c: np.array([t["val_mean_ccc"] for t in trials if t["condition"] == c])
              for c in permutation.CONDITIONS}
    for condition, values in scores.items():
        row = summary["conditions"][condition]
        assert row["n"] == 50 and row["mean"] == pytest.approx(values.mean())
        assert row["std"] == pytest.approx(values.std(ddof=1))
    assert set(summary["t_tests"]) == {"true_vs_shuffled", "true_vs_incorrect",
                                       "shuffled_vs_incorrect"}
    welch = stats.ttest_ind(scores["true"], scores["incorrect"], equal_var=False)
    test = summary["t_tests"]["true_vs_incorrect"]
    assert test["t"] == pytest.approx(welch.statistic) and test["p"] == pytest.approx(welch.pvalue)
    assert test["t"] > 5 and test["p"] < 0.01
    assert summary["t_tests"]["true_vs_shuffled"]["p"] > 0.01
    assert "equal_var=False" in summary["t_test"]
    assert summary["shuffled_share_correct"] == {"trials": 50, "class": pytest.approx(0.25),
                                                 "age": pytest.approx(0.05)}
    text = permutation.summary_text(summary)
    assert "| true distribution | 50 |" in text and "| true vs incorrect |" in text
    assert "25.0% of the training clips kept a correct class and 5.0% a correct age" in text
    json.dumps(summary, allow_nan=False)


def test_summary_of_too_few_or_constant_trials_has_no_t():
    trials = [{"condition": "true", "trial": k, "val_mean_ccc": 0.5, "share_class_correct": 1.0,
               "share_age_correct": 1.0} for k in range(3)]
    trials.append({"condition": "incorrect", "trial": 0, "val_mean_ccc": 0.4,
                   "share_class_correct": 0.0, "share_age_correct": 0.0})
    summary = permutation.summarize(trials)
    assert summary["conditions"]["true"]["std"] == 0.0
    assert summary["conditions"]["incorrect"]["std"] is None
    assert summary["conditions"]["shuffled"]["n"] == 0
    assert all(test["t"] is None for test in summary["t_tests"].values())
    assert "| true vs incorrect | — |" in permutation.summary_text(summary)
    json.dumps(summary, allow_nan=False)


def test_density_plot_is_a_png_also_for_degenerate_conditions(tmp_path):
    path = permutation.write_density_plot(synthetic_trials(), str(tmp_path / "figure.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    degenerate = [{"condition": "true", "trial": k, "val_mean_ccc": 0.5} for k in range(3)]
    degenerate.append({"condition": "incorrect", "trial": 0, "val_mean_ccc": 0.45})
    path = permutation.write_density_plot(degenerate, str(tmp_path / "sub" / "degenerate.png"))
    assert os.path.getsize(path) > 1000


# ---------------------------------------------------------------- the run


def test_run_resumes_finished_trials_and_refuses_other_settings(data, tmp_path, monkeypatch):
    output = str(tmp_path / "perm")
    settings = {"data_dir": "/synthetic"}
    first = permutation.run(output, data, trials=2, epochs=2, batch_size=16, settings=settings)
    path = os.path.join(output, permutation.RESULT_FILE)
    stored = json.load(open(path))
    assert len(stored["trials"]) == 6 and stored["settings"]["epochs"] == 2
    assert all(np.isfinite(t["val_mean_ccc"]) for t in stored["trials"])
    assert {t["share_class_correct"] for t in stored["trials"] if t["condition"] == "true"} == {1.0}
    assert all(t["share_class_correct"] == 0 and t["share_age_correct"] == 0
               for t in stored["trials"] if t["condition"] == "incorrect")
    # Val keeps the true labels: the arrays are never altered.
    table, schema, sequences = synthetic_data()
    pristine = permutation.data_from_sequences(table, schema, sequences)
    np.testing.assert_array_equal(data.val.classes, pristine.val.classes)
    np.testing.assert_array_equal(data.train.ages, pristine.train.ages)

    trained = []
    real = permutation.train_and_score

    def counting(data, condition, seed, *args):
        trained.append((condition, seed))
        return real(data, condition, seed, *args)

    monkeypatch.setattr(permutation, "train_and_score", counting)
    progress = []
    second = permutation.run(output, data, trials=3, epochs=2, batch_size=16, settings=settings,
                             on_trial=lambda record, done, total: progress.append((done, total)))
    assert sorted(trained) == sorted((c, permutation.trial_seed(0, c, 2))
                                     for c in permutation.CONDITIONS)
    assert progress == [(7, 9), (8, 9), (9, 9)]
    assert second["trials"][:2] == first["trials"][:2]
    old = {(t["condition"], t["trial"]): t for t in first["trials"]}
    for record in second["trials"]:
        if record["trial"] < 2:
            assert record == old[record["condition"], record["trial"]]
    assert all(row["n"] == 3 for row in second["summary"]["conditions"].values())

    with pytest.raises(UserInputError, match="--output_dir: .* other settings \\(epochs\\); pick"):
        permutation.run(output, data, trials=3, epochs=3, batch_size=16, settings=settings)
    with pytest.raises(UserInputError, match="data_dir"):
        permutation.run(output, data, trials=3, epochs=2, batch_size=16,
                        settings={"data_dir": "/elsewhere"})
    assert len(trained) == 3   # refused before any training


def test_run_checks_conditions(data, tmp_path):
    with pytest.raises(UserInputError, match="--conditions"):
        permutation.run(str(tmp_path), data, trials=1, conditions=["true", "random"])


def test_an_output_dir_another_process_writes_is_refused(data, tmp_path):
    with directory_held_by_another_process(tmp_path / "perm") as other:
        with pytest.raises(UserInputError, match=rf"^--output_dir: .*perm is being written by "
                                                 rf"another process \(pid {other.pid}\)"):
            permutation.run(str(tmp_path / "perm"), data, trials=1, epochs=1, batch_size=16)



def test_the_test_refuses_data_without_class_or_age_labels_in_one_line():
    permutation.check_schema(LabelSchema())
    with pytest.raises(UserInputError, match=r"^the permutation test needs emotion, class and age "
                                             r"labels .*; the data has no age labels "
                                             r"\(--age_column empty\)$"):
        permutation.check_schema(LabelSchema(age_column=""))
    with pytest.raises(UserInputError, match=r"no class or age labels \(--class_column, "
                                             r"--age_column empty\)$"):
        permutation.check_schema(LabelSchema(class_column="", age_column=""))


if __name__ == "__main__":
    run_main()
