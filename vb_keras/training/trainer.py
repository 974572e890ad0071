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
epoch (`callbacks.ResumableBackup`: weights, optimizer, random generators, early stopping) on that
epoch's own data (`pipeline.epochs_of`), and so ends as an uninterrupted run ends; killed after its
last epoch, it writes the outputs from the backup without training again (model.keras, without the
optimizer's state, is written last). The
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
import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.evaluation import baseline, calibration, naive_fallback, plots, scoring
from vb_keras.evaluation.inference import predict_batches
from vb_keras import tasks as vb_tasks
from vb_keras.families import registry
from vb_keras.families.base import DataSource
from vb_keras.models import losses
from vb_keras.training import callbacks as vb_callbacks
from vb_keras.training import compiling
from vb_keras.utils import atomic, progress
from vb_keras.utils import resume
from vb_keras.utils.run_directory import RunDirectory
from vb_keras.data import exvo
from vb_keras.training import distribute
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema

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
          callbacks=(), on_bad_audio: str = "skip", settings: dict | None = None) -> TrainResult:
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

    A Train split smaller than `params.batch_size` trains on batches of the whole split. A family
    with a warm-up (`ModelFamily.warmup`: the fine-tuned embedders' head on cached embeddings)
    trains it first, into `model_dir/warmup/`, where a rerun finds it.

    Raises:
      UserInputError: bad settings; `model_dir` is finished, unusable, held by another process, or
        holds an unfinished run with other settings.
    """
    strategy = strategy or tf.distribute.get_strategy()
    tasks = vb_tasks.canonical(params.tasks)
    schema.check_tasks(tasks)   # only tasks the data has labels for
    # The family's defaults (e.g. the heads' batch of 128) before config.json records them.
    params = resolved_params(params)
    family = registry.family_of(params)
    if family.check is not None:
        family.check(params)   # before any work: e.g. an embedder that cannot be fine-tuned
    if params.batch_size % strategy.num_replicas_in_sync:
        raise UserInputError(f"--batch_size: {params.batch_size} does not split evenly over "
                             f"{strategy.num_replicas_in_sync} replicas")
    run = _Run(model_dir, params, DataSource(data_dir, table, schema, on_bad_audio, model_dir),
               tasks, strategy, distribute.is_chief(), tuple(callbacks), settings or {})
    # Only the chief writes into model_dir (below), so only it owns it.
    with atomic.owned_by_chief(model_dir, "--model_dir", run.chief, claim=_recorded_run):
        return _train_owned(run)


@dataclasses.dataclass(frozen=True)
class _Run:
    """One call of `train`: where, what, on which data, how."""
    model_dir: str
    params: TrainingParams
    source: DataSource
    tasks: tuple
    strategy: tf.distribute.Strategy
    chief: bool
    callbacks: tuple
    settings: dict

    @property
    def directory(self) -> RunDirectory:
        return RunDirectory(self.model_dir)

    @property
    def backup_dir(self) -> str:
        return self.directory.backup_dir


def _train_owned(run: _Run) -> TrainResult:
    """`train` in a model directory this process holds: nothing else writes into it meanwhile."""
    model_dir, params, schema = run.model_dir, run.params, run.source.schema
    if run.directory.is_finished():
        shutil.rmtree(run.backup_dir, ignore_errors=True)   # a kill after the save may have left it
        raise UserInputError(f"--model_dir: {model_dir} already holds a trained model")
    # Refuse other settings before any work (an embedding extraction can take hours); the
    # settings are written, and bind a rerun, only once training starts (below).
    _check_resumable(model_dir, params, schema, run.source.table)
    warm_model = _warm_model(run)

    keras.utils.set_random_seed(params.seed)
    train_rows = exvo.select_split(run.source.table, schema, "Train")
    naive = baseline.fit_naive(train_rows, schema)
    # The training batches start at the epoch the backup will resume from (`_fit` checks it).
    data = _read_splits(run, vb_callbacks.backup_epoch(run.backup_dir))
    model = _build_model(run, data.reader, _initial_biases(naive),
                         _initial_losses(train_rows, schema, naive))
    family = registry.family_of(params)
    if warm_model is not None:
        family.initialize(model, warm_model)
    with run.strategy.scope():
        compiling.compile_for_tasks(model, run.tasks, registry.optimizer(params),
                                    class_loss=_class_loss(params, train_rows, schema),
                                    loss_weights=params.loss_weights,
                                    task_weighting=(params.task_weighting if len(run.tasks) > 1
                                                    else "fixed"))
        distribute.prepare_for_multi_worker_fit(model, run.strategy)

    validation = vb_callbacks.ValidationScore(
        data.val_batches, schema, naive, clips=data.reader.clip_count("Val") if run.chief else 0)
    config, history, best_epoch = _train_or_finish(run, model, data, validation, len(train_rows))
    result = validation.evaluate()
    if params.calibrate or params.naive_fallback:
        config.update(_post_training(model, run, data.reader, train_rows, naive))
        result = validation.evaluate()
    if run.chief:   # (the backup goes once the outputs are written: the others may still be writing)
        _write_outputs(model, run, config, result, best_epoch)
        shutil.rmtree(run.backup_dir, ignore_errors=True)
    return TrainResult(model=model, history=history, validation=result)


def _warm_model(run: _Run) -> keras.Model | None:
    """The model of the run that starts this one (`ModelFamily.warmup`), trained into
    `model_dir/warmup/` unless a finished one is there; None for a family without one."""
    warm_params = registry.family_of(run.params).warmup
    warm_params = warm_params(run.params) if warm_params else None
    if warm_params is None:
        return None
    warm = run.directory.warmup
    warm_dir = warm.path
    if warm.is_finished():
        changed = differing_settings(warm_dir, resolved_params(warm_params), run.source.schema,
                                     run.source.table)
        if not changed:
            logging.info("starting from the finished warm-up run in %s", warm_dir)
            return keras.models.load_model(warm.model_file, compile=False)
        logging.info("the warm-up run in %s had other settings (%s): training it again",
                     warm_dir, ", ".join(changed))
        shutil.rmtree(warm_dir)
    logging.info("warm-up: training the %s head on the frozen embedder first, in %s",
                 run.params.model, warm_dir)
    source = run.source
    return train(source.data_dir, warm_dir, source.table, source.schema, warm_params,
                 run.strategy, on_bad_audio=source.on_bad_audio, settings=run.settings).model


@dataclasses.dataclass
class _Splits:
    """What training reads: the family's reader, the Train batches from epoch `first_epoch` on
    (`train_from` makes them from another), the Val batches, the schedule, and the values
    config.json records about them."""
    reader: object
    train_batches: tf.data.Dataset
    val_batches: tf.data.Dataset
    schedule: object
    recorded: dict
    first_epoch: int
    train_from: object


def _read_splits(run: _Run, first_epoch: int = 0) -> _Splits:
    """The Train batches from `first_epoch` on and the Val batches of the model's family (for the
    conformer heads, extracting the embeddings first if no cache has them), and how long to train
    on them. Each epoch's Train batches are a function of the seed and the epoch alone
    (`pipeline.epochs_of`), so a resumed run reads what an uninterrupted one reads."""
    params, tasks = run.params, run.tasks
    reader = registry.split_reader(params, run.source)
    batch_size = _train_batch_size(params.batch_size, reader.clip_count("Train"),
                                   run.strategy.num_replicas_in_sync)
    schedule = params.schedule(reader.clip_count("Train") // batch_size)   # full batches only

    def train_from(epoch):
        return reader.batches("Train", training=True, batch_size=batch_size,
                              steps_per_epoch=schedule.steps_per_epoch, first_epoch=epoch).map(
            lambda f, l: (f, {t: l[t] for t in tasks}))

    train_batches = train_from(first_epoch)
    # (after the Train batches: a reader may choose its settings from the data, e.g. the crop)
    recorded = {"train_batch_size": batch_size, "schedule": dataclasses.asdict(schedule),
                **reader.recorded}
    return _Splits(reader, train_batches, reader.batches("Val", training=False), schedule,
                   recorded, first_epoch, train_from)


def _initial_biases(naive: dict) -> dict:
    """Starting biases of the task layers: the training-mean emotions and the median training
    age, so training does not spend its first steps finding the label scale."""
    biases = {task: value for task, value in ((EMOTION, naive.get(EMOTION)), (AGE, naive.get(AGE)))
              if value is not None}
    if AGE in biases:
        biases[AGE] = [biases[AGE]]
    return biases


def _initial_losses(train_rows, schema, naive) -> dict:
    """Each task's loss at the start, where the task layers answer as the naive prediction does
    (`_initial_biases`): 1 - mean CCC = 1 for the emotions, the cross-entropy of a uniform answer
    for the class, the age's mean squared deviation from the median over Train."""
    rows = train_rows[train_rows[exvo.LABELLED]]
    initial = {EMOTION: 1.0, COUNTRY: float(np.log(max(schema.num_classes or 1, 2)))}
    if AGE in naive and len(rows):
        ages = rows[schema.age_column].to_numpy(np.float64)
        initial[AGE] = float(np.nanmean((ages - naive[AGE]) ** 2))
    return initial


