"""One registry of model families: every model name has a family, with its defaults, its own
settings (recorded and compared alone) and its parts."""

import dataclasses

import numpy as np
import pytest

from conftest import run_main
from vb_keras.analysis import experiment
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.families import fine_tuned_embedder, frozen_embedder, registry, resnets
from vb_keras.families import waveform_input
from vb_keras.families.base import DataSource
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB
from vb_keras.training import trainer

SCHEMA = HUME_VB.with_classes(["0", "1"])
HEADS = ("conformer", "conformer_autopool", "conformer_fc", "conformer_lstm", "conformer_netvlad")


def test_every_table1_model_resolves_to_a_family_and_fine_tune_switches_the_heads():
    assert set(experiment.TABLE1_MODELS) == set(registry.MODEL_NAMES)
    for name in ("resnet18", "resnet34", "resnet50"):
        assert registry.family_for(name) is resnets.FAMILY
    for name in HEADS:
        assert registry.family_for(name) is frozen_embedder.FAMILY
        assert registry.family_for(name, {"fine_tune": True}) is fine_tuned_embedder.FAMILY
    assert registry.SWITCHES == ("fine_tune",)
    with pytest.raises(UserInputError, match="^--fine_tune: not available for resnet18 "
                                             r"\(only for conformer, conformer_autopool"):
        registry.family_for("resnet18", {"fine_tune": True})


def test_default_run_folders_tell_a_fine_tuned_run_from_a_frozen_one():
    frozen = TrainingParams(model="conformer_autopool")
    tuned = registry.with_defaults(TrainingParams(
        model="conformer_autopool",
        family=registry.family_for("conformer_autopool", {"fine_tune": True}).config()))
    assert registry.run_name(frozen) == "conformer_autopool"
    assert registry.run_name(tuned) == "conformer_autopool_fine_tune"
    assert registry.run_name(TrainingParams(model="resnet18")) == "resnet18"


def test_an_unknown_model_is_a_one_line_error_listing_the_valid_names():
    with pytest.raises(UserInputError) as error:
        registry.family_for("vgg")
    assert str(error.value) == ("--model: unknown model 'vgg'; choose one of resnet18, resnet34, "
                                "resnet50, conformer, conformer_autopool, conformer_fc, "
                                "conformer_lstm, conformer_netvlad")
    with pytest.raises(UserInputError, match="^--models: unknown model 'resnet19'; choose one of"):
        experiment.grid_rows(["resnet19"], ["multitask"])


def test_families_are_frozen_and_carry_their_defaults():
    assert (resnets.FAMILY.batch_size, resnets.FAMILY.demo_epochs) == (64, 8)
    assert (frozen_embedder.FAMILY.batch_size, frozen_embedder.FAMILY.demo_epochs) == (128, 40)
    assert fine_tuned_embedder.FAMILY.batch_size == 32
    with pytest.raises(dataclasses.FrozenInstanceError):
        resnets.FAMILY.batch_size = 32
    assert resnets.FAMILY.reader is waveform_input.WaveformReader
    assert frozen_embedder.FAMILY.reader is frozen_embedder.EmbeddingReader
    assert fine_tuned_embedder.FAMILY.reader is waveform_input.WaveformReader


def test_python_training_takes_the_familys_defaults_before_recording_them():
    assert TrainingParams().batch_size is None and TrainingParams().family is None
    head = trainer.resolved_params(TrainingParams(model="conformer_autopool"))
    assert head.batch_size == 128 and head.family == frozen_embedder.FrozenEmbedderConfig()
    resnet = trainer.resolved_params(TrainingParams(model="resnet34"))
    assert resnet.batch_size == 64 and resnet.family == resnets.ResNetConfig()
    assert resnet.learning_rate == head.learning_rate == 3e-4   # section 2.1
    assert trainer.resolved_params(TrainingParams(
        model="conformer", family=fine_tuned_embedder.FineTunedEmbedderConfig())).learning_rate == 1e-3
    # What is given is kept, so old runs still match.
    given = TrainingParams(model="conformer_autopool", batch_size=16, learning_rate=1e-4,
                           family=fine_tuned_embedder.FineTunedEmbedderConfig(embedder="/e"))
    assert trainer.resolved_params(given) == given
    with pytest.raises(UserInputError, match="^--model: unknown model 'vgg'"):
        trainer.resolved_params(TrainingParams(model="vgg"))
    with pytest.raises(UserInputError, match="^--model: resnet18 is not one of the heads"):
        trainer.resolved_params(TrainingParams(model="resnet18",
                                               family=frozen_embedder.FrozenEmbedderConfig()))


