"""Training flags shared by bin/train and bin/experiment, the model families' own flags (declared
on their configs, `families.base.setting`), and the TrainingParams they make."""

import dataclasses
import typing

from absl import flags
from absl import logging

if __package__:  # installed: vb_keras_bin
    from . import common_flags
else:            # a checkout: bin/
    import common_flags
# The families' flags are read from their configs, in library modules that import TensorFlow:
# imported here with its start-up lines held back, so --help stays clean (if not instant).
common_flags.quiet_tensorflow_import()
# pylint: disable=wrong-import-position
from vb_keras import params  # noqa: E402
from vb_keras import tasks as vb_tasks  # noqa: E402
from vb_keras.errors import UserInputError  # noqa: E402
from vb_keras.families import frozen_embedder, registry  # noqa: E402
from vb_keras.params import TrainingParams  # noqa: E402

_DEFAULTS = TrainingParams()
# The embedder's flags, which bin/extract_embeddings and bin/permutation_test share.
EMBEDDER_FLAGS = tuple(field.name for field in dataclasses.fields(
    frozen_embedder.FrozenEmbedderConfig))
_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer, float: flags.DEFINE_float,
           str: flags.DEFINE_string}


def define_family_flags(names: typing.Sequence[str] | None = None):
    """The model families' settings as flags (all of them, or those `names`), and the switches
    that choose a family (--fine_tune), each defined once."""
    for name, field, entries in registry.settings():
        if names is not None and name not in names:
            continue
        kind = _flag_type(field)
        extra = ({"lower_bound": field.metadata["lower_bound"]}
                 if field.metadata.get("lower_bound") is not None else {})
        _DEFINE[kind](name, field.default, field.metadata["help"], **extra)
    if names is None:
        for entry in registry.FAMILIES:
            if entry.switch:
                flags.DEFINE_bool(entry.switch, False, f"{', '.join(entry.model_names)}: train "
                                  f"{entry.name} (see --help's fine-tuning flags).")


def _flag_type(field) -> type:
    kind = field.type
    if isinstance(kind, str):   # (annotations read as strings)
        kind = eval(kind, {"Optional": typing.Optional})   # pylint: disable=eval-used
    arguments = [a for a in typing.get_args(kind) if a is not type(None)]
    return arguments[0] if arguments else kind


