"""Training a task model (sections 2.1 and 2.2): data -> model in strategy.scope() -> fit.

`train` is the Python API behind bin/train. A model directory ends up holding:
  model.keras         the model with the weights of the best validation epoch
  config.json         the settings actually used (training params, schema with classes, data)
  history.csv         per-epoch losses and validation metrics (appended across restarts)
  eval_Val.json       the evaluation of model.keras on the validation split
  training_curves.png losses and validation figures per epoch, the kept epoch marked
  best.weights.h5(+.json)  the best epoch so far; tensorboard/ logs; backup/ while a run is unfinished
  bad_audio.csv       clips left out, if any
A run killed at any point and started again with the same arguments resumes from its last finished
epoch (BackupAndRestore) and ends with the requested number of epochs; killed after its last epoch,
it writes the outputs from the backup without training again (model.keras is written last). The
settings bind a rerun only once an epoch has ended: a run that failed to start leaves no trap.
While a run writes its model directory, it holds it (`atomic.owned_directory`): a second run into
the same directory is refused.
"""

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
import sys

import keras
import pandas as pd
import tensorflow as tf

from vb_keras.evaluation import baseline, plots, scoring
from vb_keras import tasks as vb_tasks
from vb_keras.models import losses, registry
from vb_keras.training import callbacks as vb_callbacks
from vb_keras.training import compiling
from vb_keras.utils import atomic, progress
from vb_keras.utils import resume
from vb_keras.data import exvo
from vb_keras.training import distribute
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import AGE, EMOTION, TASKS, LabelSchema

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
CURVES_FILE = "training_curves.png"
BACKUP_DIR = "backup"
# In backup/: the weights training ended with, kept until the outputs are all written.
TRAINED_WEIGHTS = "trained.weights.h5"


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    history: dict
    validation: scoring.EvaluationResult


def _class_loss(params: TrainingParams, train_rows: pd.DataFrame, schema: LabelSchema):
    """Cross-entropy for the class output; with `params.balanced_classes`, each class weighted by
    the inverse of its share of the labelled Train clips (`losses.balanced_class_weights`)."""
    if not params.balanced_classes or not schema.class_column:
        return keras.losses.CategoricalCrossentropy()
    labels = train_rows.loc[train_rows[exvo.LABELLED], schema.class_column]
    counts = labels.value_counts()
    weights = losses.balanced_class_weights([counts.get(name, 0) for name in schema.classes])
    logging.info("class loss weights (balanced over Train): %s", ", ".join(
        f"{name} {weight:.2f}" for name, weight in zip(schema.classes, weights)))
    return losses.BalancedCategoricalCrossentropy(weights)


def monitored_metric(tasks) -> tuple:
    """The validation value that picks the best epoch: the challenge score for multitask models,
    the task's own metric for single-task ones."""
    tasks = tuple(tasks)
    if len(tasks) == 1:
        return vb_tasks.task(tasks[0]).monitor
    return "val_hmean", "max"


def resolved_params(params: TrainingParams) -> TrainingParams:
    """`params` as `train` runs and records them: the model family's defaults (`registry`) for
    the settings left None, e.g. a batch of 128 for the conformer heads, 64 for the ResNets.

    Raises:
      UserInputError: an unknown model.
    """
    return registry.with_defaults(params)


def load_callback(spec: str) -> keras.callbacks.Callback:
    """Instantiates a callback named "package.module.Class" (with no arguments)."""
    module_name, _, class_name = spec.rpartition(".")
    try:
        callback_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise UserInputError(f"--callbacks: cannot import {spec!r} ({error})") from None
    callback = callback_class()
    if not isinstance(callback, keras.callbacks.Callback):
        raise UserInputError(f"--callbacks: {spec} is not a keras.callbacks.Callback")
    return callback


