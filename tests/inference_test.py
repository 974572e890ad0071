"""Running a model over evaluation batches (vb_keras.evaluation.inference)."""

import keras
import numpy as np
import tensorflow as tf

from conftest import run_main
from vb_keras.evaluation import inference


def two_task_model():
    """emotion = 2 x the feature, age = the feature's sum: known outputs for known inputs."""
    value = keras.Input((3,), name="value")
    emotion = keras.layers.Rescaling(2.0, name="emotion")(value)
    age = keras.layers.Dense(1, name="age", kernel_initializer="ones", use_bias=False)(value)
    return keras.Model({"value": value}, {"emotion": emotion, "age": age})


def batches(n=7, keep_ids=True):
    rng = np.random.default_rng(0)
    features = {"value": rng.uniform(size=(n, 3)).astype(np.float32)}
    if keep_ids:
        features["file_id"] = np.array([f"clip{i}" for i in range(n)])
    labels = {"emotion": rng.uniform(size=(n, 3)).astype(np.float32),
              "country": np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)],
              "age": rng.uniform(20, 40, (n, 1)).astype(np.float32)}
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(3), features, labels


def test_predictions_and_labels_of_every_batch_as_numpy_with_class_indices_and_flat_ages():
    dataset, features, labels = batches()
    y_true, y_pred, ids = inference.predict_batches(two_task_model(), dataset)
    assert ids == [f"clip{i}" for i in range(7)]   # the file ids, not fed to the model
    np.testing.assert_allclose(y_pred["emotion"], 2 * features["value"], rtol=1e-6)
    np.testing.assert_allclose(y_pred["age"], features["value"].sum(axis=1), rtol=1e-6)
    assert y_pred["age"].shape == (7,) and y_true["age"].shape == (7,)
    np.testing.assert_array_equal(y_true["country"], labels["country"].argmax(axis=1))
    np.testing.assert_array_equal(y_true["emotion"], labels["emotion"])


def test_tasks_restrict_the_predictions_not_the_labels_and_a_forward_function_is_reused():
    model = two_task_model()
    forward = inference.inference_function(model)
    dataset, _, _ = batches(keep_ids=False)
    y_true, y_pred, ids = inference.predict_batches(model, dataset, tasks=("age",), forward=forward)
    assert set(y_pred) == {"age"} and set(y_true) == {"emotion", "country", "age"} and ids == []
    inference.predict_batches(model, dataset, forward=forward)
    # Batches of 3 and of 1, twice over: the second trace generalises the batch size, and then
    # serves every call (reduce_retracing).
    assert forward.experimental_get_tracing_count() <= 2


if __name__ == "__main__":
    run_main()