def define_training_flags(seed: bool = True):
    """Data handling and optimisation flags (section 2.1 defaults), the families' flags; `--seed`
    unless `seed` is False."""
    resnets, heads = registry.FAMILIES[0], registry.FAMILIES[1]
    flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout before the task layers.")
    common_flags.define_on_bad_audio_flag()
    flags.DEFINE_integer("epochs", None, "Passes over the training split. Default: until Val stops "
                         "improving: epochs of a pass or "
                         f"{params.MIN_EPOCH_STEPS} optimiser steps (whichever is more), "
                         f"{params.AUTO_STEPS} steps' worth but at least {params.AUTO_MIN_EPOCHS}, "
                         "stopping early (--early_stopping_patience), the best epoch restored; on "
                         f"the embedded demo data {resnets.demo_epochs} for ResNets, "
                         f"{heads.demo_epochs} for heads.", lower_bound=1)
    flags.DEFINE_integer("batch_size", None, "Global batch size (default: the family's, " +
                         ", ".join(f"{entry.batch_size} for {entry.name}"
                                   for entry in registry.FAMILIES) + ").", lower_bound=1)
    flags.DEFINE_float("learning_rate", None, "Adam learning rate (default: the family's, " +
                       ", ".join(f"{entry.learning_rate:g} for {entry.name}"
                                 for entry in registry.FAMILIES) + ").", lower_bound=0)
    flags.DEFINE_float("adam_epsilon", _DEFAULTS.epsilon, "Adam epsilon.", lower_bound=0)
    for name, task in vb_tasks.REGISTRY.items():
        flags.DEFINE_float(f"{name}_loss_weight", task.loss_weight,
                           f"Weight of the {task.label} loss (with --task_weighting=fixed).",
                           lower_bound=0)
    flags.DEFINE_enum("task_weighting", _DEFAULTS.task_weighting, params.TASK_WEIGHTINGS,
                      "fixed: the loss weights above (the paper's); uncertainty: each task's loss "
                      "weighted by a learnt uncertainty (Kendall et al., CVPR 2018).")
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after this many epochs without a "
                         "better validation score (0: never). Default: "
                         f"{params.AUTO_PATIENCE_STEPS} optimiser steps' worth, at least "
                         f"{params.AUTO_MIN_PATIENCE} epochs; with --epochs given, never.",
                         lower_bound=0)
    flags.DEFINE_float("min_improvement", _DEFAULTS.min_improvement, "Early stopping: an epoch "
                       "counts as better only if it improves the monitored Val figure by more "
                       "than this.", lower_bound=0)
    flags.DEFINE_bool("balanced_classes", _DEFAULTS.balanced_classes, "Weight the class loss "
                      "by inverse class frequency over Train, so it tracks UAR (--nobalanced_classes: "
                      "the paper's plain cross-entropy).")
    flags.DEFINE_bool("calibrate", _DEFAULTS.calibrate, "After training, rescale each emotion "
                      "output to the Train labels' mean and spread where that holds up on Val "
                      "(--nocalibrate: the raw outputs).")
    flags.DEFINE_bool("naive_fallback", _DEFAULTS.naive_fallback, "After training, a task whose "
                      "Val figure is no better than the naive prediction's (emotion: mean CCC; "
                      "age: MAE) answers with the naive prediction (the paper's median age).")
    if seed:
        flags.DEFINE_integer("seed", 0, "Seeds weights, shuffling and cropping.", lower_bound=0)
    flags.DEFINE_bool("mixed_bfloat16", False, "Compute the trunk in bfloat16 (faster on CPUs with "
                      "AVX512_BF16 and on TPUs; front end and outputs stay float32).")
    flags.register_validator("dropout", lambda rate: 0 <= rate < 1,
                             message="--dropout must lie in [0, 1)")
    define_family_flags()


def family_config(values, entry):
    """`entry`'s config from the parsed flags (one-line errors name the flag)."""
    return registry.config_from_values(entry, {name: values[name].value for name in (
        field.name for field in dataclasses.fields(entry.config))})


def frozen_embedder_config(values) -> frozen_embedder.FrozenEmbedderConfig:
    """The embedder flags (EMBEDDER_FLAGS) as a frozen embedder's config."""
    return family_config(values, frozen_embedder.FAMILY)


def training_params(values, model: str, tasks, seed: int) -> TrainingParams:
    """TrainingParams from the flags, with the per-family defaults of epochs and batch size.

    Args:
      values: absl FlagValues after parsing.
      model, tasks: what to train.
      seed: the run's seed.
    """
    family = registry.family_for(model, {switch: values[switch].value
                                         for switch in registry.SWITCHES})
    epochs = values.epochs
    if not values.data_dir and not values["epochs"].present:
        epochs = family.demo_epochs
        logging.info("demo data: %s trains for %d epochs (set --epochs to change)", model, epochs)
    try:
        return TrainingParams(
            model=model, tasks=tuple(tasks), family=family_config(values, family), epochs=epochs,
            batch_size=values.batch_size or family.batch_size,
            learning_rate=values.learning_rate or family.learning_rate,
            epsilon=values.adam_epsilon,
            loss_weights={name: values[f"{name}_loss_weight"].value
                          for name in vb_tasks.REGISTRY},
            task_weighting=values.task_weighting, dropout=values.dropout,
            early_stopping_patience=values.early_stopping_patience,
            min_improvement=values.min_improvement, balanced_classes=values.balanced_classes,
            calibrate=values.calibrate, naive_fallback=values.naive_fallback, seed=seed,
            mixed_bfloat16=values.mixed_bfloat16)
    except ValueError as error:
        raise UserInputError(str(error)) from None
