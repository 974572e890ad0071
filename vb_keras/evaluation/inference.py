"""Running a model over evaluation batches: a whole split's labels and predictions as numpy (for the
validation callback, the ensemble of bin/evaluate and the experiment grid)."""

import numpy as np
import tensorflow as tf

from vb_keras.keys import FILE_ID
from vb_keras.schema import AGE, COUNTRY


def inference_function(model):
    """model(features, training=False) as one tf.function for batches of any length."""
    return tf.function(lambda features: model(features, training=False), reduce_retracing=True)


def predict_batches(model, batches, tasks=None, forward=None):
    """Runs `model` over (features, labels) batches; returns (y_true, y_pred, file_ids) as numpy.

    y_true holds every task's labels; y_pred the model's own outputs (restricted to `tasks`).
    Pass `forward=inference_function(model)` when calling repeatedly, so it is traced once.
    """
    forward = forward or inference_function(model)
    truths, predictions, ids = {}, {}, []
    for features, labels in batches:
        if FILE_ID in features:
            ids.extend(x.decode() for x in features[FILE_ID].numpy())
        inputs = {key: value for key, value in features.items() if key != FILE_ID}
        outputs = forward(inputs)
        for task, value in labels.items():
            truths.setdefault(task, []).append(value.numpy())
        for task, value in outputs.items():
            if tasks is None or task in tasks:
                predictions.setdefault(task, []).append(value.numpy())
    y_true = {task: np.concatenate(parts) for task, parts in truths.items()}
    if COUNTRY in y_true:
        y_true[COUNTRY] = y_true[COUNTRY].argmax(axis=-1)
    if AGE in y_true:
        y_true[AGE] = y_true[AGE].reshape(-1)
    y_pred = {task: np.concatenate(parts) for task, parts in predictions.items()}
    if AGE in y_pred:
        y_pred[AGE] = y_pred[AGE].reshape(-1)
    return y_true, y_pred, ids
