"""vb_keras.utils.run_directory: the one place a run directory's files are named."""

import json
import os

import pytest

from conftest import run_main
from vb_keras.errors import UserInputError
from vb_keras.utils import run_directory
from vb_keras.utils.run_directory import RunDirectory


def test_names_the_files_a_run_writes(tmp_path):
    directory = RunDirectory(str(tmp_path / "run"))
    assert directory.model_file == str(tmp_path / "run" / "model.keras")
    assert directory.config_file.endswith("/run/config.json")
    assert directory.history_file.endswith("/run/history.csv")
    assert directory.best_weights_file.endswith("/run/best.weights.h5")
    assert directory.eval_file("Test").endswith("/run/eval_Test.json")
    assert directory.backup_dir.endswith("/run/backup")
    assert directory.warmup == RunDirectory(str(tmp_path / "run" / run_directory.WARMUP_DIR))
    assert directory.warmup.model_file.endswith("/run/warmup/model.keras")


def test_a_run_is_finished_once_its_model_file_is_written(tmp_path):
    directory = RunDirectory(str(tmp_path))
    assert not directory.is_finished() and not directory.has_config()
    directory.write_config({"training": {"model": "resnet18"}})
    assert directory.has_config() and not directory.is_finished()
    assert directory.read_config() == {"training": {"model": "resnet18"}}
    with open(directory.config_file) as stream:
        assert json.load(stream)["training"]["model"] == "resnet18"
    open(directory.model_file, "w").close()
    assert directory.is_finished()


def test_an_unreadable_config_is_one_line_naming_it(tmp_path):
    directory = RunDirectory(str(tmp_path))
    open(directory.config_file, "w").close()   # what a crash before the flush may leave
    with pytest.raises(UserInputError, match=r"config\.json: cannot be read as the run's settings"):
        directory.read_config()


if __name__ == "__main__":
    run_main()
