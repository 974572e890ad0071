"""A finished run directory reads back once: settings, schema, data, best epoch and model."""

import os

import pytest

from conftest import run_main
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.families.resnets import ResNetConfig
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB
from vb_keras.training import runs, trainer


def test_a_trained_run_round_trips_its_directory(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    params = TrainingParams(tasks=("emotion", "age"), epochs=1,
                            family=ResNetConfig(clip_seconds=0.5))
    result = trainer.train(tiny_demo, model_dir, table, schema, params,
                           settings={"moved_val_speakers": 7, "split_seed": 3})
    run = runs.TrainedRun.finished(model_dir)
    # The settings as trained: the ResNets' default batch resolved and recorded.
    assert run.params == trainer.resolved_params(params) and run.params.batch_size == 64
    assert run.schema == schema and run.tasks == ("emotion", "age")
    assert run.name == "resnet18 (emotion+age)"
    assert run.data_dir == os.path.abspath(tiny_demo)
    # As bin/train records them; a setting not recorded takes its default.
    assert run.split_settings == {"split_scheme": "official", "moved_val_speakers": 7,
                                  "split_seed": 3}
    assert run.best_epoch == 1
    assert run.model.count_params() == result.model.count_params()
    assert run.model is run.model   # loaded once
    assert sorted(run.model.output_names) == ["age", "emotion"]


def test_a_run_without_split_settings_reads_the_defaults(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    trainer._write_config(model_dir, TrainingParams(batch_size=8), schema, tiny_demo, table)
    run = runs.TrainedRun(model_dir)   # started, not finished: its config.json only
    assert run.split_settings == exvo.SPLIT_DEFAULTS and run.best_epoch is None
    with pytest.raises(UserInputError, match=r"^--model_dir: .* holds no trained model "
                                             r"\(model.keras missing\)$"):
        runs.TrainedRun.finished(model_dir)
    with pytest.raises(UserInputError, match="holds no trained model"):
        run.model


if __name__ == "__main__":
    run_main()
