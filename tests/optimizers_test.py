"""ScaledAdam: Adam with a smaller learning rate for the variables a pattern names."""

import keras
import numpy as np

from conftest import run_main
from vb_keras.models import optimizers


def _steps(optimizer, steps=3):
    inputs = keras.Input((2,))
    slow = keras.layers.Dense(1, name="embedder", kernel_initializer="ones")(inputs)
    fast = keras.layers.Dense(1, name="head", kernel_initializer="ones")(slow)
    model = keras.Model(inputs, fast)
    model.compile(optimizer=optimizer, loss="mse")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (1 - model.get_layer("embedder").kernel.numpy(),
            1 - model.get_layer("head").kernel.numpy())


def test_the_named_variables_move_by_the_scaled_learning_rate():
    plain_slow, plain_fast = _steps(keras.optimizers.Adam(1e-3))
    scaled = optimizers.ScaledAdam("^embedder/", 0.1, learning_rate=1e-3)
    slow, fast = _steps(scaled)
    # Adam's first steps move each weight by about the learning rate.
    np.testing.assert_allclose(slow, plain_slow * 0.1, rtol=1e-3)
    np.testing.assert_allclose(fast, plain_fast, rtol=1e-3)   # (its inputs moved less)
    assert scaled.scaled_count == 2   # the embedder's kernel and bias


def test_it_round_trips_through_its_config():
    optimizer = optimizers.ScaledAdam("^embedder/", 0.2, learning_rate=5e-4, epsilon=1e-7)
    again = optimizers.ScaledAdam.from_config(optimizer.get_config())
    assert (again.pattern, again.scale, again.epsilon) == ("^embedder/", 0.2, 1e-7)
    assert float(again.learning_rate) == np.float32(5e-4)


if __name__ == "__main__":
    run_main()
