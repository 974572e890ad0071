#!/usr/bin/env python3
"""How much each task's weighted loss moves the layers the tasks share, in a trained run.

For a few Train batches of a run directory's data, the gradient of each task's loss times its
weight (the run's fixed loss weights, or the learnt uncertainty weights) with respect to the
shared layers (a fine-tuned embedder's trainable variables; a ResNet's trunk; a frozen head's
pooling), and its L2 norm. With Adam each variable's step is scaled by its own gradient's size, so
the task layers learn whatever their weight; but in the shared layers the tasks' gradients add up
before that scaling, and a task whose weighted gradient is a hundredth of another's barely shapes
them. Prints each task's share of the summed norms.

  python tools/task_gradients.py --model_dir=runs/x [--batches=4]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.data import exvo  # noqa: E402
from vb_keras.families import registry  # noqa: E402
from vb_keras.families.base import DataSource  # noqa: E402
from vb_keras.models import losses  # noqa: E402
from vb_keras.training import compiling, runs, trainer  # noqa: E402


def shared_variables(model):
    """The trainable variables that no task layer owns: everything but the task outputs (and the
    learnt task weights)."""
    own = {"emotion", "country", "age", losses.UNCERTAINTY_LAYER}
    return [v for v in model.trainable_variables
            if not any(f"/{name}/" in f"/{v.path}" for name in own)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--batches", type=int, default=4)
    args = parser.parse_args()
    run = runs.TrainedRun.finished(args.model_dir)
    params, schema = run.params, run.schema
    table, schema = exvo.read_and_split(run.data_dir, schema)
    reader = registry.split_reader(params, DataSource(run.data_dir, table, schema))
    train_rows = exvo.select_split(table, schema, "Train")
    model = run.model
    task_losses = compiling.task_losses(run.tasks, trainer._class_loss(  # pylint: disable=protected-access
        params, train_rows, schema))
    weights = dict(params.loss_weights)
    if params.task_weighting == "uncertainty":
        layer = model.get_layer(losses.UNCERTAINTY_LAYER)
        task_losses = losses.uncertainty_weighted(model, task_losses)
        weights = {task: 1.0 for task in run.tasks}
        print("learnt log-variances:", dict(zip(layer.tasks, layer.log_variances.numpy())))
    shared = shared_variables(model)
    norms = {task: [] for task in run.tasks}
    batches = reader.batches("Train", training=True, batch_size=params.batch_size)
    for features, labels in batches.take(args.batches):
        for task in run.tasks:
            with tf.GradientTape() as tape:
                outputs = model(features, training=True)
                loss = weights[task] * task_losses[task](labels[task], outputs[task])
            gradients = tape.gradient(loss, shared)
            norms[task].append(float(tf.linalg.global_norm(
                [g for g in gradients if g is not None])))
    total = sum(np.mean(values) for values in norms.values())
    print(f"{run.name}, {params.task_weighting} weighting, {len(shared)} shared variables, "
          f"{args.batches} Train batches of {params.batch_size}:")
    for task, values in norms.items():
        print(f"  {task}: weighted gradient norm {np.mean(values):.4g} "
              f"({100 * np.mean(values) / total:.1f}% of the sum)")


if __name__ == "__main__":
    main()