def train(data_dir, model_dir, table: pd.DataFrame, schema: LabelSchema,
          params: TrainingParams = TrainingParams(), strategy: tf.distribute.Strategy | None = None,
          callbacks=(), on_bad_audio: str = "skip", settings: dict | None = None,
          embedding_cache_root: str | None = None) -> TrainResult:
    """Trains `params.model` on the Train split of `table` and validates on its Val split.

    Args:
      data_dir: the data directory (raw HUME-VB layout or prepared TFRecords).
      model_dir: output directory (see the module docstring); a finished one is refused.
      table, schema: from `exvo.read_and_split` (the split scheme already applied).
      params: model and optimisation settings; those left None take the model family's
        defaults (`resolved_params`).
      strategy: a tf.distribute strategy (default: the current one).
      callbacks: extra Keras callbacks, run after the package's own (they see the val_* logs).
      on_bad_audio: "skip" or "fail" for unusable audio files.
      settings: extra values to record in config.json (e.g. the command line).
      embedding_cache_root: conformer heads: where embedding caches live (default
        `embedding_cache.default_cache_root()`); a missing cache is extracted first.

    A Train split smaller than `params.batch_size` trains on batches of the whole split.

    Raises:
      UserInputError: bad settings; `model_dir` is finished, unusable, held by another process, or
        holds an unfinished run with other settings.
    """
    strategy = strategy or tf.distribute.get_strategy()
    tasks = vb_tasks.canonical(params.tasks)
    schema.check_tasks(tasks)   # only tasks the data has labels for
    # The family's defaults (e.g. the heads' batch of 128) before config.json records them.
    params = resolved_params(params)
    if params.batch_size % strategy.num_replicas_in_sync:
        raise UserInputError(f"--batch_size: {params.batch_size} does not split evenly over "
                             f"{strategy.num_replicas_in_sync} replicas")
    chief = distribute.is_chief()
    # Only the chief writes into model_dir (below), so only it owns it.
    with atomic.owned_by_chief(model_dir, "--model_dir", chief):
        return _train_owned(data_dir, model_dir, table, schema, params, strategy, callbacks,
                            on_bad_audio, settings, embedding_cache_root, tasks, chief)


def _train_owned(data_dir, model_dir, table, schema, params, strategy, callbacks, on_bad_audio,
                 settings, embedding_cache_root, tasks, chief):
    """`train` in a model directory this process holds: nothing else writes into it meanwhile."""
    backup_dir = os.path.join(model_dir, BACKUP_DIR)
    if os.path.isfile(os.path.join(model_dir, MODEL_FILE)):
        shutil.rmtree(backup_dir, ignore_errors=True)   # a kill after the save may have left it
        raise UserInputError(f"--model_dir: {model_dir} already holds a trained model")
    # Refuse other settings before any work (an embedding extraction can take hours); the
    # settings are written, and bind a rerun, only once training starts (below).
    _check_resumable(model_dir, params, schema, table)

    keras.utils.set_random_seed(params.seed)
    train_rows = exvo.select_split(table, schema, "Train")
    naive = baseline.fit_naive(train_rows, schema)
    data = _read_splits(params, data_dir, table, schema, tasks, on_bad_audio, model_dir,
                        embedding_cache_root, strategy.num_replicas_in_sync)
    model = _build_model(params, data.reader, schema, tasks, _initial_biases(naive), strategy)
    with strategy.scope():
        compiling.compile_for_tasks(model, tasks, params.learning_rate, params.epsilon,
                                    class_loss=_class_loss(params, train_rows, schema),
                                    loss_weights=dict(zip(TASKS, params.loss_weights)))
        distribute.prepare_for_multi_worker_fit(model, strategy)

    monitor, mode = monitored_metric(tasks)
    validation = vb_callbacks.ValidationScore(
        data.val_batches, schema, naive, clips=data.reader.clip_count("Val") if chief else 0)
    config, history, best_epoch = _train_or_finish(
        model, data, params, schema, table, data_dir, settings, model_dir, monitor, mode,
        validation, callbacks, strategy, chief, len(train_rows))
    result = validation.evaluate()
    if chief:   # (the backup goes once the outputs are written: the others may still be writing)
        _write_outputs(model, model_dir, config, result, best_epoch, params, tasks)
        shutil.rmtree(backup_dir, ignore_errors=True)
    return TrainResult(model=model, history=history, validation=result)


