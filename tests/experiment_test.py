import dataclasses
import logging
import os

import numpy as np
import pandas as pd
import pytest

from conftest import directory_held_by_another_process, run_main
from vb_keras.analysis import experiment
from vb_keras.training import trainer
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB, TASKS

HEAD = TrainingParams(model="conformer", epochs=1, batch_size=8)


@pytest.fixture(scope="module")
def data(tiny_demo):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    return tiny_demo, table, schema


@pytest.fixture(scope="module")
def finished_grid(data, tmp_path_factory):
    """A conformer head in both forms: 1 + 3 short runs (several seeds: bootstrap_test)."""
    data_dir, table, schema = data
    output_dir = str(tmp_path_factory.mktemp("grid"))
    rows = experiment.grid_rows(["conformer"], experiment.FORMS)
    summary = experiment.run_grid(data_dir, table, schema, output_dir, rows, lambda model: HEAD,
                                  seeds=[0], num_resamples=200)
    return output_dir, rows, summary


def test_rows_multitask_and_single_task():
    rows = experiment.grid_rows(["resnet18", "conformer_autopool"], experiment.FORMS)
    assert [row.label for row in rows] == ["resnet18 (MTL)", "resnet18 (single-task)",
                                           "conformer_autopool (MTL)",
                                           "conformer_autopool (single-task)"]
    assert rows[0].task_sets() == [TASKS] and rows[1].task_sets() == [(t,) for t in TASKS]
    with pytest.raises(UserInputError, match="--forms"):
        experiment.grid_rows(["resnet18"], ["both"])
    with pytest.raises(UserInputError, match="resnet19"):
        experiment.grid_rows(["resnet19"], ["multitask"])


def test_grid_writes_the_table_naive_row_first_with_intervals(finished_grid):
    output_dir, rows, summary = finished_grid
    labels = [row["label"] for row in summary["rows"]]
    assert labels == ["naive", "conformer (MTL)", "conformer (single-task)"]
    naive = summary["rows"][0]
    assert naive["mean_ccc"]["estimate"] == 0 and naive["hmean"]["estimate"] == 0
    for row in summary["rows"]:
        for figure in ("mean_ccc", "uar", "mae", "hmean"):
            interval = row[figure]
            assert interval["low"] <= interval["estimate"] <= interval["high"], (row, figure)
    assert summary["rows"][1]["seeds"] == 1 and summary["rows"][1]["mae"]["std"] == 0
    markdown = open(os.path.join(output_dir, "table1_Val.md")).read()
    assert markdown.splitlines()[0].startswith("| Model | MTL? | Emotions (CCC)")
    assert "| naive | — | 0.000 [0.000, 0.000] |" in markdown and " ± " not in markdown
    assert "Val: 16 clips of 2 speakers" in markdown and "With only 2 speakers" in markdown
    table = pd.read_csv(os.path.join(output_dir, "table1_Val.csv"))
    assert list(table["mtl"]) == ["—", "YES", "NO"]
    assert {"mean_ccc_estimate", "mean_ccc_low", "mean_ccc_high", "hmean_std"} <= set(table)
    for name in ("side_by_side_ccc_per_emotion_Val.png", "side_by_side_confusion_Val.png",
                 "side_by_side_age_Val.png", "side_by_side_training_curves.png"):
        assert os.path.isfile(os.path.join(output_dir, name)), name
    for tasks in [TASKS] + [(t,) for t in TASKS]:
        run = experiment.run_directory(output_dir, "conformer", tasks, 0)
        assert os.path.isfile(os.path.join(run, "model.keras"))
        assert os.path.isfile(os.path.join(run, "predictions_Val.npz"))


def test_single_task_row_takes_each_task_from_its_own_model(finished_grid, data):
    output_dir, rows, _ = finished_grid
    _, table, schema = data
    ids = np.sort(exvo.select_split(table, schema, "Val")[schema.id_column].to_numpy(str))
    combined = experiment._row_predictions(rows[1], 0, _stored_predictions(output_dir), ids)
    country_run = np.load(os.path.join(
        experiment.run_directory(output_dir, "conformer", ("country",), 0), "predictions_Val.npz"))
    order = [list(country_run["file_id"]).index(i) for i in ids]
    np.testing.assert_array_equal(combined["country"], country_run["country"][order])
    assert combined["emotion"].shape == (len(ids), schema.num_emotions)
    assert combined["age"].shape == (len(ids),)


