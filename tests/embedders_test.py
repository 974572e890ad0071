"""TF-Hub-style embedders: one loading path for the project's exported Conformer and for any
SavedModel of the TRILLsson convention (the real pre-trained YAMNet export in ../shared)."""

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import EFFICIENTAT, YAMNET, requires_efficientat, requires_yamnet, run_main
from serving_loaders import assert_serves_like
from vb_keras.models import embedders
from vb_keras.errors import UserInputError


@pytest.fixture(scope="module")
def builtin(tmp_path_factory):
    return embedders.builtin_embedder_dir(root=str(tmp_path_factory.mktemp("cache")))


def test_exported_conformer_reproduces_the_keras_model(builtin):
    embedder = embedders.SavedModelEmbedder(builtin)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, [3, 20000]).astype(np.float32)
    keras_model = embedders.build_conformer_embedder("small", seed=0)
    np.testing.assert_allclose(embedder(audio).numpy(), keras_model(audio).numpy(), atol=1e-4)
    assert embedder.dimension == 144
    assert "RANDOM weights" in embedder.description
    assert embedder.identity.startswith("saved_model:")


def test_tf_serving_loaders_run_the_exported_conformer(builtin, load_saved_model_binary):
    """What bin/export_embedder writes serves under TF Serving's session-based loaders too, on a
    batch of clips of several lengths (zero-padded: the embedder sees every sample as audio)."""
    rng = np.random.default_rng(1)
    clips = [rng.uniform(-0.5, 0.5, n).astype(np.float32) for n in (16000, 23000, 41000)]
    audio = np.stack([np.pad(clip, (0, 41000 - len(clip))) for clip in clips])
    keras_model = embedders.build_conformer_embedder("small", seed=0)
    assert_serves_like(builtin, {"audio_samples": audio},
                       {"embedding": keras_model(audio).numpy()}, load_saved_model_binary)


def test_the_export_is_a_reusable_saved_model_with_both_training_modes(builtin):
    """TF Hub's Reusable SavedModel API, which fine-tuning needs (`TrainableEmbedder`)."""
    loaded = tf.saved_model.load(builtin)
    assert len(loaded.trainable_variables) == len(
        embedders.build_conformer_embedder("small").trainable_variables)
    assert len(loaded.variables) >= len(loaded.trainable_variables)
    assert list(loaded.regularization_losses) == []
    audio = np.random.default_rng(2).uniform(-0.5, 0.5, [2, 16000]).astype(np.float32)
    served = loaded.signatures["serving_default"](audio_samples=audio)["embedding"].numpy()
    np.testing.assert_allclose(loaded(audio, training=False)["embedding"].numpy(), served,
                               atol=1e-5)
    assert loaded(audio, training=True)["embedding"].shape == (2, 144)


def test_the_builtin_export_is_made_once(builtin, tmp_path):
    stamp = os.path.getmtime(os.path.join(builtin, "saved_model.pb"))
    again = embedders.builtin_embedder_dir(root=os.path.dirname(os.path.dirname(builtin)))
    assert again == builtin and os.path.getmtime(os.path.join(builtin, "saved_model.pb")) == stamp


def test_identity_changes_with_the_weights(tmp_path):
    paths = []
    for seed in (1, 2):
        model = embedders.build_conformer_embedder("small", seed=seed)
        paths.append(embedders.export_conformer_embedder(model, str(tmp_path / f"s{seed}"), "t"))
    identities = {embedders.SavedModelEmbedder(path).identity for path in paths}
    assert len(identities) == 2


def test_missing_embedder_directory_is_a_one_line_error(tmp_path):
    with pytest.raises(UserInputError, match="--embedder: .*nowhere is not a directory"):
        embedders.load(str(tmp_path / "nowhere"))


def test_without_an_embedder_the_builtin_one_is_used_and_called_untrained(caplog):
    with caplog.at_level(logging.WARNING):
        embedder = embedders.load("")
    assert "RANDOM, UNTRAINED weights" in caplog.text
    assert embedder.dimension == 144


def test_not_a_saved_model_is_a_one_line_error(tmp_path):
    with pytest.raises(UserInputError, match="not a SavedModel directory"):
        embedders.SavedModelEmbedder(str(tmp_path))


def test_a_saved_model_of_another_convention_is_refused(tmp_path):
    module = tf.Module()
    module.f = tf.function(lambda x: {"logits": x * 2.0},
                           input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.f})
    with pytest.raises(UserInputError, match="must map 'audio_samples'"):
        embedders.SavedModelEmbedder(str(tmp_path))


@requires_yamnet
def test_real_pretrained_embedder_loads_and_embeds():
    embedder = embedders.SavedModelEmbedder(YAMNET)
    assert embedder.dimension == 1024
    t = np.arange(40000) / 16000
    laugh_like = (0.3 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 5 * t) > 0))
    silence = np.zeros_like(t)
    result = embedder(np.stack([laugh_like, silence]).astype(np.float32)).numpy()
    assert result.shape == (2, 1024) and np.isfinite(result).all()
    assert not np.allclose(result[0], result[1])


@requires_efficientat
def test_efficientat_embeds_each_window_and_its_extra_scores_output_is_left_aside():
    """EfficientAT maps audio to {'embedding': [n, 384], 'scores': [n, 527]} and pools over the
    whole input: each window is one input row, so each gets its own clip-level vector."""
    embedder = embedders.SavedModelEmbedder(EFFICIENTAT)
    assert embedder.dimension == 384
    rng = np.random.default_rng(3)
    windows = rng.uniform(-0.3, 0.3, [3, 40000]).astype(np.float32)
    together = embedder(windows).numpy()
    assert together.shape == (3, 384)
    np.testing.assert_allclose(embedder(windows[1:2]).numpy(), together[1:2], atol=1e-4)


if __name__ == "__main__":
    run_main()
