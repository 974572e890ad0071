"""Heads on a fine-tuned embedder: the head first on the frozen embedder's cache (warmup/), then
the embedder trained with it from raw audio at a smaller learning rate; exported like a ResNet."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main, tiny_embedder  # noqa: F401  (a fixture)
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.families import fine_tuned_embedder, registry
from vb_keras.families.fine_tuned_embedder import FineTunedEmbedderConfig
from vb_keras.models import optimizers, trainable_embedder
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB
from vb_keras.serving import export
from vb_keras.training import runs, trainer
from vb_keras.utils.run_directory import RunDirectory


def _params(embedder, **family):
    return TrainingParams(model="conformer_autopool", epochs=2, batch_size=8,
                          family=FineTunedEmbedderConfig(embedder=embedder, window_seconds=0.5,
                                                         min_tail_seconds=0.1, clip_seconds=1.0,
                                                         **family))


@pytest.fixture(scope="module")
def fine_tuned_run(tiny_demo, tiny_embedder, tmp_path_factory):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path_factory.mktemp("fine_tuned") / "run")
    params = _params(tiny_embedder)
    result = trainer.train(tiny_demo, model_dir, table, schema, params)
    return model_dir, result, params, schema


def test_the_head_warms_up_on_the_frozen_embedder_then_the_whole_model_trains(fine_tuned_run,
                                                                              tiny_embedder):
    model_dir, result, params, _ = fine_tuned_run
    warm = runs.TrainedRun.finished(RunDirectory(model_dir).warmup.path)
    assert warm.params.family == params.family.frozen()
    # the frozen family's defaults
    assert (warm.params.batch_size, warm.params.learning_rate, warm.params.epochs) == (
        128, 3e-4, None)
    assert set(warm.model.input) == {"embeddings", "num_windows"}
    run = runs.TrainedRun.finished(model_dir)
    assert run.params.family == params.family and run.params.batch_size == 8
    assert set(run.model.input) == {"waveform", "num_samples"}
    assert len(result.history["loss"]) == 2
    # The embedder's own weights were trained: they differ from the SavedModel's.
    original = tf.saved_model.load(tiny_embedder).trainable_variables[0].numpy()
    trained = run.model.get_layer("window_embeddings").embedder.trainable_weights[0].numpy()
    assert trained.shape == original.shape and not np.allclose(trained, original)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["training"]["family"]["type"] == "fine_tuned_embedder"
    assert "calibration" in config and "applied" in config["calibration"]


def test_the_head_starts_from_the_warm_up_runs_weights(fine_tuned_run):
    model_dir, _, params, schema = fine_tuned_run
    warm_model = runs.TrainedRun.finished(RunDirectory(model_dir).warmup.path).model
    model = registry.build_model(trainer.resolved_params(params), type(
        "R", (), {"model_settings": {}})(), schema, params.tasks)
    fine_tuned_embedder.FAMILY.initialize(model, warm_model)
    head = model.get_layer(trainable_embedder.head_name(model))
    for got, expected in zip(head.get_weights(), warm_model.get_weights()):
        np.testing.assert_array_equal(got, expected)


def test_the_embedder_learns_at_a_tenth_of_the_heads_rate(tiny_embedder):
    optimizer = registry.optimizer(trainer.resolved_params(_params(tiny_embedder)))
    assert isinstance(optimizer, optimizers.ScaledAdam)
    assert (optimizer.pattern, optimizer.scale) == ("^embedder/", 0.1)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)   # the family's default


def test_the_fine_tuned_run_exports_for_tf_serving(fine_tuned_run, tmp_path):
    """bin/export's path: the servable is the whole model on raw audio, checked in a fresh
    process under both TensorFlow loaders against the Keras model."""
    model_dir, _, _, schema = fine_tuned_run
    run = runs.TrainedRun.finished(model_dir)
    member = export.Member(run.model, run.params)
    servable = export.Servable([member], schema, {"emotion": [0.1] * 10, "country": 0,
                                                  "age": 30.0})
    path = export.export(servable, str(tmp_path / "export"))
    assert os.path.isfile(os.path.join(path, "saved_model.pb"))


def test_fine_tuning_refuses_an_embedder_that_cannot_be_fine_tuned(tiny_demo, tmp_path):
    from conftest import write_tiny_embedder   # pylint: disable=import-outside-toplevel
    frozen = write_tiny_embedder(str(tmp_path / "frozen"), reusable=False)
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    with pytest.raises(UserInputError, match="cannot be fine-tuned"):
        trainer.train(tiny_demo, str(tmp_path / "run"), table, schema,
                      _params(frozen, warmup=False))


if __name__ == "__main__":
    run_main()
