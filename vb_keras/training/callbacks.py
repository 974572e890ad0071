"""Keras callbacks for vb_keras training; public, so users can reuse them in their own loops.

- `ValidationScore`: the exact challenge metrics on a whole evaluation split after each epoch, added
  to the epoch logs as `val_mean_ccc`, `val_uar`, `val_mae`, `val_hmean` and `val_ccc_<emotion>` (so
  CSVLogger, TensorBoard, EarlyStopping and your own callbacks see them; TensorBoard shows them
  under validation/ as epoch_mean_ccc, epoch_uar, ...). Put it first in the list.
- `BestWeights`: keeps the weights of the best epoch by a logged value, survives a restart (its best
  score is stored beside the weights), and restores them when training ends.
- `ResumableBackup`: Keras's BackupAndRestore with a second, older checkpoint, which starts over
  cleanly if a kill interrupted the very first backup.

Your own callback receives those logs in `on_epoch_end(epoch, logs)`, e.g.

    class PrintHmean(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(epoch, logs["val_hmean"])
"""

import contextlib
import glob
import json
import logging
import os
import shutil

import keras

from vb_keras.evaluation import baseline, scoring
from vb_keras.evaluation.inference import inference_function, predict_batches
from vb_keras.utils import atomic, progress
from vb_keras.schema import LabelSchema


class ValidationScore(keras.callbacks.Callback):
    """Exact challenge metrics on a whole evaluation split after every epoch.

    Tasks the model does not predict take the naive prediction (section 3.3's age fallback), so
    `val_hmean` is defined for single-task models too.

    Args:
      batches: evaluation (features, labels) batches (pipeline.batches(..., training=False)).
      schema: the label schema, with classes.
      naive: `baseline.fit_naive(...)` of the training split.
      split: name used in log lines.
      clips: the number of clips in `batches`, for a progress bar on stderr (0: none).
    """

    def __init__(self, batches, schema: LabelSchema, naive: dict, split: str = "Val",
                 clips: int = 0):
        super().__init__()
        self.batches = batches
        self.clips = clips
        self.schema = schema
        self.naive = naive
        self.split = split
        self.last_result = None
        self._forward = self._forward_model = None

    def evaluate(self):
        if self._forward is None or self._forward_model is not self.model:
            self._forward, self._forward_model = inference_function(self.model), self.model
        batches = self.batches if not self.clips else progress.track(
            self.batches, self.clips, size=lambda batch: len(next(iter(batch[1].values()))),
            label=f"scoring {self.split}")
        y_true, y_pred, _ = predict_batches(self.model, batches, forward=self._forward)
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
    """history.csv (appended to across resumes) with exactly one row per epoch, numbered from 1
    as the log and best.weights.h5.json number them (Keras's CSVLogger numbers from 0).

    A run killed after an epoch's row was written but before that epoch's backup repeats the epoch
    when resumed: the repeated epoch's row then replaces the earlier one instead of following it
    (as does a row cut short by the kill).
    """

    def __init__(self, filename):
        super().__init__(filename, append=True)

    def on_epoch_end(self, epoch, logs=None):
        if self.writer is None:   # the first epoch this fit ends
            self._drop_rows_from(epoch + 1)
        super().on_epoch_end(epoch + 1, logs)

    def _drop_rows_from(self, epoch):
        """Drops the rows of epoch `epoch` (1-based) and later."""
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


# Keras's BackupAndRestore files in a backup directory: the last finished epoch's weights, and its
# number (each with a ".bkp" copy of the one before).
BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"
PREVIOUS_SUFFIX = ".bkp"   # the double checkpoint's copy of the epoch before, beside each file


def backup_epoch(backup_dir, suffix: str = "") -> int:
    """The epochs the backup in `backup_dir` holds (0 if none); with `suffix=PREVIOUS_SUFFIX`, the
    epochs its previous copy holds."""
    try:
        with open(os.path.join(backup_dir, BACKUP_METADATA + suffix)) as stream:
            return int(json.load(stream)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that survives a kill at any moment, and serves multi-worker runs.

    A kill during a backup write leaves an unreadable file: the previous backup (double checkpoint)
    is used then, and if the kill hit the very first backup, training starts over from epoch 0,
    since no epoch had been saved. With `delete_checkpoint=False` the backup outlives training (its
    owner deletes it once everything after training is written too).

    In a multi-worker run every worker saves, because saving takes part in the strategy's
    collectives (it creates variables, which the chief broadcasts); a worker other than the chief
    (`chief=False`) writes into `backup_dir/scratch_<worker>`, removed when it ends, and restores
    the chief's backup, as Keras 2's BackupAndRestore did: to resume, the workers must share the
    directory's file system.
    """

    def __init__(self, backup_dir, delete_checkpoint: bool = True, chief: bool = True,
                 worker: str = "worker"):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint,
                         double_checkpoint=True)
        self.chief = chief
        self.scratch_dir = None if chief else os.path.join(backup_dir, f"scratch_{worker}")

    def _save_model(self):
        if self.chief:
            return super()._save_model()
        names = ("backup_dir", "_weights_path", "_training_metadata_path", "_prev_weights_path",
                 "_prev_training_metadata_path")
        kept = {name: getattr(self, name) for name in names}
        try:
            for name, path in kept.items():
                setattr(self, name, os.path.join(self.scratch_dir, os.path.basename(path))
                        if name != "backup_dir" else self.scratch_dir)
            return super()._save_model()
        finally:
            for name, path in kept.items():
                setattr(self, name, path)

    def on_train_end(self, logs=None):
        if not self.chief:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            with contextlib.suppress(OSError):   # its own backup_dir, where nothing else is kept
                os.rmdir(self.backup_dir)
        return super().on_train_end(logs)

    def on_train_begin(self, logs=None):
        try:
            super().on_train_begin(logs)
        except OSError as error:
            logging.warning("the backup in %s is unreadable (%s): no finished epoch to resume, "
                            "starting over", self.backup_dir, error)
            if not self.chief:
                return   # (the chief clears it)
            for path in glob.glob(os.path.join(self.backup_dir, "*")):
                if os.path.isfile(path):   # (not another worker's scratch directory)
                    os.remove(path)