@dataclasses.dataclass
class _Splits:
    """What training reads: the family's reader, the Train and Val batches, the schedule, and
    the values config.json records about them."""
    reader: object
    train_batches: tf.data.Dataset
    val_batches: tf.data.Dataset
    schedule: object
    recorded: dict


def _read_splits(params, data_dir, table, schema, tasks, on_bad_audio, model_dir,
                 embedding_cache_root, replicas) -> _Splits:
    """The Train and Val batches of the model's family (for the conformer heads, extracting the
    embeddings first if no cache has them), and how long to train on them."""
    reader = registry.split_reader(params, data_dir, table, schema, on_bad_audio, model_dir,
                                   embedding_cache_root)
    batch_size = _train_batch_size(params.batch_size, reader.clip_count("Train"), replicas)
    schedule = params.schedule(reader.clip_count("Train") // batch_size)   # full batches only
    train_batches = reader.batches("Train", training=True, batch_size=batch_size).map(
        lambda f, l: (f, {t: l[t] for t in tasks}))
    # (after the Train batches: a reader may choose its settings from the data, e.g. the crop)
    recorded = {"train_batch_size": batch_size, "schedule": dataclasses.asdict(schedule),
                **reader.recorded}
    return _Splits(reader, train_batches, reader.batches("Val", training=False), schedule,
                   recorded)


def _initial_biases(naive: dict) -> dict:
    """Starting biases of the task layers: the training-mean emotions and the median training
    age, so training does not spend its first steps finding the label scale."""
    biases = {task: value for task, value in ((EMOTION, naive.get(EMOTION)), (AGE, naive.get(AGE)))
              if value is not None}
    if AGE in biases:
        biases[AGE] = [biases[AGE]]
    return biases


def _build_model(params, reader, schema, tasks, initial_biases, strategy) -> keras.Model:
    """The uncompiled model in the strategy's scope, under the run's dtype policy (which is set
    only while building: it is global to Keras)."""
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if params.mixed_bfloat16 else "float32")
    try:
        with strategy.scope():
            return registry.build_model(params, reader, schema, tasks, initial_biases)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _train_or_finish(model, data, params, schema, table, data_dir, settings, model_dir, monitor,
                     mode, validation, callbacks, strategy, chief, train_clips) -> tuple:
    """Fits the model (resuming from a backup), or, when an earlier call's training had ended but
    its outputs were not all written, loads its final weights. Returns (config, history of the
    epochs this call trained, best epoch)."""
    # Every worker keeps and restores the best weights (restoring runs collective ops that all
    # workers must join) and stops early alike; only the chief writes into model_dir itself, the
    # others into a scratch folder of the backup, which a resumed worker reads again and the
    # chief's final clean-up removes whatever became of the worker.
    weights_dir = (model_dir if chief else
                   os.path.join(model_dir, BACKUP_DIR, f"best_{distribute.task_name()}"))
    os.makedirs(weights_dir, exist_ok=True)
    best_weights = vb_callbacks.BestWeights(os.path.join(weights_dir, "best.weights.h5"), monitor,
                                            mode)
    trained_path = os.path.join(model_dir, BACKUP_DIR, TRAINED_WEIGHTS)
    try:
        if os.path.isfile(trained_path):
            # Training ended, but a kill came before the outputs were all written: finish them
            # from its final weights instead of training again.
            logging.info("training in %s had ended; writing its outputs", model_dir)
            config = _new_config(params, schema, table, data_dir, settings, **data.recorded)
            model.load_weights(trained_path)
            validation.set_model(model)
            history = {}   # the epochs this call trained, as for any resumed run
        else:
            config = _write_config(model_dir, params, schema, data_dir, table, settings,
                                   **data.recorded)
            history = _fit(model, data.train_batches, params, data.schedule, model_dir, monitor,
                           mode, validation, best_weights, callbacks, strategy, chief,
                           train_clips).history
            # Kept until the outputs are written: a kill before then resumes here, not at epoch 1.
            if chief:
                save_weights(model, trained_path)
    finally:
        if not chief:
            shutil.rmtree(weights_dir, ignore_errors=True)
            with contextlib.suppress(OSError):   # the worker's own backup/, if nothing else is there
                os.rmdir(os.path.dirname(weights_dir))
    return config, history, best_weights.best_epoch


