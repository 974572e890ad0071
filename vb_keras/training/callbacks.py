"""Keras callbacks for vb_keras training; public, so users can reuse them in their own loops.

- `ValidationScore`: the exact challenge metrics on a whole evaluation split after each epoch, added
  to the epoch logs as `val_mean_ccc`, `val_uar`, `val_mae`, `val_hmean` and `val_ccc_<emotion>` (so
  CSVLogger, TensorBoard, EarlyStopping and your own callbacks see them; TensorBoard shows them
  under validation/ as epoch_mean_ccc, epoch_uar, ...). Put it first in the list.
- `BestWeights`: keeps the weights of the best epoch by a logged value, survives a restart (its best
  score is stored beside the weights), and restores them when training ends.
- `ResumableBackup`: Keras's BackupAndRestore with the whole training state (random generators and
  companion callbacks' states included, so a resumed run equals an uninterrupted one), written so
  that a kill at any moment leaves a whole backup or the one before.
- `ResumableEarlyStopping`: Keras's EarlyStopping whose state a `ResumableBackup` keeps.

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
import tempfile

import h5py
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
            state = atomic.read_json(self._state_path(), "the best epoch's score")
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
            atomic.write_weights(self.model, self.weights_path)
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
        try:
            if self.writer is None:   # the first epoch this fit ends
                self._drop_rows_from(epoch + 1)
            super().on_epoch_end(epoch + 1, logs)
        except OSError as error:
            # (A row cut short by a full disk is dropped by the next run, as a killed one's.)
            raise atomic.no_space_error(error, self.filename) or error

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


# A backup directory's files: the last finished epoch's training state, and the epoch number
# (each with a ".bkp" copy of the one before).
BACKUP_WEIGHTS, BACKUP_METADATA = "latest.weights.h5", "training_metadata.json"
PREVIOUS_SUFFIX = ".bkp"   # the copy of the epoch before, beside each file
# The attribute of a backup's weights file holding the rest of the training state (JSON).
STATE_ATTRIBUTE = "vb_keras_training_state"


def backup_epoch(backup_dir, suffix: str = "") -> int:
    """The epochs the backup in `backup_dir` holds (0 if none); with `suffix=PREVIOUS_SUFFIX`, the
    epochs its previous copy holds."""
    state = _backup_state(os.path.join(backup_dir, BACKUP_WEIGHTS + suffix))
    if state is not None:
        return int(state["epoch"])
    try:   # a backup written before the state went into the weights file
        with open(os.path.join(backup_dir, BACKUP_METADATA + suffix)) as stream:
            return int(json.load(stream)["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def _backup_state(weights_path):
    """The training state stored in a backup's weights file, or None (none there, or unreadable)."""
    try:
        with h5py.File(weights_path, "r") as stored:
            return json.loads(stored.attrs[STATE_ATTRIBUTE])
    except (OSError, KeyError, ValueError):
        return None


def random_states(model) -> list:
    """The states of the model's random generators (Keras `SeedGenerator`s: dropout's, ...), which
    Keras's weights files leave out, though the next steps' draws depend on them."""
    return [variable for variable in model.variables
            if variable.path.endswith("seed_generator_state")]


