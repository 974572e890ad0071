"""A TF Hub Reusable SavedModel inside a Keras model: its own variables trained by Adam, saved in
model.keras and in an export, windowed as the embedding cache windows a clip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import (EFFICIENTAT, requires_efficientat, run_main, tiny_embedder,  # noqa: F401
                      write_tiny_embedder)
from vb_keras.utils import windows
from vb_keras.errors import UserInputError
from vb_keras.models import embedders, optimizers, trainable_embedder
from vb_keras.params import WindowParams
from vb_keras.schema import LabelSchema
from vb_keras.serving import export

SCHEMA = LabelSchema(emotion_columns=("a", "b"), class_column="c", age_column="",
                     classes=("x", "y", "z"))
WINDOW = WindowParams(window_seconds=0.5, min_tail_seconds=0.1)


def _batch(rng=np.random.default_rng(0)):
    lengths = np.array([16000, 9000, 3000, 12000], np.int32)
    waveform = np.zeros((4, 16000), np.float32)
    for row, length in enumerate(lengths):
        waveform[row, :length] = rng.uniform(-0.5, 0.5, length)
    labels = {"emotion": rng.random((4, 2)).astype(np.float32),
              "country": np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]}
    return {"waveform": waveform, "num_samples": lengths}, labels


def _model(path, pattern=""):
    embedder = trainable_embedder.TrainableEmbedder(path, pattern, name="embedder")
    return trainable_embedder.build_model("conformer_autopool", embedder, WINDOW, SCHEMA,
                                          ("emotion", "country"), dropout=0.0), embedder


def test_the_windows_are_embedded_as_the_cache_embeds_one_clip(tiny_embedder):
    model, embedder = _model(tiny_embedder)
    frozen = embedders.SavedModelEmbedder(tiny_embedder)
    features, _ = _batch()
    embedded, counts = model.get_layer("window_embeddings")(features["waveform"],
                                                            features["num_samples"])
    for row, length in enumerate(features["num_samples"]):
        clip = features["waveform"][row, :length]
        expected = frozen(windows.clip_windows(clip, WINDOW)).numpy()
        assert counts[row] == len(expected)
        np.testing.assert_allclose(embedded[row, :len(expected)], expected, atol=1e-5)
    assert embedder.dimension == 4


def test_adam_trains_the_embedders_own_variables_and_model_keras_keeps_them(tiny_embedder,
                                                                            tmp_path):
    model, embedder = _model(tiny_embedder)
    assert {v.path for v in embedder.trainable_weights} == {"embedder/layer1_kernel",
                                                           "embedder/layer1_bias"}
    assert [v.path for v in embedder.non_trainable_weights] == ["embedder/frontend_gain"]
    before = embedder.trainable_weights[0].numpy().copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss={"emotion": "mse", "country": "categorical_crossentropy"})
    features, labels = _batch()
    model.fit(features, labels, epochs=2, verbose=0)
    assert not np.allclose(embedder.trainable_weights[0].numpy(), before)
    trained = model(features)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    for task, value in reloaded(features).items():
        np.testing.assert_allclose(value, trained[task], atol=1e-6)
    fresh, _ = _model(tiny_embedder)
    assert not np.allclose(fresh(features)["emotion"], trained["emotion"], atol=1e-4)


def test_a_pattern_trains_only_the_variables_it_names(tiny_embedder):
    _, embedder = _model(tiny_embedder, pattern="bias")
    assert [v.path for v in embedder.trainable_weights] == ["embedder/layer1_bias"]
    with pytest.raises(UserInputError, match="--trainable_embedder_variables='nothing' selects "
                                             "none of its 2 trainable variables"):
        _model(tiny_embedder, pattern="nothing")


def test_an_embedder_that_is_not_reusable_is_a_one_line_error(tmp_path):
    path = write_tiny_embedder(str(tmp_path / "frozen"), reusable=False)
    with pytest.raises(UserInputError, match="cannot be fine-tuned: it is not a TF Hub Reusable "
                                             "SavedModel"):
        trainable_embedder.TrainableEmbedder(path)
    with pytest.raises(UserInputError, match="is not a directory"):
        trainable_embedder.TrainableEmbedder(str(tmp_path / "nowhere"))


def test_the_fine_tuned_model_exports_and_both_loaders_serve_it(tiny_embedder, tmp_path):
    model, _ = _model(tiny_embedder)
    model.compile(optimizer=optimizers.ScaledAdam("^embedder/", 0.1, learning_rate=1e-2),
                  loss={"emotion": "mse", "country": "categorical_crossentropy"})
    features, labels = _batch()
    model.fit(features, labels, epochs=1, verbose=0)
    expected = model(features)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda waveform, num_samples: model(
        {"waveform": waveform, "num_samples": num_samples}, training=False), input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="waveform"),
            tf.TensorSpec([None], tf.int32, name="num_samples")])
    archive.write_out(str(tmp_path / "export"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](
        **{key: tf.constant(value) for key, value in features.items()})
    served_by_session = export.run_with_session_loader(str(tmp_path / "export"), features)
    for task in ("emotion", "country"):
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-5)
        np.testing.assert_allclose(served_by_session[task], expected[task], atol=1e-5)


@requires_efficientat
def test_the_real_efficientat_fine_tunes_with_adam():
    """The shared pre-trained EfficientAT (a Reusable SavedModel) trains under Adam, which Keras'
    own TFSMLayer cannot (its ':0' weight names)."""
    model, embedder = _model(EFFICIENTAT)
    assert embedder.dimension == 384 and len(embedder.trainable_weights) == 128
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss={"emotion": "mse", "country": "categorical_crossentropy"})
    before = [w.numpy().copy() for w in embedder.trainable_weights[:4]]
    features, labels = _batch()
    model.train_on_batch(features, labels)
    assert any(not np.allclose(w.numpy(), b) for w, b in zip(embedder.trainable_weights, before))


if __name__ == "__main__":
    run_main()
