"""Keras callbacks for vb_keras training; public, so users can reuse them in their own loops.

- `ValidationScore`: the exact challenge metrics on a whole evaluation split after each epoch, added
  to the epoch logs as `val_mean_ccc`, `val_uar`, `val_mae`, `val_hmean` and `val_ccc_<emotion>` (so
  CSVLogger, TensorBoard, EarlyStopping and your own callbacks see them). Put it first in the list.
- `BestWeights`: keeps the weights of the best epoch by a logged value, survives a restart (its best
  score is stored beside the weights), and restores them when training ends.
- `ResumableBackup`: Keras's BackupAndRestore with a second, older checkpoint, which starts over
  cleanly if a kill interrupted the very first backup.

Your own callback receives those logs in `on_epoch_end(epoch, logs)`, e.g.

    class PrintHmean(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(epoch, logs["val_hmean"])
"""

import glob
import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from vb_keras.evaluation import baseline, scoring
from vb_keras.utils import atomic
from vb_keras.keys import FILE_ID
from vb_keras.schema import AGE, COUNTRY, LabelSchema


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


class ValidationScore(keras.callbacks.Callback):
    """Exact challenge metrics on a whole evaluation split after every epoch.

    Tasks the model does not predict take the naive prediction (section 3.3's age fallback), so
    `val_hmean` is defined for single-task models too.

    Args:
      batches: evaluation (features, labels) batches (pipeline.batches(..., training=False)).
      schema: the label schema, with classes.
      naive: `baseline.fit_naive(...)` of the training split.
      split: name used in log lines.
    """

    def __init__(self, batches, schema: LabelSchema, naive: dict, split: str = "Val"):
        super().__init__()
        self.batches = batches
        self.schema = schema
        self.naive = naive
        self.split = split
        self.last_result = None
        self._forward = self._forward_model = None

    def evaluate(self):
        if self._forward is None or self._forward_model is not self.model:
            self._forward, self._forward_model = inference_function(self.model), self.model
        y_true, y_pred, _ = predict_batches(self.model, self.batches, forward=self._forward)
        y_pred, _ = baseline.fill_missing_tasks(y_pred, self.naive,
                                                len(next(iter(y_true.values()))))
        return scoring.evaluate(y_true, y_pred, self.schema, self.split)

    def on_epoch_end(self, epoch, logs=None):
        result = self.last_result = self.evaluate()
        figures = {"mean_ccc": result.mean_ccc, "uar": result.uar, "mae": result.mae,
                   "hmean": result.hmean}
        if logs is not None:
            # (A task the data has no labels for logs nothing.)
            logs.update({f"val_{key}": value for key, value in figures.items() if value is not None})
            logs.update({f"val_ccc_{name}": value for name, value in result.ccc_per_emotion.items()})
        names = {"mean_ccc": "mean CCC", "uar": "UAR", "mae": "MAE", "hmean": "harmonic mean"}
        print(f"\n{self.split} after epoch {epoch + 1}: " + " | ".join(
            f"{names[key]} {value:.3f}" for key, value in figures.items() if value is not None),
            flush=True)


class BestWeights(keras.callbacks.Callback):
    """Saves the weights of the best epoch by `monitor` and restores them when training ends.

    The best value is stored in `<weights_path>.json`, so a run resumed by BackupAndRestore keeps
    comparing against the best epoch before the interruption.

    Args:
      weights_path: file ending in ".weights.h5".
      monitor: a key of the epoch logs, e.g. "val_hmean".
      mode: "max" or "min".
      tie_monitor: a "max" key of the logs that decides between epochs with equal `monitor` values.
        The harmonic mean is 0 whenever UAR or mean CCC is (e.g. a validation split with one class,
        where predicting the other gives UAR 0); mean CCC then still picks the better epoch.
      restore: load the best weights in `on_train_end`.
    """

    def __init__(self, weights_path, monitor="val_hmean", mode="max", tie_monitor="val_mean_ccc",
                 restore=True):
        super().__init__()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.weights_path = weights_path
        self.monitor = monitor
        self.mode = mode
        self.tie_monitor = tie_monitor
        self.restore = restore
        self.best, self.best_tie, self.best_epoch = self._load_state()

    def _state_path(self):
        return self.weights_path + ".json"

    def _load_state(self):
        if os.path.isfile(self._state_path()) and os.path.isfile(self.weights_path):
            with open(self._state_path()) as stream:
                state = json.load(stream)
            return state["best"], state.get("tie"), state["epoch"]
        return None, None, None

    def _better(self, value, tie):
        if self.best is None:
            return True
        if value == self.best:
            return tie is not None and (self.best_tie is None or tie > self.best_tie)
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            logging.warning("BestWeights: %r is not in the epoch logs; nothing saved", self.monitor)
            return
        tie = logs.get(self.tie_monitor) if self.tie_monitor else None
        tie = None if tie is None else float(tie)
        if self._better(float(value), tie):
            self.best, self.best_tie, self.best_epoch = float(value), tie, epoch + 1
            temporary = self.weights_path.replace(".weights.h5", ".tmp.weights.h5")
            self.model.save_weights(temporary)
            os.replace(temporary, self.weights_path)
            atomic.write_json(self._state_path(), {"best": self.best, "tie": self.best_tie,
                                                   "epoch": self.best_epoch,
                                                   "monitor": self.monitor})

    def on_train_end(self, logs=None):
        if self.restore and os.path.isfile(self.weights_path):
            self.model.load_weights(self.weights_path)
            print(f"restored the weights of epoch {self.best_epoch} ({self.monitor} = "
                  f"{self.best:.4f})", flush=True)


class HistoryLogger(keras.callbacks.CSVLogger):
    """history.csv (appended to across resumes) with exactly one row per epoch.

    A run killed after an epoch's row was written but before that epoch's backup repeats the epoch
    when resumed: the repeated epoch's row then replaces the earlier one instead of following it
    (as does a row cut short by the kill).
    """

    def __init__(self, filename):
        super().__init__(filename, append=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.writer is None:   # the first epoch this fit ends
            self._drop_rows_from(epoch)
        super().on_epoch_end(epoch, logs)

    def _drop_rows_from(self, epoch):
        with open(self.filename, newline="") as stream:
            lines = stream.read().splitlines(keepends=True)
        if len(lines) < 2:
            return
        kept = [lines[0]] + [line for line in lines[1:] if line.endswith("\n")
                             and _row_epoch(line, self.sep) < epoch]
        if len(kept) == len(lines):
            return
        logging.info("%s: dropping %d row(s) of epochs this run repeats", self.filename,
                     len(lines) - len(kept))
        self.csv_file.close()
        atomic.write_text(self.filename, "".join(kept))
        self.csv_file = open(self.filename, "a", newline="")  # pylint: disable=consider-using-with


def _row_epoch(line, separator) -> float:
    try:
        return int(line.split(separator, 1)[0])
    except ValueError:
        return float("inf")   # not a row: dropped


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that survives a kill at any moment.

    A kill during a backup write leaves an unreadable file: the previous backup (double checkpoint)
    is used then, and if the kill hit the very first backup, training starts over from epoch 0,
    since no epoch had been saved. With `delete_checkpoint=False` the backup outlives training (its
    owner deletes it once everything after training is written too).
    """

    def __init__(self, backup_dir, delete_checkpoint: bool = True):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint,
                         double_checkpoint=True)

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except OSError as error:
            logging.warning("the backup in %s is unreadable (%s): no finished epoch to resume, "
                            "starting over", self.backup_dir, error)
            for path in glob.glob(os.path.join(self.backup_dir, "*")):
                os.remove(path)
