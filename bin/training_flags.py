"""Training flags shared by bin/train and bin/experiment, and the TrainingParams they make."""

from absl import flags
from absl import logging

if __package__:  # installed: vb_keras_bin
    from . import choices, common_flags
else:            # a checkout: bin/
    import choices
    import common_flags
from vb_keras import params
from vb_keras.params import TrainingParams

_DEFAULTS = TrainingParams()
# The per-family defaults (epochs on the demo data, batch size) are the registry's.
_RESNETS, _HEADS = (choices.FAMILY_DEFAULTS[name] for name in ("ResNets", "conformer heads"))


def define_training_flags(seed: bool = True):
    """Data handling and optimisation flags (section 2.1 defaults); `--seed` unless `seed` is False."""
    flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout before the task layers.")
    flags.DEFINE_float("clip_seconds", _DEFAULTS.clip_seconds,
                       "ResNets: training clips are randomly cropped or zero-padded to this length "
                       "in seconds. Default: fitted to the Train clips, the shortest multiple of "
                       f"{choices.FITTED_CLIP_STEP_SECONDS} s that holds "
                       f"{round(100 * choices.FITTED_CLIP_SHARE)}% of them whole, at most "
                       f"{choices.MAX_FITTED_CLIP_SECONDS} s.")
    common_flags.define_on_bad_audio_flag()
    flags.DEFINE_integer("epochs", None, "Passes over the training split. Default: until Val stops "
                         "improving: epochs of a pass or "
                         f"{params.MIN_EPOCH_STEPS} optimiser steps (whichever is more), "
                         f"{params.AUTO_STEPS} steps' worth but at least {params.AUTO_MIN_EPOCHS}, "
                         "stopping early (--early_stopping_patience), the best epoch restored; on "
                         f"the embedded demo data {_RESNETS['demo_epochs']} for ResNets, "
                         f"{_HEADS['demo_epochs']} for heads.", lower_bound=1)
    flags.DEFINE_integer("batch_size", None, f"Global batch size (default {_RESNETS['batch_size']} "
                         f"for ResNets, {_HEADS['batch_size']} for the conformer heads).",
                         lower_bound=1)
    flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Adam learning rate.",
                       lower_bound=0)
    flags.DEFINE_float("adam_epsilon", _DEFAULTS.epsilon, "Adam epsilon.", lower_bound=0)
    flags.DEFINE_float("emotion_loss_weight", _DEFAULTS.loss_weights[0],
                       "Weight of the emotion loss.", lower_bound=0)
    flags.DEFINE_float("country_loss_weight", _DEFAULTS.loss_weights[1],
                       "Weight of the class loss.", lower_bound=0)
    flags.DEFINE_float("age_loss_weight", _DEFAULTS.loss_weights[2], "Weight of the age loss.",
                       lower_bound=0)
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after this many epochs without a "
                         "better validation score (0: never). Default: "
                         f"{params.AUTO_PATIENCE_STEPS} optimiser steps' worth, at least "
                         f"{params.AUTO_MIN_PATIENCE} epochs; with --epochs given, never.",
                         lower_bound=0)
    flags.DEFINE_bool("balanced_classes", _DEFAULTS.balanced_classes, "Weight the class loss "
                      "by inverse class frequency over Train, so it tracks UAR (--nobalanced_classes: "
                      "the paper's plain cross-entropy).")
    if seed:
        flags.DEFINE_integer("seed", 0, "Seeds weights, shuffling and cropping.", lower_bound=0)
    flags.DEFINE_bool("mixed_bfloat16", False, "Compute the trunk in bfloat16 (faster on CPUs with "
                      "AVX512_BF16 and on TPUs; front end and outputs stay float32).")
    flags.register_validator("dropout", lambda rate: 0 <= rate < 1,
                             message="--dropout must lie in [0, 1)")
    flags.register_validator("clip_seconds", lambda seconds: seconds is None or seconds > 0,
                             message="--clip_seconds must be positive")


def training_params(values, model: str, tasks, window, seed: int) -> TrainingParams:
    """TrainingParams from the flags, with the per-family defaults of epochs and batch size.

    Args:
      values: absl FlagValues after parsing.
      model, tasks: what to train.
      window: WindowParams of the conformer heads (common_flags.window_from_flags).
      seed: the run's seed.
    """
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.models import hub, registry
    family = registry.family(model)
    epochs = values.epochs
    if not values.data_dir and not values["epochs"].present:
        epochs = family.demo_epochs
        logging.info("demo data: %s trains for %d epochs (set --epochs to change)", model, epochs)
    return TrainingParams(
        model=model, tasks=tuple(tasks), epochs=epochs,
        batch_size=values.batch_size or family.batch_size,
        learning_rate=values.learning_rate, epsilon=values.adam_epsilon,
        loss_weights=(values.emotion_loss_weight, values.country_loss_weight,
                      values.age_loss_weight),
        dropout=values.dropout, clip_seconds=values.clip_seconds,
        early_stopping_patience=values.early_stopping_patience,
        balanced_classes=values.balanced_classes, seed=seed, mixed_bfloat16=values.mixed_bfloat16,
        embedder=hub.recorded(values.embedder),
        window_seconds=window.window_seconds, min_tail_seconds=window.min_tail_seconds)
