"""Frozen settings, one dataclass per concern; derived values are properties (YAMNet `params.py`).

Values default to section 2 of Belanich et al. (2022): 16 kHz audio, log-mel with a 64 ms window and a
24 ms hop, 128 mel bands from 0 to 8 kHz for the ResNets; 80 bands for the Conformer.
"""

import dataclasses
import math

from vb_keras import tasks as vb_tasks

SAMPLE_RATE = 16000
# Each task's loss weight in section 2.1 (`Task.loss_weight`).
DEFAULT_LOSS_WEIGHTS = {name: task.loss_weight for name, task in vb_tasks.REGISTRY.items()}


@dataclasses.dataclass(frozen=True)
class FrontendParams:
    """Log-mel front end.

    Attributes:
        sample_rate: rate of the waveform the front end receives (the pipeline resamples to it).
        window_seconds: STFT window (64 ms in section 2.1).
        hop_seconds: STFT hop (24 ms in section 2.1).
        num_mel_bins: mel bands (128 for the ResNets, 80 for the Conformer).
        lower_edge_hz, upper_edge_hz: mel filter bank range (0 to 8 kHz in section 2.1).
        log_offset: added to mel magnitudes before the log, as in YAMNet, so silence stays finite.
        normalization: "minmax" rescales each clip to [-1, 1] from its minimum and maximum (ResNets,
            section 2.1); "int16" scales [-1, 1] audio to +-32768 (Conformer, section 2.2).
    """
    sample_rate: int = SAMPLE_RATE
    window_seconds: float = 0.064
    hop_seconds: float = 0.024
    num_mel_bins: int = 128
    lower_edge_hz: float = 0.0
    upper_edge_hz: float = 8000.0
    log_offset: float = 0.001
    normalization: str = "minmax"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if not 0 <= self.lower_edge_hz < self.upper_edge_hz <= self.sample_rate / 2:
            raise ValueError(
                    f"mel range [{self.lower_edge_hz}, {self.upper_edge_hz}] Hz must lie in [0, Nyquist]")

    @property
    def window_length_samples(self) -> int:
        return int(round(self.sample_rate * self.window_seconds))

    @property
    def hop_length_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_seconds))

    @property
    def fft_length(self) -> int:
        """Smallest power of two that holds the window (1024 for 64 ms at 16 kHz)."""
        return 2 ** (self.window_length_samples - 1).bit_length()

    def num_frames(self, num_samples: int) -> int:
        """Frames the front end makes from `num_samples` (a clip shorter than a window gives one)."""
        return 1 + max(0, num_samples - self.window_length_samples) // self.hop_length_samples


NORMALIZATIONS = ("minmax", "int16")

# Section 2.1: ResNet input.
RESNET_FRONTEND = FrontendParams()
# Section 2.2 gives only "80-bin log mel"; the 25 ms window and 10 ms hop are the Conformer
# literature's (Gulati et al., 2020), not the paper's.
CONFORMER_FRONTEND = FrontendParams(
        window_seconds=0.025, hop_seconds=0.010, num_mel_bins=80, normalization="int16")


@dataclasses.dataclass(frozen=True)
class PipelineParams:
    """tf.data settings.

    Attributes:
        batch_size: clips per batch (64 for the ResNets in section 2.1).
        clip_seconds: training clips are randomly cropped or zero-padded to this length. HUME-VB clips
            run 0.5-10 s with a mean of 2.2 s, so 4 s keeps nearly all of most clips while bounding memory.
        seed: seeds shuffling and cropping, so an epoch is reproducible (`pipeline.epochs_of`: each
            pass a whole-split permutation).
    """
    batch_size: int = 64
    clip_seconds: float = 4.0
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * SAMPLE_RATE))


