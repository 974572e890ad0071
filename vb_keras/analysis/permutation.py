"""The permutation test of section 3.1: do the class and age labels, given as *inputs*, help a
Conformer-based model predict the emotions?

Each trial trains a fresh emotion-only head on the frozen window embeddings, with the clip's
class (HUME-VB: Country) and age concatenated to its pooled clip vector, and scores the Val mean
CCC. Three conditions differ only in the class and age of the *training* clips:

  true       the real labels: the spread of these runs is the "true distribution" (SGD noise only);
  shuffled   class and age each permuted across the training set, with different seeds: the
             marginal distributions are kept, the link to the clip is broken ("randomly shuffled");
  incorrect  every training clip gets a wrong class and a wrong age, so the labels no longer follow
             the original distributions ("incorrectly assigned").

Val always keeps the true class and age, and the emotion targets are never altered: the paper scores
every model "from the unaltered validation set". Two-sample t-tests then compare the conditions
(the paper: true vs shuffled t = 0.14, p = 0.89; true vs incorrect t = 4.7, p < 0.01 on HUME-VB).

`run` writes `<output_dir>/permutation_test.json` after every trial, so a killed run resumes where
it stopped; `write_density_plot` draws Figure 1; `summary_text` is the Markdown the program prints.
"""

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from typing import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.evaluation import metrics, plots
from vb_keras.models import losses
from vb_keras.utils import atomic
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.keys import EMBEDDINGS, EXTRA, NUM_WINDOWS
from vb_keras.models import heads
from vb_keras.schema import COLUMN_FLAG, EMOTION, TASKS, LabelSchema

CONDITIONS = ("true", "shuffled", "incorrect")
# Figure 1's names and line styles.
CONDITION_LABELS = {"true": "true distribution", "shuffled": "randomly shuffled",
                    "incorrect": "incorrectly assigned"}
CONDITION_STYLES = {"true": {"color": "tab:green", "linestyle": "--"},
                    "shuffled": {"color": "tab:blue", "linestyle": ":"},
                    "incorrect": {"color": "tab:orange", "linestyle": "-"}}
RESULT_FILE = "permutation_test.json"
PLOT_FILE = "permutation_test.png"
# Section 2.2's Adam epsilon.
ADAM_EPSILON = 1e-8
# Welch's test: the conditions need not share a variance (incorrect labels may make runs more or
# less variable than true ones), and a resumed or partial run may have unequal counts. With equal
# counts Welch's t equals Student's t; only the degrees of freedom (hence p) can differ.
T_TEST = "Welch's two-sample t-test (scipy.stats.ttest_ind, equal_var=False), two-sided"
# Settings that may change between a run and its resumption: more trials or other conditions only
# add trials; everything else must match for finished trials to be comparable.
_RESUMABLE_SETTINGS = ("trials", "conditions")


@dataclasses.dataclass
class SplitArrays:
    """One split, padded once and reused by every trial.

    Attributes:
      embeddings: float32 [clips, max windows, D], zero-padded.
      num_windows: int32 [clips].
      emotion: float32 [clips, emotions], the targets (never altered).
      classes: int64 [clips], index of each clip's class in `schema.classes`.
      ages: float32 [clips], years.
    """
    embeddings: np.ndarray
    num_windows: np.ndarray
    emotion: np.ndarray
    classes: np.ndarray
    ages: np.ndarray

    def __len__(self):
        return len(self.num_windows)