def test_a_run_records_its_family_settings_and_reads_them_back_old_configs_too():
    params = trainer.resolved_params(TrainingParams(
        model="conformer_fc", family=fine_tuned_embedder.FineTunedEmbedderConfig(
            embedder="/models/e", embedder_learning_rate_scale=0.2)))
    recorded = registry.params_to_dict(params)
    assert recorded["family"]["type"] == "fine_tuned_embedder"
    assert registry.params_from_dict(recorded) == params
    # A config.json of the flat layout before family configs reads as the family's config.
    flat = {"model": "resnet18", "tasks": ["emotion"], "epochs": 3, "batch_size": 64,
            "learning_rate": 3e-4, "epsilon": 1e-8, "loss_weights": [5.0, 0.05, 0.05],
            "dropout": 0.3, "clip_seconds": 2.0, "early_stopping_patience": None,
            "balanced_classes": True, "seed": 0, "mixed_bfloat16": False, "embedder": "",
            "window_seconds": 2.5, "min_tail_seconds": 0.5}
    old = registry.params_from_dict(flat)
    assert old.family == resnets.ResNetConfig(clip_seconds=2.0)
    assert old.loss_weights == {"emotion": 5.0, "country": 0.05, "age": 0.05}


def test_only_a_runs_own_binding_settings_bind_it():
    resnet = trainer.resolved_params(TrainingParams(model="resnet18"))
    assert registry.binding_settings(resnet)["family"] == {"type": "resnet", "clip_seconds": None}
    heads = trainer.resolved_params(TrainingParams(
        model="conformer", family=frozen_embedder.FrozenEmbedderConfig(embedding_cache="/c")))
    assert "embedding_cache" not in registry.binding_settings(heads)["family"]
    moved = registry.with_family_settings(heads, embedding_cache="/elsewhere", clip_seconds=3.0)
    assert moved.family.embedding_cache == "/elsewhere"   # and no clip_seconds: not its setting


def test_every_family_setting_is_a_flag_with_help_defined_once():
    names = [name for name, _, _ in registry.settings()]
    assert len(names) == len(set(names))
    assert {"clip_seconds", "embedder", "window_seconds", "min_tail_seconds", "embedding_cache",
            "embedder_learning_rate_scale", "trainable_embedder_variables", "warmup"} == set(names)
    shared = dict((name, entries) for name, _, entries in registry.settings())
    assert shared["clip_seconds"] == (resnets.FAMILY, fine_tuned_embedder.FAMILY)
    with pytest.raises(UserInputError, match="^--window_seconds: window_seconds must be positive"):
        registry.config_from_values(frozen_embedder.FAMILY, {
            "embedder": "", "window_seconds": 0.0, "min_tail_seconds": 0.0,
            "embedding_cache": None})


class _Reader:
    model_settings = {"embedding_dim": 6}


def test_each_family_builds_its_model_on_what_its_reader_learnt():
    resnet = registry.build_model(TrainingParams(model="resnet18", dropout=0.1),
                                  waveform_input.WaveformReader(
                                      trainer.resolved_params(TrainingParams()), None),
                                  SCHEMA, ("emotion",))
    assert set(resnet.input) == {"waveform", "num_samples"}
    assert resnet.get_layer("dropout").rate == pytest.approx(0.1)
    head = registry.build_model(TrainingParams(model="conformer_fc"), _Reader(), SCHEMA,
                                ("emotion", "age"), {"age": [30.0]})
    assert set(head.input) == {"embeddings", "num_windows"}
    assert head.input["embeddings"].shape[-1] == 6
    np.testing.assert_allclose(head.get_layer("age").bias.numpy(), [30.0])


def test_the_waveform_families_serve_on_the_waveform_as_given():
    inputs = registry.preprocessor(TrainingParams(model="resnet18"))
    assert isinstance(inputs, waveform_input.WaveformInputs) and inputs.trackables == ()
    clips = [np.ones(5, np.float32), np.ones(3, np.float32)]
    batch = inputs.on_host(clips)
    np.testing.assert_array_equal(batch["num_samples"], [5, 3])
    np.testing.assert_array_equal(batch["waveform"][1], [1, 1, 1, 0, 0])
    assert inputs.in_graph("w", "n") == {"waveform": "w", "num_samples": "n"}


def test_the_families_give_the_same_labels_for_a_split(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    source = DataSource(tiny_demo, table, schema)
    resnet = registry.split_reader(TrainingParams(model="resnet18"), source)
    heads = registry.split_reader(TrainingParams(
        model="conformer_autopool", family=frozen_embedder.FrozenEmbedderConfig(
            embedding_cache=str(tmp_path / "embeddings"))), source)
    assert isinstance(resnet, waveform_input.WaveformReader) and resnet.model_settings == {}
    assert isinstance(heads, frozen_embedder.EmbeddingReader)
    assert heads.model_settings == {"embedding_dim": 144}
    assert heads.cache_dir.startswith(str(tmp_path))

    def collect(reader):
        ids, emotions, inputs_seen = [], [], set()
        for features, labels in reader.batches("Val", training=False, batch_size=4, keep_ids=True):
            ids.extend(features["file_id"].numpy())
            emotions.append(labels["emotion"].numpy())
            inputs_seen |= set(features) - {"file_id"}
        order = np.argsort(ids)
        return np.asarray(ids)[order], np.concatenate(emotions)[order], inputs_seen

    resnet_ids, resnet_emotions, resnet_inputs = collect(resnet)
    head_ids, head_emotions, head_inputs = collect(heads)
    assert resnet_inputs == {"waveform", "num_samples"}
    assert head_inputs == {"embeddings", "num_windows"}
    np.testing.assert_array_equal(resnet_ids, head_ids)
    np.testing.assert_array_equal(resnet_emotions, head_emotions)


if __name__ == "__main__":
    run_main()