def _build_model(run: _Run, reader, initial_biases, initial_losses) -> keras.Model:
    """The uncompiled model in the strategy's scope, under the run's dtype policy (which is set
    only while building: it is global to Keras), with the learnt task weights of
    `losses.with_uncertainty_weighting` where the run weighs tasks so."""
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if run.params.mixed_bfloat16 else "float32")
    try:
        with run.strategy.scope():
            model = registry.build_model(run.params, reader, run.source.schema, run.tasks,
                                         initial_biases)
            if run.params.task_weighting == "uncertainty" and len(run.tasks) > 1:
                model = losses.with_uncertainty_weighting(model, initial_losses)
            return model
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _post_training(model, run: _Run, reader, train_rows, naive) -> dict:
    """After training, on the Val predictions: the emotion outputs rescaled where that holds up
    on Val (`calibration`), then a linear task the model answers worse than the naive prediction
    answering with it (`naive_fallback`), each folded into its output layer. Returns what
    config.json records of them."""
    schema, params = run.source.schema, run.params
    y_true, y_pred, ids = predict_batches(model, reader.batches("Val", training=False,
                                                                keep_ids=True))
    recorded = {}
    if params.calibrate and EMOTION in y_pred:
        val_rows = exvo.select_split(run.source.table, schema, "Val").set_index(
            schema.id_column)
        speakers = val_rows.loc[ids, schema.speaker_column].to_numpy(str)
        labelled = train_rows[train_rows[exvo.LABELLED]]
        fitted = calibration.fit_on_val(
            y_true[EMOTION], y_pred[EMOTION], speakers,
            labelled[list(schema.emotion_columns)].to_numpy(np.float64))
        logging.info("emotion calibration: %s", fitted.summary())
        if fitted.applied:
            calibration.fold_into_layer(_find_layer(model, EMOTION), fitted)
            y_pred[EMOTION] = fitted.apply(y_pred[EMOTION])
        recorded["calibration"] = fitted.to_dict()
    if params.naive_fallback:
        replaced = naive_fallback.tasks_to_replace(y_true, y_pred, naive, schema)
        for task, figures in replaced.items():
            logging.warning("%s: the model's Val %s (%.4f) is no better than the naive "
                            "prediction's (%.4f); it answers with the naive prediction "
                            "(--nonaive_fallback keeps the model's)", task,
                            vb_tasks.task(task).figure, figures["val_model"],
                            figures["val_naive"])
            naive_fallback.fold_constant(_find_layer(model, task), naive[task])
        recorded["naive_fallback"] = replaced
    return recorded