@dataclasses.dataclass
class PermutationData:
    """Train and Val arrays, and what the extra inputs need.

    Attributes:
      age_mean, age_std: of the Train ages; ages enter the model as (age - mean) / std.
    """
    train: SplitArrays
    val: SplitArrays
    schema: LabelSchema
    age_mean: float
    age_std: float

    @property
    def embedding_dim(self) -> int:
        return int(self.train.embeddings.shape[-1])

    @property
    def num_classes(self) -> int:
        return self.schema.num_classes

    @property
    def extra_dim(self) -> int:
        # Section 3.1 speaks of a "1049-dimensional input", which does not decompose as 1024
        # Conformer dimensions + 4 one-hot countries + 1 age (= 1029); the paper does not say how
        # it encoded country and age, so we use C one-hot classes + 1 standardised age.
        return self.num_classes + 1

    def extra(self, classes, ages) -> np.ndarray:
        """float32 [clips, C + 1]: one-hot class, then the standardised age.

        Raw years (20-40 on HUME-VB) would dwarf the roughly unit-scale embeddings: at the paper's
        learning rate (3e-4) they would dominate the first layer's outputs and gradients.
        Standardising by the Train statistics puts age on the embeddings' scale without looking at
        Val.
        """
        one_hot = np.eye(self.num_classes, dtype=np.float32)[np.asarray(classes, np.int64)]
        age = (np.asarray(ages, np.float32) - self.age_mean) / self.age_std
        return np.concatenate([one_hot, age[:, None].astype(np.float32)], axis=1)


def split_arrays(table: pd.DataFrame, schema: LabelSchema, sequences: dict,
                 split: str) -> SplitArrays:
    """The labelled clips of `split` that have embeddings in `sequences` (file_id -> [windows, D]),
    as padded arrays. Clips without embeddings (unusable audio) are left out with a warning."""
    rows = exvo.select_split(table, schema, split)
    rows = rows[rows[exvo.LABELLED]]
    ids = rows[schema.id_column].to_numpy(str)
    present = np.array([file_id in sequences for file_id in ids], bool)
    if not present.all():
        logging.warning("%s: %d clip(s) have no embeddings (unusable audio) and are left out; "
                        "first: %s", split, (~present).sum(), ids[~present][0])
    rows, ids = rows[present], ids[present]
    if rows.empty:
        raise UserInputError(f"--data_dir: no labelled {split} clip has embeddings")
    parts = [np.asarray(sequences[file_id], np.float32) for file_id in ids]
    num_windows = np.array([len(part) for part in parts], np.int32)
    embeddings = np.zeros((len(parts), max(1, num_windows.max()), parts[0].shape[-1]), np.float32)
    for row, part in enumerate(parts):
        embeddings[row, :len(part)] = part
    class_index = {value: index for index, value in enumerate(schema.classes)}
    return SplitArrays(
        embeddings=embeddings, num_windows=num_windows,
        emotion=rows[list(schema.emotion_columns)].to_numpy(np.float32),
        classes=np.array([class_index[value] for value in rows[schema.class_column]], np.int64),
        ages=rows[schema.age_column].to_numpy(np.float32))


def check_schema(schema: LabelSchema) -> None:
    """A one-line error unless the data labels all three tasks: the test predicts the emotions
    from the audio with the class and the age as extra inputs."""
    missing = [task for task in TASKS if not schema.has(task)]
    if missing:
        raise UserInputError(
            "the permutation test needs emotion, class and age labels (it predicts the emotions "
            f"with the class and the age as extra inputs); the data has no "
            f"{' or '.join('class' if task == 'country' else task for task in missing)} "
            f"labels ({', '.join(COLUMN_FLAG[task] for task in missing)} empty)")


def data_from_sequences(table: pd.DataFrame, schema: LabelSchema,
                        sequences: dict) -> PermutationData:
    """Train and Val arrays of a data set (`exvo.read_and_split`) and its window embeddings
    (`readers.embedding_sequences`)."""
    check_schema(schema)
    train = split_arrays(table, schema, sequences, "Train")
    val = split_arrays(table, schema, sequences, "Val")
    std = float(np.std(train.ages))
    # Constant ages carry nothing; divide by 1 rather than 0.
    return PermutationData(train, val, schema, float(np.mean(train.ages)), std if std > 0 else 1.0)


# ---------------------------------------------------------------- the altered labels


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


# ---------------------------------------------------------------- one trial


def _features(split: SplitArrays, extra: np.ndarray) -> dict:
    return {EMBEDDINGS: split.embeddings, NUM_WINDOWS: split.num_windows, EXTRA: extra}