def test_a_rerun_reuses_every_finished_run(finished_grid, data, monkeypatch):
    output_dir, rows, summary = finished_grid
    data_dir, table, schema = data

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(trainer, "train", no_training)
    again = experiment.run_grid(data_dir, table, schema, output_dir, rows, lambda model: HEAD,
                                seeds=[0], num_resamples=200)
    assert again["rows"] == summary["rows"]


def test_other_settings_in_the_same_folder_are_refused(finished_grid, data):
    output_dir, rows, _ = finished_grid
    data_dir, table, schema = data
    with pytest.raises(UserInputError, match="epochs"):
        experiment.run_grid(data_dir, table, schema, output_dir, rows,
                            lambda model: dataclasses.replace(HEAD, epochs=2), seeds=[0])
    with pytest.raises(UserInputError, match=r"other settings \(data_dir, schema\)"):
        experiment.run_grid(output_dir, table, schema.with_classes(schema.classes[::-1]),
                            output_dir, rows, lambda model: HEAD, seeds=[0])


def _stored_predictions(output_dir):
    stored = {}
    for tasks in [TASKS] + [(t,) for t in TASKS]:
        path = os.path.join(experiment.run_directory(output_dir, "conformer", tasks, 0),
                            "predictions_Val.npz")
        with np.load(path) as arrays:
            stored[("conformer", tasks, 0)] = {key: arrays[key] for key in arrays.files}
    return stored


def test_an_output_dir_another_process_writes_is_refused(data, tmp_path):
    data_dir, table, schema = data
    with directory_held_by_another_process(tmp_path / "grid") as other:
        with pytest.raises(UserInputError, match=rf"^--output_dir: .*grid is being written by "
                                                 rf"another process \(pid {other.pid}\)"):
            experiment.run_grid(data_dir, table, schema, str(tmp_path / "grid"),
                                experiment.grid_rows(["conformer"], experiment.FORMS),
                                lambda model: HEAD, seeds=[0])



def test_a_grid_on_data_without_age_labels_has_a_dash_for_age(data, tmp_path, caplog):
    data_dir, _, _ = data
    table, schema = exvo.read_and_split(data_dir, dataclasses.replace(HUME_VB, age_column=""))
    rows = experiment.grid_rows(["conformer"], experiment.FORMS)
    assert rows[1].task_sets(schema.tasks) == [("emotion",), ("country",)]
    output_dir = str(tmp_path / "grid")
    caplog.set_level(logging.INFO)
    summary = experiment.run_grid(data_dir, table, schema, output_dir, rows, lambda model: HEAD,
                                  seeds=[0], num_resamples=50)
    # Progress: each run by number, with an ETA once a run has been trained.
    runs = [message for message in caplog.messages if message.startswith("run ")]
    assert runs[0] == "run 1 of 3: " + experiment.run_directory(
        output_dir, "conformer", ("emotion", "country"), 0)
    assert runs[2].startswith("run 3 of 3: ") and runs[2].endswith(" from 2 trained)"), runs
    assert [row["mae"] for row in summary["rows"]] == [None, None, None]
    assert all(row["uar"]["low"] <= row["uar"]["estimate"] for row in summary["rows"])
    naive_line = next(line for line in summary["markdown"].splitlines() if "| naive |" in line)
    assert naive_line.endswith("| — | 0.000 [0.000, 0.000] |")
    assert os.path.isfile(os.path.join(experiment.run_directory(
        output_dir, "conformer", ("emotion", "country"), 0), "model.keras"))
    assert not os.path.exists(os.path.join(output_dir, "side_by_side_age_Val.png"))
    assert os.path.isfile(os.path.join(output_dir, "side_by_side_confusion_Val.png"))


if __name__ == "__main__":
    run_main()
