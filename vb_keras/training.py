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
epoch (BackupAndRestore) and ends with the requested number of epochs.
"""

import dataclasses
import hashlib
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile

import keras
import pandas as pd
import tensorflow as tf

from vb_keras import atomic, baseline, callbacks as vb_callbacks, evaluation, inputs, losses, plots
from vb_keras.data import exvo
from vb_keras.distribute import is_chief
from vb_keras.errors import UserInputError
from vb_keras.models import heads, multitask
from vb_keras.params import TrainingParams
from vb_keras.schema import AGE, COUNTRY, EMOTION, TASKS, LabelSchema

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
CURVES_FILE = "training_curves.png"


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    history: dict
    validation: evaluation.EvaluationResult


def monitored_metric(tasks) -> tuple:
    """The validation value that picks the best epoch: the challenge score for multitask models,
    the task's own metric for single-task ones."""
    tasks = tuple(tasks)
    if len(tasks) == 1:
        return {EMOTION: ("val_mean_ccc", "max"), COUNTRY: ("val_uar", "max"),
                AGE: ("val_mae", "min")}[tasks[0]]
    return "val_hmean", "max"


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
      params: model and optimisation settings.
      strategy: a tf.distribute strategy (default: the current one).
      callbacks: extra Keras callbacks, run after the package's own (they see the val_* logs).
      on_bad_audio: "skip" or "fail" for unusable audio files.
      settings: extra values to record in config.json (e.g. the command line).
      embedding_cache_root: conformer heads: where embedding caches live (default
        `embedding_cache.default_cache_root()`); a missing cache is extracted first.
    """
    strategy = strategy or tf.distribute.get_strategy()
    tasks = multitask.check_tasks(params.tasks)
    inputs.check_model_name(params.model)
    if os.path.isfile(os.path.join(model_dir, MODEL_FILE)):
        raise UserInputError(f"--model_dir: {model_dir} already holds a trained model")
    if params.batch_size % strategy.num_replicas_in_sync:
        raise UserInputError(f"--batch_size: {params.batch_size} does not split evenly over "
                             f"{strategy.num_replicas_in_sync} replicas")
    os.makedirs(model_dir, exist_ok=True)
    config = _write_config(model_dir, params, schema, data_dir, table, settings)

    keras.utils.set_random_seed(params.seed)
    train_rows = exvo.select_split(table, schema, "Train")
    naive = baseline.fit_naive(train_rows, schema)
    reader = inputs.SplitReader(params, data_dir, table, schema, on_bad_audio, model_dir,
                                embedding_cache_root)
    if reader.cache_info is not None:
        config["embedding_cache"] = dict(reader.cache_info, directory=reader.cache_dir)
    train_batches = reader.batches("Train", training=True).map(
        lambda f, l: (f, {t: l[t] for t in tasks}))
    val_batches = reader.batches("Val", training=False)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if params.mixed_bfloat16 else "float32")
    initial_biases = {EMOTION: naive[EMOTION], AGE: [naive[AGE]]}
    try:
        with strategy.scope():
            if reader.embedding_model:
                model = heads.build_head_model(params.model, reader.embedding_dim, schema, tasks,
                                               initial_biases, dropout=params.dropout)
            else:
                model = multitask.build_model(params.model, schema, tasks, params.dropout,
                                              initial_biases=initial_biases)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    with strategy.scope():
        task_losses = {EMOTION: losses.NegativeMeanCCC(),
                       COUNTRY: keras.losses.CategoricalCrossentropy(),
                       AGE: keras.losses.MeanSquaredError()}
        weights = dict(zip(TASKS, params.loss_weights))
        model.compile(
            optimizer=keras.optimizers.Adam(params.learning_rate, epsilon=params.epsilon),
            loss={task: task_losses[task] for task in tasks},
            loss_weights={task: weights[task] for task in tasks})
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3's fit builds a model created under a strategy from a data batch it reduces
            # across replicas, which fails for this strategy (keras-team/keras#20585). Without the
            # cached strategy it builds while tracing instead, and fit below runs in the scope.
            model._distribute_strategy = None  # pylint: disable=protected-access
            # Keras then averages the step logs over workers with strategy.reduce("MEAN", v,
            # axis=0), which fails on a scalar: hand it each log as a vector of one value.
            model.train_step = _logs_as_vectors(model.train_step)

    monitor, mode = monitored_metric(tasks)
    validation = vb_callbacks.ValidationScore(val_batches, schema, naive)
    chief = is_chief()
    # Every worker keeps and restores the best weights (restoring runs collective ops that all
    # workers must join) and stops early alike; only the chief writes into model_dir.
    weights_dir = model_dir if chief else tempfile.mkdtemp(prefix="vb_keras_worker_")
    best_weights = vb_callbacks.BestWeights(os.path.join(weights_dir, "best.weights.h5"), monitor,
                                            mode)
    package_callbacks = [validation, best_weights]
    if params.early_stopping_patience:
        package_callbacks.append(keras.callbacks.EarlyStopping(
            monitor, mode=mode, patience=params.early_stopping_patience))
    if chief:
        package_callbacks += [
            keras.callbacks.CSVLogger(os.path.join(model_dir, "history.csv"), append=True),
            keras.callbacks.TensorBoard(os.path.join(model_dir, "tensorboard"))]
    package_callbacks.append(vb_callbacks.ResumableBackup(os.path.join(model_dir, "backup")))
    logging.info("training %s (%s) on %d clips; best epoch by %s; settings in %s", params.model,
                 "+".join(tasks), len(train_rows), monitor, os.path.join(model_dir, CONFIG_FILE))
    try:
        with strategy.scope():
            history = model.fit(train_batches, epochs=params.epochs,
                                callbacks=[*package_callbacks, *callbacks],
                                verbose=1 if chief else 0)
    finally:
        if not chief:
            shutil.rmtree(weights_dir, ignore_errors=True)

    result = validation.evaluate()
    if chief:
        _save_model(model, model_dir)
        evaluation.write_json(result, os.path.join(model_dir, "eval_Val.json"))
        config["best_epoch"] = best_weights.best_epoch
        atomic.write_json(os.path.join(model_dir, CONFIG_FILE), config)
        history_table = plots.read_history(model_dir)
        if history_table is not None:
            plots.write_training_curves(history_table, os.path.join(model_dir, CURVES_FILE),
                                        title=f"{params.model} ({'+'.join(tasks)})",
                                        best_epoch=config["best_epoch"])
    return TrainResult(model=model, history=history.history, validation=result)


def _logs_as_vectors(train_step):
    """Wraps a Keras train_step so that every log it returns has shape [1] (see `train`)."""
    def step(data):
        return {name: tf.reshape(value, [1]) for name, value in train_step(data).items()}
    return step


def load_trained(model_dir):
    """(model, config) of a finished model directory."""
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise UserInputError(f"--model_dir: {model_dir} holds no trained model ({MODEL_FILE} missing)")
    with open(os.path.join(model_dir, CONFIG_FILE)) as stream:
        config = json.load(stream)
    config["schema"] = LabelSchema(**config["schema"])
    try:
        model = keras.models.load_model(path)
    except ValueError as error:
        # Keras's safe_mode refuses code stored in the file (a Lambda layer's bytecode), and an
        # unknown layer class fails alike: say which file, in one line, without the traceback.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"{path}: cannot be loaded ({reason})") from None
    return model, config


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
    changed = []
    for key, value in _run_identity(params, schema, table, data_dir).items():
        if key not in previous or previous[key] == value:
            continue
        if key == "training":
            changed += [name for name in value if previous[key].get(name) != value[name]]
        else:
            changed.append(key)
    return sorted(changed)


def _write_config(model_dir, params, schema, data_dir, table, settings):
    path = os.path.join(model_dir, CONFIG_FILE)
    if os.path.isfile(path):
        # data_dir may change on resume: a prepared copy of the same clips is the same data.
        changed = differing_settings(model_dir, params, schema, table)
        if changed:
            raise UserInputError(f"--model_dir: {model_dir} holds an unfinished run with other "
                                 f"settings ({', '.join(changed)}); resume it with the same flags "
                                 "or pick another --model_dir")
        logging.info("resuming the unfinished run in %s", model_dir)
    config = {**_run_identity(params, schema, table, data_dir), "settings": settings or {},
              "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                           "python": sys.version.split()[0]}}
    atomic.write_json(path, config)
    return config


def _save_model(model, model_dir):
    """Saves model.keras atomically (a killed save leaves no half file)."""
    temporary = os.path.join(model_dir, ".partial." + MODEL_FILE)
    model.save(temporary)
    os.replace(temporary, os.path.join(model_dir, MODEL_FILE))