class ResumableBackup(keras.callbacks.BackupAndRestore):
    """Keras's BackupAndRestore, made exact and kill-proof, for single and multi-worker runs.

    A backup is the last finished epoch's whole training state in one file, `latest.weights.h5`:
    the weights and the optimizer's state (as Keras saves them) and, as an attribute, the epoch,
    the states of the model's random generators (`random_states`: without them a resumed run draws
    its first epoch's dropout masks again) and those of the `companions` (callbacks with
    `get_state()` and `set_state(state)`, such as `ResumableEarlyStopping`; the backup must come
    after them in the callback list, as it sets their states in `on_train_begin`). Restored, a
    run goes on exactly where it was; with training data that is a function of the epoch
    (`pipeline.epochs_of`) it ends as an uninterrupted run ends.

    Each backup is written whole to a scratch file (`atomic.write_with`: the free space checked
    first, flushed to the disk); the one before is then renamed to `latest.weights.h5.bkp` and the
    new one into place, so a kill at any moment leaves one of the two whole. A legacy or damaged
    latest file makes the previous one the backup; with neither readable, training starts over.
    `restore` may be called before `fit`, to know the epoch it will start from.

    In a multi-worker run every worker saves, because saving takes part in the strategy's
    collectives (it creates variables, which the chief broadcasts); a worker other than the chief
    (`chief=False`) writes into `backup_dir/scratch_<worker>`, removed when it ends, and restores
    the chief's backup, as Keras 2's BackupAndRestore did: to resume, the workers must share the
    directory's file system.
    """

    def __init__(self, backup_dir, delete_checkpoint: bool = True, chief: bool = True,
                 worker: str = "worker", companions=()):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint,
                         double_checkpoint=True)
        self.chief = chief
        self.scratch_dir = None if chief else os.path.join(backup_dir, f"scratch_{worker}")
        self.companions = list(companions)
        self._restored = None   # (epoch, companion states) once restored

    def restore(self) -> int:
        """Loads the newest readable backup into the model (weights, optimizer, random states);
        returns the epochs it holds (0: none, training starts at the beginning)."""
        if self._restored is not None:
            return self._restored[0]
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)   # (its state is in the file)
        found, problems = False, []
        for suffix in ("", PREVIOUS_SUFFIX):
            path = os.path.join(self.backup_dir, BACKUP_WEIGHTS + suffix)
            if not os.path.isfile(path):
                continue
            found = True
            state = _backup_state(path)
            if state is None:   # written before the state was stored with it
                state = {"epoch": backup_epoch(self.backup_dir, suffix)}
            try:
                load_weights(model, path)
            except (OSError, ValueError) as error:
                problems.append(f"{path}: {str(error).strip().splitlines()[0]}")
                continue
            self._set_random_states(state.get("random_states"))
            self._restored = (int(state["epoch"]), state.get("companions"))
            return self._restored[0]
        if found:
            logging.warning("the backup in %s is unreadable (%s): no finished epoch to resume, "
                            "starting over", self.backup_dir, "; ".join(problems))
            if self.chief:   # (the chief clears it; not another worker's scratch directory)
                for path in glob.glob(os.path.join(self.backup_dir, "*")):
                    if os.path.isfile(path):
                        os.remove(path)
        self._restored = (0, None)
        return 0

    def _set_random_states(self, values):
        variables = random_states(self.model)
        if values is None:
            if variables:
                logging.warning("the backup in %s holds no random-generator states (written by an "
                                "older vb_keras): the resumed run may differ from an "
                                "uninterrupted one", self.backup_dir)
            return
        if len(values) != len(variables):
            raise ValueError(f"the backup in {self.backup_dir} holds {len(values)} random-"
                             f"generator states, the model has {len(variables)}")
        for variable, value in zip(variables, values):
            variable.assign(value)

    def on_train_begin(self, logs=None):
        epoch = self.restore()
        self.model._initial_epoch = epoch   # pylint: disable=protected-access  (as Keras's own)
        self._current_epoch = epoch
        companion_states = self._restored[1]
        if companion_states:
            for companion, state in zip(self.companions, companion_states):
                companion.set_state(state)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._save_model()

    def _save_model(self):
        directory = self.backup_dir if self.chief else self.scratch_dir
        os.makedirs(directory, exist_ok=True)
        latest = os.path.join(directory, BACKUP_WEIGHTS)
        metadata = os.path.join(directory, BACKUP_METADATA)
        state = json.dumps({
            "epoch": self._current_epoch,
            "random_states": [variable.numpy().tolist() for variable in random_states(self.model)],
            "companions": [companion.get_state() for companion in self.companions]},
            default=atomic.jsonable)

        def save(scratch):
            self.model.save_weights(scratch)
            with h5py.File(scratch, "a") as stored:
                stored.attrs[STATE_ATTRIBUTE] = state

        # The epoch before becomes the previous copy (a rename: no space needed, and the one
        # before it goes), then the new backup is written whole and renamed into place.
        for path in (latest, metadata):
            if os.path.exists(path):
                os.replace(path, path + PREVIOUS_SUFFIX)
        optimizer = self.model.optimizer
        needed = atomic.variables_bytes(
            list(self.model.variables) + (list(optimizer.variables) if optimizer else []))
        atomic.write_with(latest, save, suffix=".weights.h5", needed_bytes=needed)
        atomic.write_json(metadata, {"epoch": self._current_epoch, "batch": 0})

    def on_train_end(self, logs=None):
        if not self.chief:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)
            with contextlib.suppress(OSError):   # its own backup_dir, where nothing else is kept
                os.rmdir(self.backup_dir)
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)
        self._restored = None   # (a later fit restores again)


def load_weights(model, path):
    """`model.load_weights(path)`, also for a backup's previous copy, whose name ("...h5.bkp")
    Keras refuses by its extension: that one is read through a copy in a temporary folder (a
    reader may not rename the files of a run it does not own)."""
    if path.endswith(".weights.h5"):
        return model.load_weights(path)
    with tempfile.TemporaryDirectory(prefix="vb_keras_backup_") as scratch:
        copy = os.path.join(scratch, "previous.weights.h5")
        shutil.copyfile(path, copy)
        return model.load_weights(copy)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping whose count of epochs without improvement survives a resume: a
    `ResumableBackup` given it as a companion stores and restores its state, so a resumed run
    stops where an uninterrupted one stops (Keras's own starts counting afresh)."""

    _STATE = ("wait", "best", "best_epoch", "stopped_epoch")

    def get_state(self) -> dict:
        return {name: (None if getattr(self, name) is None else float(getattr(self, name)))
                for name in self._STATE}

    def set_state(self, state: dict):
        for name in self._STATE:
            value = state.get(name)
            if value is not None:
                setattr(self, name, int(value) if name != "best" else value)
