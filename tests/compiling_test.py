"""Compiling a task model: Adam, each task's loss and weight (vb_keras.training.compiling)."""

import keras
import numpy as np
import pytest

from conftest import run_main
from vb_keras.models import losses
from vb_keras.training import compiling


def three_task_model():
    features = keras.Input((4,), name="features")
    return keras.Model(features, {
        "emotion": keras.layers.Dense(2, activation="sigmoid", name="emotion")(features),
        "country": keras.layers.Dense(3, activation="softmax", name="country")(features),
        "age": keras.layers.Dense(1, name="age")(features)})


def data(n=16):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 4)).astype(np.float32),
            {"emotion": rng.uniform(size=(n, 2)).astype(np.float32),
             "country": np.eye(3, dtype=np.float32)[rng.integers(0, 3, n)],
             "age": rng.uniform(20, 40, (n, 1)).astype(np.float32)})


def test_adam_with_the_settings_and_the_weighted_sum_of_the_task_losses():
    model = three_task_model()
    compiling.compile_for_tasks(model, ("emotion", "country", "age"),
                                keras.optimizers.Adam(3e-4, epsilon=1e-7),
                                loss_weights={"emotion": 5.0, "country": 0.05, "age": 0.5})
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(3e-4)
    assert model.optimizer.epsilon == pytest.approx(1e-7)
    x, y = data()
    predicted = model.predict(x, verbose=0)
    expected = (5.0 * float(losses.NegativeMeanCCC()(y["emotion"], predicted["emotion"]))
                + 0.05 * float(keras.losses.CategoricalCrossentropy()(y["country"],
                                                                      predicted["country"]))
                + 0.5 * float(keras.losses.MeanSquaredError()(y["age"], predicted["age"])))
    # One batch of all clips: the CCC is a batch statistic.
    assert model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss"] == (
        pytest.approx(expected, rel=1e-5))


def test_only_the_given_tasks_weighted_one_by_default_and_a_class_loss_of_ones_own():
    features = keras.Input((4,), name="features")
    emotion_only = keras.Model(features,
                               {"emotion": keras.layers.Dense(2, name="emotion")(features)})
    compiling.compile_for_tasks(emotion_only, ("emotion",), keras.optimizers.Adam(1e-3))
    x, y = data()
    predicted = emotion_only.predict(x, verbose=0)["emotion"]
    assert emotion_only.evaluate(x, {"emotion": y["emotion"]}, batch_size=len(x), verbose=0,
                                 return_dict=True)["loss"] == pytest.approx(
        float(losses.NegativeMeanCCC()(y["emotion"], predicted)), rel=1e-5)

    model, class_loss = three_task_model(), losses.BalancedCategoricalCrossentropy([1.0, 2.0, 3.0])
    compiling.compile_for_tasks(model, ("country",), keras.optimizers.Adam(1e-3),
                                class_loss=class_loss)
    assert model.loss == {"country": class_loss}


if __name__ == "__main__":
    run_main()