def _predict_emotion(model, data: PermutationData, chunk: int = 1024) -> np.ndarray:
    """The model's Val emotions, by eager calls: a fresh model per trial would make
    `model.predict` trace (and warn about retracing) every time, for a single pass."""
    features = _features(data.val, data.extra(data.val.classes, data.val.ages))
    parts = [model({name: value[start:start + chunk] for name, value in features.items()},
                   training=False)[EMOTION].numpy()
             for start in range(0, len(data.val), chunk)]
    return np.concatenate(parts)


def train_and_score(data: PermutationData, condition: str, seed: int, head: str = "conformer",
                    epochs: int = 30, batch_size: int = 128,
                    learning_rate: float = 3e-4) -> dict:
    """One trial: a fresh emotion-only head trained on Train (class and age altered as `condition`
    says) for `epochs` epochs, scored on Val with the true class and age.

    The score is the Val mean CCC after the FINAL epoch. Picking the best epoch on Val would be
    optimistic, and since the same Val set scores all three conditions it could also blur their
    difference; a fixed number of epochs treats every trial alike.

    Returns:
      {"condition", "seed", "val_mean_ccc", "share_class_correct", "share_age_correct", "seconds"}.
    """
    started = time.monotonic()
    classes, ages, share_class, share_age = training_labels(data, condition, seed)
    keras.utils.clear_session()   # no graph or layer-name growth over 150 trials
    keras.utils.set_random_seed(seed)
    model = heads.build_head_model(head, data.embedding_dim, data.schema, tasks=(EMOTION,),
                                   initial_biases={EMOTION: data.train.emotion.mean(axis=0)},
                                   extra_dim=data.extra_dim)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON),
                  loss={EMOTION: losses.NegativeMeanCCC()})
    # CCC is a batch statistic: full batches only, as training.py's (a Train split smaller than a
    # batch is one batch).
    batch = min(batch_size, len(data.train))
    train_batches = (tf.data.Dataset.from_tensor_slices(
        (_features(data.train, data.extra(classes, ages)), {EMOTION: data.train.emotion}))
        .shuffle(len(data.train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    model.fit(train_batches, epochs=epochs, shuffle=False, verbose=0)   # shuffled above
    score = metrics.mean_ccc(data.val.emotion, _predict_emotion(model, data))
    return {"condition": condition, "seed": seed, "val_mean_ccc": score,
            "share_class_correct": share_class, "share_age_correct": share_age,
            "seconds": round(time.monotonic() - started, 3)}


# ---------------------------------------------------------------- statistics


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _scores_by_condition(trials, conditions) -> dict:
    return {condition: np.array([t["val_mean_ccc"] for t in trials
                                 if t["condition"] == condition], np.float64)
            for condition in conditions}


def summarize(trials: Sequence[dict], conditions: Sequence[str] = CONDITIONS) -> dict:
    """Per condition n, mean and std (ddof=1) of the Val mean CCC; for every pair of conditions
    Welch's two-sample t-test (t > 0: the first condition scored higher; None where a side has
    fewer than 2 trials or neither varies); the mean shares of correct labels after shuffling."""
    from scipy import stats
    scores = _scores_by_condition(trials, conditions)
    per_condition = {}
    for condition, values in scores.items():
        per_condition[condition] = {
            "n": int(len(values)),
            "mean": _finite_or_none(values.mean()) if len(values) else None,
            "std": _finite_or_none(values.std(ddof=1)) if len(values) > 1 else None,
            "min": _finite_or_none(values.min()) if len(values) else None,
            "max": _finite_or_none(values.max()) if len(values) else None}
    t_tests = {}
    for first, second in itertools.combinations(conditions, 2):
        a, b = scores[first], scores[second]
        t = p = df = None
        if len(a) > 1 and len(b) > 1:
            with np.errstate(all="ignore"):
                result = stats.ttest_ind(a, b, equal_var=False)
            t, p = _finite_or_none(result.statistic), _finite_or_none(result.pvalue)
            df = _finite_or_none(result.df)
        t_tests[f"{first}_vs_{second}"] = {"first": first, "second": second, "t": t, "p": p,
                                           "df": df}
    shuffled = [t for t in trials if t["condition"] == "shuffled"]
    shares = {
        "trials": len(shuffled),
        "class": float(np.mean([t["share_class_correct"] for t in shuffled])) if shuffled else None,
        "age": float(np.mean([t["share_age_correct"] for t in shuffled])) if shuffled else None}
    return {"conditions": per_condition, "t_test": T_TEST, "t_tests": t_tests,
            "shuffled_share_correct": shares}


def _number(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def summary_text(summary: dict) -> str:
    """Markdown tables of the conditions and the t-tests, and the shares kept by shuffling."""
    lines = ["| Condition | n | Val mean CCC (mean ± std) | min | max |", "|---|---|---|---|---|"]
    for condition, row in summary["conditions"].items():
        lines.append(f"| {CONDITION_LABELS.get(condition, condition)} | {row['n']} | "
                     f"{_number(row['mean'])} ± {_number(row['std'])} | {_number(row['min'])} | "
                     f"{_number(row['max'])} |")
    lines += ["", f"{summary['t_test']}:", "", "| Comparison | t | df | p |", "|---|---|---|---|"]
    for test in summary["t_tests"].values():
        p = test["p"]
        lines.append(f"| {test['first']} vs {test['second']} | {_number(test['t'], 2)} | "
                     f"{_number(test['df'], 1)} | {'—' if p is None else f'{p:.3g}'} |")
    shares = summary["shuffled_share_correct"]
    if shares["trials"]:
        lines += ["", f"After shuffling, on average {100 * shares['class']:.1f}% of the training "
                      f"clips kept a correct class and {100 * shares['age']:.1f}% a correct age "
                      f"({shares['trials']} trials)."]
    return "\n".join(lines)


# ---------------------------------------------------------------- Figure 1


def write_density_plot(trials: Sequence[dict], path, title: str = "") -> str:
    """Figure 1: a Gaussian KDE of the Val mean CCC of each condition (true: green dashed,
    shuffled: blue dotted, incorrect: orange solid), with a rug of the single trials."""
    groups = []
    for condition, values in _scores_by_condition(trials, CONDITIONS).items():
        values = values[np.isfinite(values)]
        if len(values):
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            groups.append((f"{CONDITION_LABELS[condition]}: {values.mean():.3f} ± {std:.3f} "
                           f"(n={len(values)})", values, CONDITION_STYLES[condition]))
    return plots.write_densities(
        groups, path, title or "Permutation test: class and age as inputs (section 3.1)",
        xlabel="emotion mean CCC (Val)")


# ---------------------------------------------------------------- the resumable run


def _check_conditions(conditions) -> tuple:
    conditions = tuple(conditions)
    unknown = [c for c in conditions if c not in CONDITIONS]
    if not conditions or unknown or len(set(conditions)) != len(conditions):
        raise UserInputError(f"--conditions: need distinct names among {', '.join(CONDITIONS)}, "
                             f"got {', '.join(conditions) or 'none'}")
    return tuple(c for c in CONDITIONS if c in conditions)   # canonical order


def _load_previous(path, settings: dict, output_dir) -> list:
    """The finished trials of a previous run in `path` with the same settings, or []."""
    if not os.path.isfile(path):
        return []
    try:
        with open(path) as stream:
            previous = json.load(stream)
    except (OSError, ValueError) as error:
        raise UserInputError(f"{path}: not a readable permutation test ({error}); pick another "
                             "--output_dir") from None
    old = {k: v for k, v in previous.get("settings", {}).items() if k not in _RESUMABLE_SETTINGS}
    new = {k: v for k, v in settings.items() if k not in _RESUMABLE_SETTINGS}
    if old != new:
        differing = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UserInputError(f"--output_dir: {output_dir} holds a permutation test with other "
                             f"settings ({', '.join(differing)}); pick another --output_dir")
    return list(previous.get("trials", []))


def run(output_dir, data: PermutationData, head: str = "conformer", trials: int = 50,
        conditions: Sequence[str] = CONDITIONS, epochs: int = 30, batch_size: int = 128,
        learning_rate: float = 3e-4, seed: int = 0, settings: dict | None = None,
        on_trial: Callable[[dict, int, int], None] | None = None) -> dict:
    """Runs `trials` trials of each condition (section 3.1), resuming a previous run.

    Every finished trial is written at once to `<output_dir>/permutation_test.json` (atomically), so
    a killed run started again reuses its finished trials; trials run interleaved across conditions
    (trial 0 of each, then trial 1, ...) so a stopped run still has comparable groups.

    Args:
      output_dir: where permutation_test.json goes.
      data: `data_from_sequences`.
      head: a conformer head (`heads.HEADS`); the paper used "a Conformer-based model".
      trials: per condition (the paper: 50).
      conditions: some of CONDITIONS.
      epochs, batch_size, learning_rate: training of each trial (Adam, epsilon 1e-8, section 2.2).
      seed: base seed; each trial's seed is `trial_seed(seed, condition, trial)`.
      settings: what identifies the data (data dir, embedder, window, ...), recorded and, with the
        training settings, compared on resumption (a mismatch is refused). More trials or other
        conditions may be asked for when resuming.
      on_trial: called with (trial record, trials done, trials requested) after every new trial.

    Returns:
      The JSON document: {"settings", "trials" (all finished, also beyond `trials`), "summary" (of
      the requested conditions' first `trials` trials)}.
    """
    heads.check_head_name(head)
    conditions = _check_conditions(conditions)
    if trials < 1 or epochs < 1 or batch_size < 1:
        raise UserInputError(f"--trials, --epochs and --batch_size must be >= 1, got {trials}, "
                             f"{epochs}, {batch_size}")
    settings = {**(settings or {}), "head": head, "epochs": int(epochs),
                "batch_size": int(batch_size), "learning_rate": float(learning_rate),
                "adam_epsilon": ADAM_EPSILON, "seed": int(seed), "trials": int(trials),
                "conditions": list(conditions),
                "schema": dataclasses.asdict(data.schema),
                "train_clips": len(data.train), "val_clips": len(data.val),
                "embedding_dim": data.embedding_dim,
                "extra_inputs": f"one-hot {data.schema.class_column} ({data.num_classes}) + "
                                f"{data.schema.age_column} standardised by the Train mean and std",
                "age_mean": data.age_mean, "age_std": data.age_std,
                "score": "Val mean CCC after the final epoch (true class and age on Val)"}
    # As the JSON file holds them (tuples become lists), so a resumption compares like with like.
    settings = json.loads(json.dumps(settings, default=atomic.jsonable))
    with atomic.owned_directory(output_dir, "--output_dir"):   # one writer at a time
        path = os.path.join(output_dir, RESULT_FILE)
        finished = _load_previous(path, settings, output_dir)
        done = {(t["condition"], t["trial"]) for t in finished}
        reused = sum((c, k) in done for c in conditions for k in range(trials))
        if reused:
            logging.info("%s: reusing %d finished trial(s)", path, reused)

        def document():
            wanted = requested_trials(finished, conditions, trials)
            order = {c: i for i, c in enumerate(CONDITIONS)}
            finished.sort(key=lambda t: (order[t["condition"]], t["trial"]))
            return {"settings": settings, "trials": finished,
                    "summary": summarize(wanted, conditions)}

        total, count = trials * len(conditions), reused
        result = document()
        for trial in range(trials):
            for condition in conditions:
                if (condition, trial) in done:
                    continue
                record = train_and_score(data, condition, trial_seed(seed, condition, trial), head,
                                         epochs, batch_size, learning_rate)
                record = {"condition": condition, "trial": trial, **record}
                finished.append(record)
                done.add((condition, trial))
                result = document()
                # After every trial: a killed run loses one at most.
                atomic.write_json(path, result)
                count += 1
                if on_trial is not None:
                    on_trial(record, count, total)
        if count == reused:   # nothing ran: still write, as fewer trials change the summary
            atomic.write_json(path, result)
        return result


def requested_trials(trials: Sequence[dict], conditions: Sequence[str], num_trials: int) -> list:
    """The trials of a run's JSON that a call asked for (the file may hold more, from a larger
    earlier call)."""
    return [t for t in trials if t["condition"] in conditions and t["trial"] < num_trials]
