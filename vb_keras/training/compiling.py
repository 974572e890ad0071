"""Compiling a task model for training (section 2.1): Adam, and each task's loss and weight."""

from typing import Mapping, Sequence

import keras

from vb_keras.models import losses
from vb_keras.schema import AGE, COUNTRY, EMOTION


def compile_for_tasks(model: keras.Model, tasks: Sequence[str], learning_rate: float,
                      epsilon: float, class_loss: keras.losses.Loss | None = None,
                      loss_weights: Mapping[str, float] | None = None) -> None:
    """Compiles `model` with Adam(learning_rate, epsilon) and the losses of `tasks`: the negative
    mean CCC for the emotions, the mean squared error for the age and `class_loss` (default plain
    categorical cross-entropy) for the class. Call it under the model's strategy scope.

    Args:
      loss_weights: {task: weight}, e.g. section 2.1's 5.0 / 0.05 / 0.05; None weighs every task 1.
    """
    if class_loss is None:
        class_loss = keras.losses.CategoricalCrossentropy()
    task_losses = {EMOTION: losses.NegativeMeanCCC(), AGE: keras.losses.MeanSquaredError(),
                   COUNTRY: class_loss}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate, epsilon=epsilon),
        loss={task: task_losses[task] for task in tasks},
        loss_weights=None if loss_weights is None else {task: loss_weights[task] for task in tasks})