def _find_layer(model: keras.Model, name: str):
    """The layer called `name` in `model` or in a model nested in it (a fine-tuned embedder's
    head), depth first."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            with contextlib.suppress(ValueError):
                return _find_layer(layer, name)
    raise ValueError(f"{model.name} has no layer {name!r}")


def _train_or_finish(run: _Run, model, data: _Splits, validation, train_clips) -> tuple:
    """Fits the model (resuming from a backup), or, when an earlier call's training had ended but
    its outputs were not all written, loads its final weights. Returns (config, history of the
    epochs this call trained, best epoch)."""
    # Every worker keeps and restores the best weights (restoring runs collective ops that all
    # workers must join) and stops early alike; only the chief writes into model_dir itself, the
    # others into a scratch folder of the backup, which a resumed worker reads again and the
    # chief's final clean-up removes whatever became of the worker.
    weights_dir = (run.model_dir if run.chief else
                   os.path.join(run.backup_dir, f"best_{distribute.task_name()}"))
    os.makedirs(weights_dir, exist_ok=True)
    monitor, mode = monitored_metric(run.tasks)
    best_weights = vb_callbacks.BestWeights(RunDirectory(weights_dir).best_weights_file, monitor,
                                            mode)
    trained_path = os.path.join(run.backup_dir, TRAINED_WEIGHTS)
    source = run.source
    try:
        if os.path.isfile(trained_path):
            # Training ended, but a kill came before the outputs were all written: finish them
            # from its final weights instead of training again.
            logging.info("training in %s had ended; writing its outputs", run.model_dir)
            config = _new_config(run.params, source.schema, source.table, source.data_dir,
                                 run.settings, **data.recorded)
            with run.strategy.scope():   # (the file holds the optimizer's state: Keras warns if unbuilt)
                model.optimizer.build(model.trainable_variables)
            model.load_weights(trained_path)
            validation.set_model(model)
            history = {}   # the epochs this call trained, as for any resumed run
        else:
            config = _write_config(run.model_dir, run.params, source.schema, source.data_dir,
                                   source.table, run.settings, **data.recorded)
            history = _fit(run, model, data, validation, best_weights, train_clips).history
            # Kept until the outputs are written: a kill before then resumes here, not at epoch 1.
            if run.chief:
                save_weights(model, trained_path)
    finally:
        if not run.chief:
            shutil.rmtree(weights_dir, ignore_errors=True)
            with contextlib.suppress(OSError):   # the worker's own backup/, if nothing else is there
                os.rmdir(os.path.dirname(weights_dir))
    return config, history, best_weights.best_epoch


def _write_outputs(model, run: _Run, config, result, best_epoch):
    """eval_Val.json, config.json with the best epoch, the training curves, and last model.keras,
    which marks the run finished."""
    directory, params = run.directory, run.params
    scoring.write_json(result, directory.eval_file("Val"))
    config["best_epoch"] = best_epoch
    directory.write_config(config)
    history_table = plots.read_history(directory.path)
    if history_table is not None:
        plots.write_training_curves(history_table, directory.curves_file,
                                    title=f"{params.model} ({'+'.join(run.tasks)})",
                                    best_epoch=config["best_epoch"])
    _save_model(model, directory.path)   # last: model.keras marks the run finished


def _fit(run: _Run, model, data: _Splits, validation, best_weights, train_clips):
    params, model_dir, schedule = run.params, run.model_dir, data.schedule
    monitor, mode = monitored_metric(run.tasks)
    package_callbacks = [validation, best_weights]
    companions = []
    if schedule.patience:
        companions.append(vb_callbacks.ResumableEarlyStopping(
            monitor, mode=mode, patience=schedule.patience, min_delta=params.min_improvement))
        package_callbacks += companions
    if run.chief:
        package_callbacks += [
            vb_callbacks.HistoryLogger(run.directory.history_file),
            keras.callbacks.TensorBoard(run.directory.tensorboard_dir)]
    # The backup outlives fit (see `_train_owned`), so its deletion is left to the caller. It is
    # restored now, so that the data start at the epoch it holds.
    backup = vb_callbacks.ResumableBackup(
        run.backup_dir, delete_checkpoint=False, chief=run.chief, worker=distribute.task_name(),
        companions=companions)
    package_callbacks.append(backup)
    backup.set_model(model)
    with run.strategy.scope():
        first_epoch = backup.restore()
    train_batches = data.train_batches
    if first_epoch != data.first_epoch:   # (its latest copy was unreadable: an older one is used)
        train_batches = data.train_from(first_epoch)
    logging.info("training %s (%s, %s) on %d clips: up to %d epochs of %d steps, stopping after "
                 "%s; best epoch by %s; settings in %s", params.model, "+".join(params.tasks),
                 registry.family_of(params).name, train_clips, schedule.epochs,
                 schedule.steps_per_epoch,
                 f"{schedule.patience} epochs without a better one" if schedule.patience
                 else "the last", monitor, run.directory.config_file)
    with run.strategy.scope():
        return model.fit(train_batches, epochs=schedule.epochs, initial_epoch=first_epoch,
                         steps_per_epoch=schedule.steps_per_epoch,
                         callbacks=[*package_callbacks, *run.callbacks],
                         verbose=progress.fit_verbosity(run.chief),
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
    identity = {"training": registry.binding_settings(params),
                "schema": json.loads(schema.to_json()), "splits": split_digest(table, schema)}
    if data_dir is not None:
        identity["data_dir"] = os.path.abspath(data_dir)
    return json.loads(json.dumps(identity))   # tuples as lists, as read back from the file


def differing_settings(model_dir, params: TrainingParams, schema: LabelSchema,
                       table: pd.DataFrame, data_dir=None) -> list:
    """The settings the run in `model_dir` was started with other values of, sorted: training
    fields by name (epochs, ...), then schema, splits and (when given) data_dir as wholes. A
    config.json written before splits were recorded is not compared on them."""
    previous = RunDirectory(model_dir).read_config()
    current = _run_identity(resolved_params(params), schema, table, data_dir)
    # (as this version records them: a config written before the families' own settings reads
    # the same)
    previous["training"] = registry.binding_settings(
        registry.params_from_dict(previous["training"]))
    previous = json.loads(json.dumps(previous))
    changed = resume.differing_keys(previous, current, [key for key in current if key in previous])
    if "training" in changed:   # by field, those the current TrainingParams has; the family's
        changed.remove("training")   # by the names of their flags
        old, new = previous["training"], current["training"]
        changed += resume.differing_keys(old, new, [key for key in new if key != "family"])
        old_family, new_family = old.get("family") or {}, new.get("family") or {}
        if old_family.get("type") != new_family.get("type"):
            changed.append("model family")
        else:
            changed += resume.differing_keys(old_family, new_family, new_family)
    return sorted(changed)


def _recorded_run(model_dir) -> bool:
    """Whether `model_dir` holds the settings of a run (config.json), as a directory this module
    wrote before it marked its directories does (`atomic.owned_directory`'s claim)."""
    try:
        return "training" in atomic.read_json(RunDirectory(model_dir).config_file)
    except (OSError, UserInputError, TypeError):
        return False


def finished_an_epoch(model_dir) -> bool:
    """Whether the run in `model_dir` got as far as ending an epoch (a backup, a history row or
    best weights). One that never did holds nothing worth resuming."""
    directory = RunDirectory(model_dir)
    return (any(os.path.isfile(os.path.join(directory.backup_dir, name)) for name in (
                vb_callbacks.BACKUP_METADATA,
                vb_callbacks.BACKUP_METADATA + vb_callbacks.PREVIOUS_SUFFIX,
                TRAINED_WEIGHTS))
            or os.path.isfile(directory.best_weights_file)
            or plots.read_history(model_dir) is not None)


def _check_resumable(model_dir, params, schema, table):
    """Refuses to resume a run started with other settings; a run that never finished an epoch
    (one that failed to start, or was killed in its first epoch) binds nothing and starts afresh."""
    if not RunDirectory(model_dir).has_config():
        return
    if not finished_an_epoch(model_dir):
        logging.info("%s holds a run that never finished an epoch: starting afresh", model_dir)
        return
    # data_dir may change on resume: a prepared copy of the same clips is the same data.
    resume.refuse_other_settings("--model_dir", model_dir,
                                 differing_settings(model_dir, params, schema, table))
    logging.info("resuming the unfinished run in %s", model_dir)


def _new_config(params, schema, table, data_dir, settings, **extra) -> dict:
    """config.json: the run's identity (`_run_identity`), everything else its training recorded
    (every setting, those a rerun may change too), the settings given and the versions."""
    return {**_run_identity(params, schema, table, data_dir),
            "training": registry.params_to_dict(params), "settings": settings or {},
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": sys.version.split()[0]}, **extra}


def _write_config(model_dir, params, schema, data_dir, table, settings=None, **extra) -> dict:
    """Writes config.json as a run starts training (from then on it binds a rerun's settings)."""
    config = _new_config(params, schema, table, data_dir, settings, **extra)
    RunDirectory(model_dir).write_config(config)
    return config


def save_weights(model, path):
    """Saves weights atomically (a killed save or a full disk leaves no half file)."""
    atomic.write_weights(model, path)


def _save_model(model, model_dir):
    """Saves model.keras atomically (a killed save or a full disk leaves no half file).

    The file holds the model, its weights and its compile settings, never the optimizer's state
    (its moments would triple its size): it is what a user copies around to evaluate, export or
    fine-tune, and a run resumes from its backup, not from it. A run finished by a rerun after a
    kill (whose optimizer never stepped) writes the same file.
    """
    trained_optimizer = model.optimizer
    model.optimizer = keras.optimizers.deserialize(keras.optimizers.serialize(trained_optimizer))
    try:
        atomic.write_with(RunDirectory(model_dir).model_file, model.save, suffix=".keras",
                          needed_bytes=atomic.variables_bytes(model.variables))
    finally:
        model.optimizer = trained_optimizer
