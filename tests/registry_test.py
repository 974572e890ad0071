"""One registry of model families: every model name has one, with its defaults and its parts."""

import dataclasses

import numpy as np
import pytest

from conftest import run_main
from vb_keras.analysis import experiment
from vb_keras.errors import UserInputError
from vb_keras.models import audio_inputs, readers, registry
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB
from vb_keras.training import trainer

SCHEMA = HUME_VB.with_classes(["0", "1"])


def test_every_table1_model_resolves_to_a_family():
    assert set(experiment.TABLE1_MODELS) == set(registry.MODEL_NAMES)
    for name in ("resnet18", "resnet34", "resnet50"):
        assert registry.family(name) is registry.RESNETS
    for name in ("conformer", "conformer_fc", "conformer_lstm", "conformer_netvlad",
                 "conformer_autopool"):
        assert registry.family(name) is registry.CONFORMER_HEADS
    # Every name belongs to exactly one family.
    assert len(registry.MODEL_NAMES) == len(set(registry.MODEL_NAMES)) == sum(
        len(family.model_names) for family in registry.FAMILIES)


def test_an_unknown_model_is_a_one_line_error_listing_the_valid_names():
    with pytest.raises(UserInputError) as error:
        registry.family("vgg")
    assert str(error.value) == ("--model: unknown model 'vgg'; choose one of resnet18, resnet34, "
                                "resnet50, conformer, conformer_autopool, conformer_fc, "
                                "conformer_lstm, conformer_netvlad")
    with pytest.raises(UserInputError, match="^--models: unknown model 'resnet19'; choose one of"):
        experiment.grid_rows(["resnet19"], ["multitask"])


def test_families_are_frozen_and_carry_section_2s_defaults():
    assert (registry.RESNETS.batch_size, registry.RESNETS.demo_epochs) == (64, 8)
    assert (registry.CONFORMER_HEADS.batch_size, registry.CONFORMER_HEADS.demo_epochs) == (128, 40)
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.RESNETS.batch_size = 32
    assert registry.RESNETS.reader is readers.WaveformReader
    assert registry.CONFORMER_HEADS.reader is readers.EmbeddingReader


def test_python_training_takes_the_familys_batch_size_before_recording_it():
    assert TrainingParams().batch_size is None   # "the family's default"
    assert trainer.resolved_params(TrainingParams(model="conformer_autopool")).batch_size == 128
    assert trainer.resolved_params(TrainingParams(model="resnet34")).batch_size == 64
    # A batch size given (as bin/train always records one) is kept, so old runs still match.
    given = TrainingParams(model="conformer_autopool", batch_size=16)
    assert trainer.resolved_params(given) == given
    with pytest.raises(UserInputError, match="^--model: unknown model 'vgg'"):
        trainer.resolved_params(TrainingParams(model="vgg"))


class _Reader:
    model_settings = {"embedding_dim": 6}


def test_each_family_builds_its_model_on_what_its_reader_learnt():
    resnet = registry.build_model(TrainingParams(model="resnet18", dropout=0.1),
                                  readers.WaveformReader(TrainingParams(), None, None, SCHEMA),
                                  SCHEMA, ("emotion",))
    assert set(resnet.input) == {"waveform", "num_samples"}
    assert resnet.get_layer("dropout").rate == pytest.approx(0.1)
    head = registry.build_model(TrainingParams(model="conformer_fc"), _Reader(), SCHEMA,
                                ("emotion", "age"), {"age": [30.0]})
    assert set(head.input) == {"embeddings", "num_windows"}
    assert head.input["embeddings"].shape[-1] == 6
    np.testing.assert_allclose(head.get_layer("age").bias.numpy(), [30.0])


def test_the_resnets_serve_on_the_waveform_as_given():
    inputs = registry.RESNETS.audio_inputs(TrainingParams(model="resnet18"))
    assert isinstance(inputs, audio_inputs.WaveformInputs) and inputs.trackables == ()
    clips = [np.ones(5, np.float32), np.ones(3, np.float32)]
    batch = inputs.on_host(clips)
    np.testing.assert_array_equal(batch["num_samples"], [5, 3])
    np.testing.assert_array_equal(batch["waveform"][1], [1, 1, 1, 0, 0])
    assert inputs.in_graph("w", "n") == {"waveform": "w", "num_samples": "n"}


if __name__ == "__main__":
    run_main()