# The default training length (`TrainingParams.schedule`): a budget of optimiser steps, so that
# small and large data sets alike train until Val stops improving, at a bounded cost.
AUTO_STEPS = 10000
AUTO_MIN_EPOCHS = 30
AUTO_PATIENCE_STEPS = 500
AUTO_MIN_PATIENCE = 10
MIN_EPOCH_STEPS = 50
# Early stopping counts an epoch as better only if it gains more than this in the monitored Val
# figure (a fifth of a point of CCC, UAR or their harmonic mean): smaller gains, within Val's
# epoch-to-epoch noise, do not repay the patience's worth of further epochs.
MIN_IMPROVEMENT = 0.002


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A run's length: `epochs` of `steps_per_epoch` optimiser steps (more than a pass over Train
    for a small one, see `TrainingParams.schedule`), stopping after `patience` epochs without a
    better Val score (0: never)."""
    epochs: int
    steps_per_epoch: int
    patience: int


TASK_WEIGHTINGS = ("fixed", "uncertainty")


@dataclasses.dataclass(frozen=True)
class TrainingParams:
    """Model and optimisation settings (section 2.1 defaults).

    Attributes:
      model: a model name of `families.registry.MODEL_NAMES` (resnet18/34/50, the conformer
        heads).
      tasks: outputs to train; all three is multitask (hard parameter sharing), one is single-task.
      family: the settings of the model's family only (a config of `vb_keras.families`:
        `ResNetConfig`, `FrozenEmbedderConfig`, `FineTunedEmbedderConfig`); None (the default):
        the family's defaults for `model`, resolved by `registry.with_defaults`.
      epochs: passes over the training split; None (the default): as many as the data needs,
        see `schedule`.
      batch_size: global batch (split across replicas); None (the default): the model family's,
        64 for the ResNets (section 2.1), 128 for the conformer heads (section 2.2), resolved by
        `registry.with_defaults` before training records it.
      learning_rate: Adam's; None (the default): the model family's, 3e-4 for the ResNets and the
        heads on frozen embedders (section 2.1), 1e-3 for the heads on fine-tuned embedders,
        resolved by `registry.with_defaults`.
      epsilon: Adam's (1e-8 in section 2.1).
      loss_weights: {task: weight}; the default is each task's `Task.loss_weight` (5.0 / 0.05 /
        0.05 in section 2.1). With `task_weighting` "uncertainty" they are not used.
      task_weighting: "fixed" (the paper's: `loss_weights`) or "uncertainty": each task's loss
        weighted by a learnt homoscedastic uncertainty (Kendall, Gal & Cipolla, CVPR 2018;
        `losses.UncertaintyWeighting`).
      dropout: before the task layers; the paper does not give the rate.
      early_stopping_patience: epochs without a better validation score before stopping; 0 never
        stops early; None (the default): see `schedule` (never, when `epochs` is given).
      min_improvement: how much better (in the monitored Val figure) an epoch must be to count
        as better for early stopping (`MIN_IMPROVEMENT`): a smaller gain is not worth more
        epochs. The best epoch is still the best, however small its lead.
      balanced_classes: weight the class loss by inverse class frequency over Train, so that it
        tracks UAR; a departure from the paper's plain cross-entropy (see docs/user_guide.md, Training).
      calibrate: after training, rescale each emotion output so that its Val predictions take the
        Train labels' mean and spread, where that holds up on Val (`calibration`); a departure
        from the paper.
      naive_fallback: after training, a linear task (emotion, age) whose Val figure is no better
        than the naive prediction's answers with the naive prediction (`naive_fallback`), as the
        paper's submission answered age with the median (section 3.3).
      seed: seeds weights, shuffling and cropping.
      mixed_bfloat16: compute the trunk in bfloat16 (variables, front end and outputs stay float32);
        1.5-1.8x faster for ResNet34/50 on this AVX512_BF16 CPU, not for ResNet18
        (benchmarks/train_throughput.py).
    """
    model: str = "resnet18"
    tasks: tuple = ("emotion", "country", "age")
    family: object = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    epsilon: float = 1e-8
    loss_weights: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_LOSS_WEIGHTS))
    task_weighting: str = "fixed"
    dropout: float = 0.3
    early_stopping_patience: int | None = None
    min_improvement: float = MIN_IMPROVEMENT
    balanced_classes: bool = True
    calibrate: bool = True
    naive_fallback: bool = True
    seed: int = 0
    mixed_bfloat16: bool = False

    def __post_init__(self):
        object.__setattr__(self, "tasks", tuple(self.tasks))
        weights = self.loss_weights
        if not isinstance(weights, dict):   # (task order, as configs before per-task weights)
            weights = dict(zip(("emotion", "country", "age"), weights))
        object.__setattr__(self, "loss_weights", {**DEFAULT_LOSS_WEIGHTS,
                                                  **{k: float(v) for k, v in weights.items()}})
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be positive, got {self.epochs}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 0:
            raise ValueError("early_stopping_patience must not be negative, got "
                             f"{self.early_stopping_patience}")
        if self.min_improvement < 0:
            raise ValueError(f"min_improvement must not be negative, got {self.min_improvement}")
        unknown = set(self.loss_weights) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown or min(self.loss_weights.values()) < 0:
            raise ValueError(f"loss_weights must be non-negative weights of "
                             f"{', '.join(DEFAULT_LOSS_WEIGHTS)}, got {self.loss_weights}")
        if self.task_weighting not in TASK_WEIGHTINGS:
            raise ValueError(f"task_weighting must be one of {', '.join(TASK_WEIGHTINGS)}, got "
                             f"{self.task_weighting!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    def __hash__(self):   # (the loss weights are a dict)
        return hash(repr(self))

    def schedule(self, steps_per_pass: int) -> "Schedule":
        """How long to train, for `steps_per_pass` optimiser steps a pass over Train.

        The paper gives no training length. A fixed number of passes is a number of optimiser
        steps that shrinks with the data: 30 passes are ~9,400 steps on HUME-VB's 20,000 Train
        clips at batch 64, but 60 steps on EmoDB's 278 clips at the heads' batch 128, which leaves
        the task layers near their starting values under Adam's 3e-4. So by default (`epochs`
        None) an epoch is a pass or `MIN_EPOCH_STEPS` steps, whichever is more (Val is scored
        and a backup written once an epoch), a run lasts `AUTO_STEPS` steps' worth of epochs but
        at least `AUTO_MIN_EPOCHS`, and it stops once Val has not improved for
        `AUTO_PATIENCE_STEPS` steps' worth but at least `AUTO_MIN_PATIENCE` epochs; the best
        epoch is restored either way. Given `epochs` are passes, run in full unless
        `early_stopping_patience` is given too.
        """
        steps_per_pass = max(int(steps_per_pass), 1)
        if self.epochs:
            patience = self.early_stopping_patience or 0
            return Schedule(self.epochs, steps_per_pass, patience)
        steps = max(steps_per_pass, MIN_EPOCH_STEPS)
        patience = self.early_stopping_patience
        if patience is None:
            patience = max(math.ceil(AUTO_PATIENCE_STEPS / steps), AUTO_MIN_PATIENCE)
        return Schedule(max(math.ceil(AUTO_STEPS / steps), AUTO_MIN_EPOCHS), steps, patience)


@dataclasses.dataclass(frozen=True)
class WindowParams:
    """How a clip becomes a sequence of embeddings for the frozen embedders (section 2.2).

    Attributes:
      window_seconds: length of the non-overlapping windows ("approximately 2.5 s" in section 2.2).
      min_tail_seconds: the last, partial window is zero-padded to full length and kept if it holds
        at least this much audio, so a short remainder does not yield an embedding of near-silence.
        (The paper does not say; a clip shorter than this still gets its one window.)
    """
    window_seconds: float = 2.5
    min_tail_seconds: float = 0.5

    def __post_init__(self):
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}")
        if not 0 <= self.min_tail_seconds <= self.window_seconds:
            raise ValueError(f"min_tail_seconds must lie in [0, window_seconds], got "
                             f"{self.min_tail_seconds}")

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * SAMPLE_RATE))

    @property
    def min_tail_samples(self) -> int:
        return int(round(self.min_tail_seconds * SAMPLE_RATE))

    def num_windows(self, num_samples: int) -> int:
        full, tail = divmod(int(num_samples), self.window_samples)
        return max(1, full + int(tail > 0 and tail >= self.min_tail_samples))