def _write_outputs(model, model_dir, config, result, best_epoch, params, tasks):
    """eval_Val.json, config.json with the best epoch, the training curves, and last model.keras,
    which marks the run finished."""
    scoring.write_json(result, os.path.join(model_dir, "eval_Val.json"))
    config["best_epoch"] = best_epoch
    atomic.write_json(os.path.join(model_dir, CONFIG_FILE), config)
    history_table = plots.read_history(model_dir)
    if history_table is not None:
        plots.write_training_curves(history_table, os.path.join(model_dir, CURVES_FILE),
                                    title=f"{params.model} ({'+'.join(tasks)})",
                                    best_epoch=config["best_epoch"])
    _save_model(model, model_dir)   # last: model.keras marks the run finished


def _fit(model, train_batches, params, schedule, model_dir, monitor, mode, validation,
         best_weights, callbacks, strategy, chief, train_clips):
    package_callbacks = [validation, best_weights]
    if schedule.patience:
        package_callbacks.append(keras.callbacks.EarlyStopping(monitor, mode=mode,
                                                               patience=schedule.patience))
    if chief:
        package_callbacks += [
            vb_callbacks.HistoryLogger(os.path.join(model_dir, "history.csv")),
            keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard"))]
    # The backup outlives fit (see `_train_owned`), so its deletion is left to the caller.
    package_callbacks.append(vb_callbacks.ResumableBackup(
        os.path.join(model_dir, BACKUP_DIR), delete_checkpoint=False, chief=chief,
        worker=distribute.task_name()))
    logging.info("training %s (%s) on %d clips: up to %d epochs of %d steps, stopping after %s; "
                 "best epoch by %s; settings in %s", params.model, "+".join(params.tasks),
                 train_clips, schedule.epochs, schedule.steps_per_epoch,
                 f"{schedule.patience} epochs without a better one" if schedule.patience
                 else "the last", monitor, os.path.join(model_dir, CONFIG_FILE))
    # An epoch may be longer than a pass (a small Train split): the passes then run on.
    train_batches = train_batches.repeat()
    with strategy.scope():
        return model.fit(train_batches, epochs=schedule.epochs,
                         steps_per_epoch=schedule.steps_per_epoch,
                         callbacks=[*package_callbacks, *callbacks],
                         verbose=progress.fit_verbosity(chief),
                         shuffle=False)   # (the pipeline shuffles; True only makes Keras warn)


def _train_batch_size(requested: int, clips: int, replicas: int) -> int:
    """The training batch size: `requested`, or, for a Train split smaller than that, the whole
    split (rounded down to a multiple of the replicas). Training batches are full (a partial batch
    is dropped), so a batch larger than the split would leave no step at all; one batch of the
    whole split is the closest to what was asked for, and keeps e.g. a conformer head's default of
    128 usable on a small data set."""
    if clips < replicas or clips < 1:
        raise UserInputError(f"the Train split has {clips} clip(s): too few to train on "
                             f"{replicas} replica(s)")
    if requested <= clips:
        return requested
    batch_size = clips - clips % replicas
    logging.warning("--batch_size: %d is more than the %d Train clips; training on batches of %d "
                    "(the whole split)", requested, clips, batch_size)
    return batch_size


def split_digest(table: pd.DataFrame, schema: LabelSchema) -> str:
    """A digest of which clips form Train and Val, so that a run is resumed or reused only on the
    split it started on (a different --split_scheme, --split_seed or data set changes it)."""
    rows = table[table[schema.split_column].isin(("Train", "Val"))]
    lines = sorted(f"{clip}\t{split}" for clip, split in
                   zip(rows[schema.id_column].astype(str), rows[schema.split_column]))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _run_identity(params, schema, table, data_dir=None) -> dict:
    """The parts of config.json that must match for a run to be resumed or reused."""
    identity = {"training": dataclasses.asdict(params), "schema": json.loads(schema.to_json()),
                "splits": split_digest(table, schema)}
    if data_dir is not None:
        identity["data_dir"] = os.path.abspath(data_dir)
    return json.loads(json.dumps(identity))   # tuples as lists, as read back from the file


def differing_settings(model_dir, params: TrainingParams, schema: LabelSchema,
                       table: pd.DataFrame, data_dir=None) -> list:
    """The settings the run in `model_dir` was started with other values of, sorted: training
    fields by name (epochs, ...), then schema, splits and (when given) data_dir as wholes. A
    config.json written before splits were recorded is not compared on them."""
    with open(os.path.join(model_dir, CONFIG_FILE)) as stream:
        previous = json.load(stream)
    current = _run_identity(params, schema, table, data_dir)
    changed = resume.differing_keys(previous, current, [key for key in current if key in previous])
    if "training" in changed:   # by field, those the current TrainingParams has
        changed.remove("training")
        changed += resume.differing_keys(previous["training"], current["training"],
                                         current["training"])
    return sorted(changed)


def finished_an_epoch(model_dir) -> bool:
    """Whether the run in `model_dir` got as far as ending an epoch (a backup, a history row or
    best weights). One that never did holds nothing worth resuming."""
    backup = os.path.join(model_dir, BACKUP_DIR)
    return (any(os.path.isfile(os.path.join(backup, name)) for name in (
                vb_callbacks.BACKUP_METADATA,
                vb_callbacks.BACKUP_METADATA + vb_callbacks.PREVIOUS_SUFFIX,
                TRAINED_WEIGHTS))
            or os.path.isfile(os.path.join(model_dir, "best.weights.h5"))
            or plots.read_history(model_dir) is not None)


def _check_resumable(model_dir, params, schema, table):
    """Refuses to resume a run started with other settings; a run that never finished an epoch
    (one that failed to start, or was killed in its first epoch) binds nothing and starts afresh."""
    if not os.path.isfile(os.path.join(model_dir, CONFIG_FILE)):
        return
    if not finished_an_epoch(model_dir):
        logging.info("%s holds a run that never finished an epoch: starting afresh", model_dir)
        return
    # data_dir may change on resume: a prepared copy of the same clips is the same data.
    changed = differing_settings(model_dir, params, schema, table)
    if changed:
        raise UserInputError(f"--model_dir: {model_dir} holds an unfinished run with other "
                             f"settings ({', '.join(changed)}); resume it with the same flags "
                             "or pick another --model_dir")
    logging.info("resuming the unfinished run in %s", model_dir)


def _new_config(params, schema, table, data_dir, settings, **extra) -> dict:
    return {**_run_identity(params, schema, table, data_dir), "settings": settings or {},
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": sys.version.split()[0]}, **extra}


def _write_config(model_dir, params, schema, data_dir, table, settings, **extra) -> dict:
    """Writes config.json as a run starts training (from then on it binds a rerun's settings)."""
    config = _new_config(params, schema, table, data_dir, settings, **extra)
    atomic.write_json(os.path.join(model_dir, CONFIG_FILE), config)
    return config


def save_weights(model, path):
    """Saves weights atomically (a killed save leaves no half file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path.replace(".weights.h5", ".tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, path)


def _save_model(model, model_dir):
    """Saves model.keras atomically (a killed save leaves no half file)."""
    temporary = os.path.join(model_dir, ".partial." + MODEL_FILE)
    model.save(temporary)
    os.replace(temporary, os.path.join(model_dir, MODEL_FILE))
