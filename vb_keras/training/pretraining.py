"""Pre-training of the section 2.2 Conformer on unlabelled audio (bin/pretrain): self-supervised
with wav2vec 2.0 (`wav2vec2`), distilled from a teacher embedder (`distillation`), or both.

`pretrain` is the Python API behind bin/pretrain. A pre-training directory ends up holding:
  pretrained.weights.h5  the Wav2Vec2Pretrainer's weights after the last step (written last)
  config.json            the settings actually used (bind a rerun once an epoch has ended)
  history.csv            per-epoch losses, contrastive accuracy, codebook perplexity, temperature
  training_curves.png    the same, drawn
  tensorboard/           the same per epoch, for TensorBoard; backup/ while a run is unfinished
  bad_audio.csv          clips left out, if any
  teacher_targets.npz    when distilling: the teacher's embeddings of the audio's chunks
A run killed at any moment and started again with the same arguments resumes from its last finished
epoch (the masks and distractors of a step are seeded by the step, so it draws what an uninterrupted
run would). `bin/export_embedder --weights=<this directory> --layer=N` turns the result into a
TF-Hub-style embedder for the conformer heads.
"""

import dataclasses
import json
import logging
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from vb_keras.data import unlabelled
from vb_keras.errors import UserInputError
from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.params import WindowParams
from vb_keras.evaluation import plots
from vb_keras.models import conformer, embedders, hub
from vb_keras.training import callbacks as vb_callbacks
from vb_keras.training import distillation, trainer, wav2vec2
from vb_keras.training import distribute
from vb_keras.utils import atomic, progress, resume
from vb_keras.utils import run_directory
from vb_keras.utils.run_directory import RunDirectory

# The run directory's model file (instead of model.keras); the rest as bin/train's (RunDirectory).
WEIGHTS_FILE = "pretrained.weights.h5"
MIN_EPOCH_STEPS = 50
PAPER_STEPS = 400000   # wav2vec 2.0 BASE's updates (Baevski et al., 2020, section 4.2)
METHODS = ("auto", "wav2vec2", "distillation", "both")


@dataclasses.dataclass(frozen=True)
class PretrainingParams:
    """Settings of a pre-training run.

    Attributes:
      config: the Conformer configuration (`conformer.CONFORMER_CONFIGS`: "small", "cap12").
      objective: the wav2vec 2.0 objective's settings (`wav2vec2.Wav2Vec2Params`).
      steps: optimiser updates in all (wav2vec 2.0 BASE: 400,000 on 64 GPUs; a CPU can afford a few
        thousand of the small Conformer an hour).
      batch_size: crops per update (global, split across replicas).
      clip_seconds: crop length; shorter clips are zero-padded and masked as padding. Distilling,
        the length of the chunks (windows); default: 4 s crops (wav2vec 2.0), or with a teacher the
        2.5 s windows the conformer heads read (`WindowParams`), so the student learns what it will
        be given.
      learning_rate: peak rate (5e-4, wav2vec 2.0 BASE), reached after a linear warm-up over
        `warmup_share` of the steps (8% in BASE), then a cosine decay to 0 (BASE decays linearly).
      weight_decay: AdamW's (0.01, BASE); epsilon: Adam's (1e-6, fairseq's wav2vec 2.0 recipe).
      max_minutes: stop after this many minutes of this process's training (0: no limit); a rerun
        goes on from the last finished epoch.
      seed: seeds the weights, crops, masks, distractors and Gumbel noise.
      mixed_bfloat16: compute in bfloat16 (variables and the objective's statistics stay float32).
      teacher: a TF-Hub-style embedder to distil (a directory, or a TF Hub / Kaggle handle or URL:
        `embedders.load`); "" for none.
      method: "wav2vec2", "distillation" (needs a teacher), "both" (the losses added), or "auto":
        distillation with a teacher, wav2vec 2.0 without.
      distillation_weight: the distillation loss's weight when both are on.
    """
    config: str = "small"
    objective: wav2vec2.Wav2Vec2Params = wav2vec2.Wav2Vec2Params()
    steps: int = 5000
    batch_size: int = 16
    clip_seconds: float | None = None
    learning_rate: float = 5e-4
    warmup_share: float = 0.08
    weight_decay: float = 0.01
    epsilon: float = 1e-6
    max_minutes: float = 0.0
    seed: int = 0
    mixed_bfloat16: bool = False
    teacher: str = ""
    method: str = "auto"
    distillation_weight: float = 1.0

    def __post_init__(self):
        # Each message starts with the field's name, which is also bin/pretrain's flag's.
        if self.method not in METHODS:
            raise ValueError(f"method: {self.method!r} is not one of {', '.join(METHODS)}")
        if self.method in ("distillation", "both") and not self.teacher:
            raise ValueError(f"method: {self.method} needs a teacher embedder")
        if self.method == "wav2vec2" and self.teacher:
            raise ValueError("teacher: method wav2vec2 does not use a teacher (method both adds "
                             "the distillation loss)")
        if self.config not in conformer.CONFORMER_CONFIGS:
            raise ValueError(f"config: unknown Conformer configuration {self.config!r}; "
                             f"choose one of {', '.join(sorted(conformer.CONFORMER_CONFIGS))}")
        if isinstance(self.objective, dict):
            object.__setattr__(self, "objective", wav2vec2.Wav2Vec2Params(**self.objective))
        if self.clip_seconds is None:
            object.__setattr__(self, "clip_seconds", WindowParams().window_seconds if self.teacher
                               else 4.0)
        for name in ("steps", "batch_size", "clip_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        if not 0 <= self.warmup_share < 1:
            raise ValueError(f"warmup_share: must lie in [0, 1), got {self.warmup_share}")
        if self.max_minutes < 0 or self.distillation_weight < 0:
            raise ValueError("max_minutes, distillation_weight: must not be negative")

    @property
    def contrastive(self) -> bool:
        """Whether the wav2vec 2.0 objective is on."""
        return self.method in ("wav2vec2", "both") or (self.method == "auto" and not self.teacher)

    def learning_rate_schedule(self, total_steps: int):
        """Linear warm-up over `warmup_share` of `total_steps`, then cosine decay to 0."""
        warmup = int(round(self.warmup_share * total_steps))
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else self.learning_rate, decay_steps=max(total_steps - warmup, 1),
            warmup_target=self.learning_rate if warmup else None, warmup_steps=warmup)

    def objective_for(self, total_steps: int) -> wav2vec2.Wav2Vec2Params:
        """The objective, its temperature annealed over the paper's share of `total_steps` unless
        `objective.anneal_steps` was set."""
        if self.objective.anneal_steps != wav2vec2.PAPER_ANNEAL_STEPS:
            return self.objective
        share = wav2vec2.PAPER_ANNEAL_STEPS / PAPER_STEPS
        return dataclasses.replace(self.objective,
                                   anneal_steps=max(int(round(share * total_steps)), 1))


