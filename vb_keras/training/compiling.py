"""Compiling a task model for training (section 2.1): the optimizer, and each task's loss and
weight."""

from typing import Mapping, Sequence

import keras

from vb_keras.models import losses
from vb_keras.schema import AGE, COUNTRY, EMOTION


def task_losses(tasks: Sequence[str], class_loss: keras.losses.Loss | None = None) -> dict:
    """Each task's loss (section 2.1): the negative mean CCC for the emotions, the mean squared
    error for the age, `class_loss` (default plain categorical cross-entropy) for the class."""
    every = {EMOTION: losses.NegativeMeanCCC(), AGE: keras.losses.MeanSquaredError(),
             COUNTRY: class_loss or keras.losses.CategoricalCrossentropy()}
    return {task: every[task] for task in tasks}


def compile_for_tasks(model: keras.Model, tasks: Sequence[str],
                      optimizer: keras.optimizers.Optimizer,
                      class_loss: keras.losses.Loss | None = None,
                      loss_weights: Mapping[str, float] | None = None,
                      task_weighting: str = "fixed") -> None:
    """Compiles `model` with `optimizer` and the losses of `tasks` (`task_losses`). Call it under
    the model's strategy scope.

    Args:
      optimizer: e.g. section 2.1's `keras.optimizers.Adam(3e-4, epsilon=1e-8)`.
      loss_weights: {task: weight}, e.g. section 2.1's 5.0 / 0.05 / 0.05; None weighs every task 1.
      task_weighting: "fixed" (`loss_weights`) or "uncertainty" (`losses.UncertaintyWeighting`:
        the model must have been built with that layer).
    """
    task_loss = task_losses(tasks, class_loss)
    weights = None if loss_weights is None else {task: loss_weights[task] for task in tasks}
    if task_weighting == "uncertainty":
        task_loss, weights = losses.uncertainty_weighted(model, task_loss), None
    elif task_weighting != "fixed":
        raise ValueError(f"unknown task weighting {task_weighting!r}")
    model.compile(optimizer=optimizer, loss=task_loss, loss_weights=weights)
