import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.evaluation import ensemble
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB

SCHEMA = HUME_VB.with_classes(["0", "1"])


def constant_model(task, value):
    waveform = keras.Input((None,), name="waveform")
    num_samples = keras.Input((), dtype="int32", name="num_samples")
    zero = keras.layers.Lambda(lambda w: tf.reduce_mean(w, axis=1, keepdims=True) * 0)(waveform)
    out = keras.layers.Dense(len(value), name=task, bias_initializer=keras.initializers.Constant(value))(zero)
    return keras.Model({"waveform": waveform, "num_samples": num_samples}, {task: out})


def batches(n=6):
    features = {"waveform": np.zeros((n, 100), np.float32), "num_samples": np.full(n, 100, np.int32),
                "file_id": np.array([f"{i}" for i in range(n)])}
    labels = {"emotion": np.random.default_rng(0).random((n, 10)).astype(np.float32),
              "country": np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1][:n]],
              "age": np.arange(20, 20 + n, dtype=np.float32)[:, None]}
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(4)


def test_each_task_from_its_model_and_naive_for_the_rest():
    entries = [(constant_model("country", [0.9, 0.1]), SCHEMA, ("country",)),
               (constant_model("age", [33.0]), SCHEMA, ("age",))]
    naive = {"emotion": np.full(10, 0.25), "country": 1, "age": 26.0}
    y_true, y_pred, owners, ids = ensemble.predict(entries, batches(), naive)
    assert owners == {"country": 0, "age": 1, "emotion": "naive"}
    assert len(ids) == 6 and list(ids) == sorted(ids)   # the clips' order, for their speakers
    assert y_pred["country"].argmax(axis=1).tolist() == [0] * 6
    np.testing.assert_allclose(y_pred["age"], 33.0)
    np.testing.assert_allclose(y_pred["emotion"], 0.25)
    assert y_true["age"].tolist() == list(range(20, 26))


def test_first_model_wins_and_schemas_must_agree():
    entries = [(None, SCHEMA, ("emotion", "country")), (None, SCHEMA, ("country", "age"))]
    assert ensemble.assign_tasks(entries) == {"emotion": 0, "country": 0, "age": 1}
    other = SCHEMA.with_classes(["a", "b", "c"])
    with pytest.raises(UserInputError, match="different label schemas"):
        ensemble.assign_tasks([(None, SCHEMA, ("emotion",)), (None, other, ("country",))])



def test_without_age_labels_only_the_present_tasks_are_predicted_or_filled():
    """Data without age labels: no age in the labels, the naive fallback or the predictions."""
    no_age = SCHEMA.__class__(age_column="", classes=("0", "1"))
    entries = [(constant_model("country", [0.2, 0.8]), no_age, ("country",))]
    dataset = batches().map(lambda features, labels: (
        features, {task: value for task, value in labels.items() if task != "age"}))
    naive = {"emotion": np.full(10, 0.25), "country": 0}
    y_true, y_pred, owners, _ = ensemble.predict(entries, dataset, naive)
    assert owners == {"country": 0, "emotion": "naive"}
    assert set(y_true) == set(y_pred) == {"emotion", "country"}
    assert y_pred["country"].argmax(axis=1).tolist() == [1] * 6


if __name__ == "__main__":
    run_main()
