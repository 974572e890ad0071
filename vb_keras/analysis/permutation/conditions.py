"""The three label conditions of section 3.1 (true, shuffled, incorrect): the class and age of the
Train clips in each, and the seed of every trial."""

import numpy as np

from vb_keras.analysis.permutation.arrays import PermutationData
from vb_keras.errors import UserInputError

CONDITIONS = ("true", "shuffled", "incorrect")
# Figure 1's names.
CONDITION_LABELS = {"true": "true distribution", "shuffled": "randomly shuffled",
                    "incorrect": "incorrectly assigned"}


def _class_and_age_generators(seed: int):
    """Two independent generators from one trial seed: class and age use different seeds."""
    class_seed, age_seed = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(class_seed), np.random.default_rng(age_seed)


def shuffled_labels(classes, ages, seed: int) -> tuple:
    """Section 3.1's "randomly shuffled" labels: class and age each permuted across the training
    set, with different seeds, which keeps both distributions.

    Returns:
      (classes, ages, share_class_correct, share_age_correct): the shares of clips whose shuffled
      class (age) equals their own; the paper saw 28% and 6% on HUME-VB.
    """
    classes, ages = np.asarray(classes), np.asarray(ages)
    class_generator, age_generator = _class_and_age_generators(seed)
    new_classes = class_generator.permutation(classes)
    new_ages = age_generator.permutation(ages)
    return (new_classes, new_ages, float(np.mean(new_classes == classes)),
            float(np.mean(new_ages == ages)))


def incorrect_labels(classes, ages, num_classes: int, seed: int) -> tuple:
    """Section 3.1's "incorrectly assigned" labels: every clip gets a wrong class and a wrong age.

    The class is uniform over the other classes. The age is uniform over the integer years from the
    (rounded) Train minimum to maximum, excluding the clip's own rounded age. This deliberately
    does NOT keep the age distribution (nor, in general, the class distribution): the paper assigns
    labels "such that they do not follow the original distributions in the train split".

    Returns:
      (classes int64, ages float32), never equal to the given ones.

    Raises:
      UserInputError: fewer than 2 classes or fewer than 2 distinct (rounded) ages.
    """
    classes = np.asarray(classes, np.int64)
    rounded = np.rint(np.asarray(ages, np.float64)).astype(np.int64)
    if num_classes < 2:
        raise UserInputError(f"--class_column: the incorrect condition needs >= 2 classes, got "
                             f"{num_classes}")
    if len(rounded) and rounded.min() == rounded.max():
        raise UserInputError("--age_column: the incorrect condition needs >= 2 distinct (rounded) "
                             f"training ages, all are {rounded.min()}")
    class_generator, age_generator = _class_and_age_generators(seed)
    new_classes = (classes + class_generator.integers(1, num_classes, len(classes))) % num_classes
    if not len(rounded):
        return new_classes, np.zeros(0, np.float32)
    youngest, years = rounded.min(), rounded.max() - rounded.min() + 1
    # Draw among the other years - 1 candidates; skip over the clip's own year.
    offset = age_generator.integers(0, years - 1, len(rounded))
    offset += offset >= rounded - youngest
    return new_classes, (youngest + offset).astype(np.float32)


def trial_seed(seed: int, condition: str, trial: int) -> int:
    """The seed of one trial, derived from the base seed, the condition and the trial index, so
    every condition and trial has its own, and a resumed run recomputes the same ones."""
    if seed < 0:
        raise UserInputError(f"--seed: must not be negative, got {seed}")
    state = np.random.SeedSequence([seed, CONDITIONS.index(condition), trial]).generate_state(1)
    return int(state[0] % (2 ** 31 - 1))


def training_labels(data: PermutationData, condition: str, seed: int) -> tuple:
    """(classes, ages, share_class_correct, share_age_correct) of the Train clips in `condition`."""
    classes, ages = data.train.classes, data.train.ages
    if condition == "true":
        return classes, ages, 1.0, 1.0
    if condition == "shuffled":
        return shuffled_labels(classes, ages, seed)
    if condition == "incorrect":
        new_classes, new_ages = incorrect_labels(classes, ages, data.num_classes, seed)
        return (new_classes, new_ages, float(np.mean(new_classes == classes)),
                float(np.mean(new_ages == ages)))
    raise UserInputError(f"--conditions: unknown condition {condition!r}; choose among "
                         f"{', '.join(CONDITIONS)}")


def check_conditions(conditions) -> tuple:
    """`conditions` in CONDITIONS' order; refuses unknown, repeated or no names."""
    conditions = tuple(conditions)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if not conditions or unknown or len(set(conditions)) != len(conditions):
        raise UserInputError(f"--conditions: need distinct names among {', '.join(CONDITIONS)}, "
                             f"got {', '.join(conditions) or 'none'}")
    return tuple(c for c in CONDITIONS if c in conditions)   # canonical order