class TimeBudget(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that ends after `minutes` of training."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds = minutes * 60
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds and time.monotonic() - self.started >= self.seconds:
            logging.info("--max_minutes: %.0f minutes of training reached after epoch %d; run "
                         "again to go on", self.seconds / 60, epoch + 1)
            self.model.stop_training = True


def pretrain(output_dir, params: PretrainingParams = PretrainingParams(), data_dir=None,
             audio=(), strategy: tf.distribute.Strategy | None = None, callbacks=(),
             on_bad_audio: str = "skip", settings: dict | None = None) -> dict:
    """Pre-trains a Conformer with wav2vec 2.0 on the audio of `data_dir` and/or `audio`.

    Args:
      output_dir: the run's directory (see the module docstring); a finished one is refused.
      params: the settings.
      data_dir: a data directory (every split, labels unused) or a prepared TFRecord directory.
      audio: audio files and folders (searched recursively).
      strategy: a tf.distribute strategy (default: the current one).
      callbacks: extra Keras callbacks, run after the package's own.
      settings: extra values recorded in config.json (e.g. the command line).

    Returns:
      the history of the epochs this call trained ({name: [per-epoch values]}).
    """
    strategy = strategy or tf.distribute.get_strategy()
    if params.batch_size % strategy.num_replicas_in_sync:
        raise UserInputError(f"--batch_size: {params.batch_size} does not split evenly over "
                             f"{strategy.num_replicas_in_sync} replicas")
    chief = distribute.is_chief()
    with atomic.owned_by_chief(output_dir, "--output_dir", chief,   # (as trainer.train)
                               claim=_recorded_run):
        return _pretrain_owned(output_dir, params, data_dir, audio, strategy, callbacks,
                               on_bad_audio, settings, chief)


def _recorded_run(output_dir) -> bool:
    """Whether `output_dir` holds a pre-training run's settings (see `trainer._recorded_run`)."""
    try:
        return "pretraining" in atomic.read_json(RunDirectory(output_dir).config_file)
    except (OSError, UserInputError, TypeError):
        return False


def _identity(params, data_dir, audio) -> dict:
    """The settings a rerun must repeat to go on with a run (a time budget is not one of them)."""
    settings = {name: value for name, value in dataclasses.asdict(params).items()
                if name != "max_minutes"}
    settings["teacher"] = hub.recorded(params.teacher) if params.teacher else ""
    return json.loads(json.dumps({
        "pretraining": settings,
        "data_dir": os.path.abspath(data_dir) if data_dir else None,
        "audio": [os.path.abspath(path) for path in audio]}))


def _check_resumable(output_dir, identity):
    """Refuses to go on with a run started with other settings."""
    directory = RunDirectory(output_dir)
    if not directory.has_config():
        return
    previous = directory.read_config()
    resume.refuse_other_settings("--output_dir", output_dir,
                                 resume.differing_keys(previous, identity, keys=identity))
    logging.info("resuming the unfinished pre-training run in %s", output_dir)


def _pretrain_owned(output_dir, params, data_dir, audio, strategy, callbacks, on_bad_audio,
                    settings, chief):
    if os.path.isfile(os.path.join(output_dir, WEIGHTS_FILE)):
        shutil.rmtree(RunDirectory(output_dir).backup_dir, ignore_errors=True)   # a kill after the save
        raise UserInputError(f"--output_dir: {output_dir} already holds a finished pre-training "
                             f"run ({WEIGHTS_FILE})")
    identity = _identity(params, data_dir, audio)
    _check_resumable(output_dir, identity)
    teacher = (embedders.load(params.teacher, flag="--teacher") if params.teacher
               else None)
    keras.utils.set_random_seed(params.seed)
    waveforms = unlabelled.waveforms_of(data_dir, audio, on_bad_audio, output_dir)
    train_clips, held_out = unlabelled.split_off(waveforms)
    clip_samples = int(round(params.clip_seconds * 16000))
    if teacher:
        # Distillation learns from fixed chunks, each with the teacher's embedding of it.
        train_set, held_set, standardization = _distillation_examples(
            output_dir, teacher, train_clips, held_out, params.clip_seconds, chief)
        unit, examples = "chunks", len(train_set[0])
    else:
        unit, examples = "clips", len(train_clips)
    batch_size = min(params.batch_size, examples - examples % strategy.num_replicas_in_sync)
    if batch_size < params.batch_size:
        logging.warning("--batch_size: %d is more than the %d training %s; using %d",
                        params.batch_size, examples, unit, batch_size)
    # An epoch (a backup, a history row) is a pass or MIN_EPOCH_STEPS updates, whichever is more.
    steps_per_epoch = min(max(examples // batch_size, MIN_EPOCH_STEPS), params.steps)
    epochs = math.ceil(params.steps / steps_per_epoch)
    total_steps = epochs * steps_per_epoch
    objective = params.objective_for(total_steps)

    def train_from(epoch):
        """The training batches from `epoch` on, each epoch a function of (seed, epoch) alone
        (`pipeline.epochs_of`), so a resumed run reads what an uninterrupted one reads."""
        if teacher:
            return distillation.batches(*train_set, batch_size, params.seed,
                                        steps_per_epoch=steps_per_epoch, first_epoch=epoch)
        return unlabelled.batches(train_clips, batch_size, clip_samples, params.seed,
                                  steps_per_epoch=steps_per_epoch, first_epoch=epoch)

    backup_dir = RunDirectory(output_dir).backup_dir
    first_epoch = vb_callbacks.backup_epoch(backup_dir)   # (checked once the model is built)
    train = train_from(first_epoch)
    if teacher:
        validation = (distillation.batches(*held_set, batch_size, training=False)
                      if len(held_set[0]) else None)
    else:
        validation = (unlabelled.batches(held_out, batch_size, clip_samples, training=False)
                      if held_out else None)

    validation = distribute.on_every_worker(validation, strategy)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16" if params.mixed_bfloat16 else "float32")
    try:
        with strategy.scope():
            model = wav2vec2.Wav2Vec2Pretrainer(
                params.config, objective, seed=params.seed,
                teacher_dim=teacher.dimension if teacher else 0, contrastive=params.contrastive,
                distillation_weight=params.distillation_weight)
            model.build_from_batch(next(iter(train.take(1))))
            if teacher:
                model.set_teacher_standardization(*standardization)
            model.compile(optimizer=keras.optimizers.AdamW(
                params.learning_rate_schedule(total_steps), weight_decay=params.weight_decay,
                epsilon=params.epsilon))
            distribute.prepare_for_multi_worker_fit(model, strategy)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    config = {**identity, "settings": settings or {}, "clips": len(waveforms),
              "held_out_clips": len(held_out),
              "teacher_dim": teacher.dimension if teacher else 0,
              "train_examples": examples,
              "train_batch_size": batch_size,
              "steps_per_epoch": steps_per_epoch, "epochs": epochs,
              "objective": dataclasses.asdict(objective),
              "parameters": int(model.count_params())}
    if chief:
        RunDirectory(output_dir).write_config(config)
    method = _method_text(params, teacher.description if teacher else "")
    logging.info("pre-training the %s Conformer (%s parameters) by %s on %d %s "
                 "(%d clips held out): %d epochs of %d steps at batch %d", params.config,
                 f"{model.count_params():,}", method,
                 config["train_examples"], unit, config["held_out_clips"], epochs,
                 steps_per_epoch, batch_size)
    backup = vb_callbacks.ResumableBackup(backup_dir, delete_checkpoint=False, chief=chief,
                                          worker=distribute.task_name())
    backup.set_model(model)
    with strategy.scope():
        resumed = backup.restore()
    if resumed != first_epoch:   # (its latest copy was unreadable: an older one is used)
        first_epoch, train = resumed, train_from(resumed)
    package_callbacks = [backup]
    if chief:
        package_callbacks += [
            vb_callbacks.HistoryLogger(RunDirectory(output_dir).history_file),
            keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard"))]
    if params.max_minutes:
        package_callbacks.append(TimeBudget(params.max_minutes))
    with strategy.scope():
        history = model.fit(train, epochs=epochs, steps_per_epoch=steps_per_epoch,
                            initial_epoch=first_epoch, validation_data=validation,
                            callbacks=[*package_callbacks, *callbacks],
                            verbose=progress.fit_verbosity(chief),
                            shuffle=False)   # (the pipeline shuffles; True only makes Keras warn)
    finished = int(model.optimizer.iterations.numpy()) >= epochs * steps_per_epoch
    if chief:
        table = plots.read_history(output_dir)
        if table is not None:
            plots.write_training_curves(table, RunDirectory(output_dir).curves_file,
                                        title=f"{method}, {params.config} Conformer")
        if finished:
            trainer.save_weights(model, os.path.join(output_dir, WEIGHTS_FILE))   # last: marks it done
            shutil.rmtree(RunDirectory(output_dir).backup_dir, ignore_errors=True)
    return history.history


def _method_text(params, teacher: str) -> str:
    """How `params` pre-train, in words, the teacher named `teacher`."""
    distilled = f"distillation from {teacher}" if params.teacher else ""
    if not params.contrastive:
        return distilled
    return "wav2vec 2.0" + (f" and {distilled}" if distilled else "")


def _distillation_examples(output_dir, teacher, train_clips, held_out, seconds,
                           chief: bool) -> tuple:
    """((train chunks, standardised targets), (held-out chunks, targets), (mean, scale))."""
    window = WindowParams(window_seconds=seconds, min_tail_seconds=min(
        WindowParams().min_tail_seconds, seconds))
    train_pieces = distillation.chunks(train_clips, window)
    held_pieces = distillation.chunks(held_out, window)
    targets = distillation.load_or_compute_targets(
        output_dir, teacher, np.concatenate([train_pieces, held_pieces]),
        {"teacher": teacher.identity, "window": [window.window_seconds, window.min_tail_seconds],
         "clips": len(train_clips) + len(held_out)}, progress=chief, store=chief)
    train_targets, held_targets = targets[:len(train_pieces)], targets[len(train_pieces):]
    mean, scale = distillation.standardization(train_targets)
    return ((train_pieces, (train_targets - mean) / scale),
            (held_pieces, (held_targets - mean) / scale), (mean, scale))


@dataclasses.dataclass(frozen=True)
class PretrainedRun:
    """A pre-training directory read back once: its settings, and which weights stand for it.

    Attributes:
      run_dir: the directory.
      params: its `PretrainingParams`.
      config: its config.json.
      weights: the weights file read: the final weights, or for a run stopped early (by
        --max_minutes or a kill) its backup's last finished epoch.
      epoch: the epochs those weights finished.
    """
    run_dir: str
    params: PretrainingParams
    config: dict
    weights: str
    epoch: int

    @property
    def finished(self) -> bool:
        return self.epoch >= self.config["epochs"]

    @property
    def state(self) -> str:
        """"finished", or how far a run stopped early got (e.g. "stopped after epoch 6 of 7")."""
        if self.finished:
            return "finished"
        return f"stopped after epoch {self.epoch} of {self.config['epochs']}"

    @property
    def method(self) -> str:
        """How the run was pre-trained, in words (e.g. "wav2vec 2.0")."""
        return _method_text(self.params, self.params.teacher)


def load_pretrained(run_dir) -> tuple:
    """(Wav2Vec2Pretrainer with its weights, PretrainedRun) of a pre-training directory: its final
    weights, or those of the last finished epoch of a run stopped early (by --max_minutes or a
    kill). A run going on beside the reader may be rewriting its backup: the backup's previous
    copy (`ResumableBackup`'s) is read then, one epoch older."""
    directory = RunDirectory(run_dir)
    candidates = _weights_candidates(run_dir)
    if not (candidates and directory.has_config()):
        raise UserInputError(f"--weights: {run_dir} holds no pre-training run that finished an "
                             f"epoch ({WEIGHTS_FILE}, {run_directory.BACKUP_DIR}/ or "
                             f"{run_directory.CONFIG_FILE} missing)")
    config = directory.read_config()
    params = PretrainingParams(**config["pretraining"])
    objective = wav2vec2.Wav2Vec2Params(**config["objective"])
    teacher_dim = config.get("teacher_dim", 0)
    model = wav2vec2.Wav2Vec2Pretrainer(params.config, objective, seed=params.seed,
                                        teacher_dim=teacher_dim, contrastive=params.contrastive,
                                        distillation_weight=params.distillation_weight)
    batch = {WAVEFORM: tf.zeros([1, 16000]), NUM_SAMPLES: tf.constant([16000])}
    if teacher_dim:
        batch[distillation.TEACHER] = tf.zeros([1, teacher_dim])
    model.build_from_batch(batch)
    problems = []
    for weights, epoch in candidates:
        try:
            vb_callbacks.load_weights(model, weights)
        except (OSError, ValueError) as error:   # half written, or being written
            problems.append(f"{weights}: {str(error).splitlines()[0]}")
            continue
        return model, PretrainedRun(run_dir, params, config, weights,
                                    config["epochs"] if epoch is None else epoch)
    raise UserInputError(f"--weights: {run_dir}: no weights file could be read "
                         f"({'; '.join(problems)})")


def _weights_candidates(run_dir) -> list:
    """[(weights file, epochs it finished, None for all)] to read, best first: the final weights,
    else the backup's latest and previous epochs."""
    final = os.path.join(run_dir, WEIGHTS_FILE)
    if os.path.isfile(final):
        return [(final, None)]
    backup_dir = RunDirectory(run_dir).backup_dir
    candidates = []
    for suffix in ("", vb_callbacks.PREVIOUS_SUFFIX):
        weights = os.path.join(backup_dir, vb_callbacks.BACKUP_WEIGHTS + suffix)
        epoch = vb_callbacks.backup_epoch(backup_dir, suffix)
        if os.path.isfile(weights) and epoch:
            candidates.append((weights, epoch))
    return candidates


def embedder_from_pretraining(run_dir, output_layer: int | None = None) -> keras.Model:
    """`embedders.build_conformer_embedder`'s model with the pre-trained weights of `run_dir`, its
    embedding the mean output of block `output_layer` (default: the configuration's)."""
    return embedder_from_pretrainer(*load_pretrained(run_dir), output_layer)


def embedder_from_pretrainer(pretrainer, run: PretrainedRun,
                             output_layer: int | None = None) -> keras.Model:
    """`embedder_from_pretraining` of a run already read by `load_pretrained`.

    A distilled run's embedding at the configuration's embedding layer goes through the student's
    projection, so the embedder embeds in the teacher's space (`distillation`); any other layer's
    is the plain mean.
    """
    params = run.params
    layer = output_layer or conformer.CONFORMER_CONFIGS[params.config].embedding_layer
    if len(pretrainer.blocks) < layer <= pretrainer.config.num_layers:
        raise UserInputError(f"--layer: {run.run_dir} was distilled into blocks 1 to "
                             f"{len(pretrainer.blocks)} of the {params.config} Conformer only")
    projected = pretrainer.teacher_dim and layer == pretrainer.config.embedding_layer
    model = embedders.build_conformer_embedder(
        params.config, params.seed, output_layer,
        projection_dim=pretrainer.teacher_dim if projected else 0)
    encoder = model.get_layer(embedders.encoder_name(params.config, output_layer))
    wav2vec2.encoder_weights(pretrainer, encoder, layer)
    if projected:
        kernel, bias = pretrainer.distill_proj.get_weights()
        model.get_layer(embedders.PROJECTION).set_weights(distillation.unstandardized_projection(
            kernel, bias, *(np.asarray(v) for v in pretrainer.teacher_standardization)))
    return model
