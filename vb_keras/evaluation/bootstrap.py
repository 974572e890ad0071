"""Speaker-level bootstrap confidence intervals for the four challenge figures.

The paper reports point figures only. Here each figure (mean CCC, UAR, MAE, harmonic mean) also gets a
percentile bootstrap interval (Efron & Tibshirani, 1993, ch. 13) from resampling the evaluation
split's SPEAKERS with replacement: clips of one speaker share a voice, an age and a country and tend to
be scored alike, so they are not independent, and resampling clips would understate the uncertainty.

A replicate is scored through clip weights (how many times the clip's speaker was drawn), never by
building the resampled arrays; the weighted figures equal `metrics` on the resampled arrays.

A task the data has no labels for (absent from y_true, see `LabelSchema.tasks`) has no figure: its
interval is None, and the harmonic mean is taken over the tasks present (`metrics.challenge_score`).
"""

import dataclasses
from collections.abc import Mapping

import numpy as np

from vb_keras import tasks as vb_tasks
from vb_keras.evaluation import metrics
from vb_keras.schema import AGE, COUNTRY, EMOTION, TASKS

FIGURES = vb_tasks.FIGURES

# Below this many speakers in the scored split, intervals are coarse (`few_speakers_caveat`).
FEW_SPEAKERS = 10

# Replicates scored at once: memory stays at a few [CHUNK_SIZE, clips] float64 arrays (32 MB each for
# 20,000 clips) however many replicates are asked for.
CHUNK_SIZE = 200


@dataclasses.dataclass(frozen=True)
class Interval:
    """One figure: its value on the full split, bootstrap interval bounds and spread over seeds."""
    estimate: float   # the figure on the full split (mean over seeds when several predictions)
    low: float
    high: float
    std: float        # standard deviation over seeds (ddof=1), 0.0 for one seed

    def to_dict(self):
        return dataclasses.asdict(self)


def few_speakers_caveat(num_speakers: int) -> str:
    """What to say of intervals from `num_speakers` speakers ("" when they are enough)."""
    if num_speakers >= FEW_SPEAKERS:
        return ""
    return (f"With only {num_speakers} speakers a resample can hold one speaker's clips alone, so "
            "the intervals are wide and coarse: they say how little the split can tell.")


def speaker_resample_weights(speakers, num_resamples: int, seed: int) -> np.ndarray:
    """[num_resamples, num_clips] multiplicity of each clip.

    Each replicate draws len(unique speakers) speakers with replacement; a clip's weight is how many
    times its speaker was drawn. Speakers are drawn from their sorted unique ids, so a clip's weight
    does not depend on the order of the clips.
    """
    codes, num_speakers = _speaker_codes(speakers)
    _check_num_resamples(num_resamples)
    return _speaker_draw_counts(num_speakers, num_resamples, seed)[:, codes]


def bootstrap(y_true: dict, y_preds, speakers, num_resamples: int = 1000, seed: int = 0,
              confidence: float = 0.95) -> dict:
    """{figure: Interval} for each of FIGURES, resampling speakers (None for the figure of a task
    y_true has no labels for).

    Args:
      y_true: {emotion [N, E], country [N] class indices, age [N]}, as `scoring.labels_from_table`
        (only the tasks the data has labels for).
      y_preds: one prediction dict, or a sequence of them (one per training seed), each {emotion
        [N, E], country [N] indices or [N, C] scores, age [N] or [N, 1]}.
      speakers: [N] speaker id of each clip.
      num_resamples: bootstrap replicates.
      seed: seed of the speaker draws; every prediction is scored on the same replicates.
      confidence: coverage of the central interval.

    The estimate is the mean over seeds of each seed's figure on the full split (for one seed exactly
    `scoring.evaluate`'s figure). A replicate's value is the mean over seeds of the figure on that
    resample, and the interval is the percentile interval of those values.
    """
    predictions = [y_preds] if isinstance(y_preds, Mapping) else list(y_preds)
    if not predictions:
        raise ValueError("y_preds is empty: give one prediction dict, or one per training seed")
    _check_num_resamples(num_resamples)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    codes, num_speakers = _speaker_codes(speakers)
    truth = _truth_arrays(y_true, len(codes))
    predictions = [_prediction_arrays(p, truth, f"y_preds[{i}]") for i, p in enumerate(predictions)]

    figures_present = [f for f in FIGURES if f not in _absent_figures(truth)]
    per_seed = np.array([[_full_split_figures(truth, p)[f] for f in figures_present]
                         for p in predictions])
    counts = _speaker_draw_counts(num_speakers, num_resamples, seed)
    replicates = np.empty((num_resamples, len(figures_present)))
    for start in range(0, num_resamples, CHUNK_SIZE):
        weights = counts[start:start + CHUNK_SIZE][:, codes].astype(np.float64)
        figures = _weighted_figures(truth, predictions, weights)
        replicates[start:start + len(weights)] = np.stack(
            [figures[f].mean(axis=0) for f in figures_present], axis=1)

    # Percentile method: simple, and its bounds stay inside the figures' ranges (CCC <= 1, UAR in
    # [0, 1], MAE >= 0), which normal-theory intervals of these bounded figures need not.
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail], axis=0)
    std = (per_seed.std(axis=0, ddof=1) if len(predictions) > 1
           else np.zeros(len(figures_present)))
    intervals = {figure: Interval(estimate=float(per_seed[:, i].mean()), low=float(low[i]),
                                  high=float(high[i]), std=float(std[i]))
                 for i, figure in enumerate(figures_present)}
    return {figure: intervals.get(figure) for figure in FIGURES}


def weighted_figures(y_true: dict, y_pred: dict, weights) -> dict:
    """{figure: [R]} of one prediction on R weighted replicates.

    weights: [R, N] non-negative clip multiplicities (e.g. `speaker_resample_weights`). Row r gives
    what `metrics` gives on the clips repeated by their weights (np.repeat), without building them.
    """
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 2:
        raise ValueError(f"weights must be [replicates, clips], got shape {weights.shape}")
    truth = _truth_arrays(y_true, weights.shape[1])
    if (weights < 0).any() or not (weights.sum(axis=1) > 0).all():
        raise ValueError("weights must be non-negative with a positive sum in every replicate")
    figures = _weighted_figures(truth, [_prediction_arrays(y_pred, truth, "y_pred")], weights)
    return {figure: values[0] for figure, values in figures.items()
            if figure not in _absent_figures(truth)}


# ---------------------------------------------------------------- resampling


def _speaker_codes(speakers):
    """(index of each clip's speaker among the sorted unique speakers, number of speakers)."""
    speakers = np.asarray(speakers)
    if speakers.ndim != 1 or speakers.size == 0:
        raise ValueError(f"speakers must be a non-empty 1-D sequence, got shape {speakers.shape}")
    unique, codes = np.unique(speakers, return_inverse=True)
    return codes.reshape(-1), len(unique)


def _speaker_draw_counts(num_speakers, num_resamples, seed):
    """[num_resamples, num_speakers]: how many times each speaker was drawn in each replicate."""
    draws = np.random.default_rng(seed).integers(0, num_speakers, size=(num_resamples, num_speakers))
    # Offsetting each replicate's draws lets one bincount count every replicate.
    offsets = num_speakers * np.arange(num_resamples)[:, None]
    return np.bincount((draws + offsets).ravel(), minlength=num_resamples * num_speakers).reshape(
        num_resamples, num_speakers)


def _check_num_resamples(num_resamples):
    if isinstance(num_resamples, bool) or not isinstance(num_resamples, (int, np.integer)) \
            or num_resamples < 1:
        raise ValueError(f"num_resamples must be an integer >= 1, got {num_resamples!r}")


# ---------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True)
class _Truth:
    """The labels; a task the data has no labels for is absent from `tasks` and its arrays are
    stand-ins (no emotion columns, class 0, age 0) that no figure reads."""
    raw_emotion: np.ndarray  # [N, E] as given
    emotion: np.ndarray      # [N, E] minus `shift` (see _truth_arrays)
    shift: np.ndarray        # [E]
    country: np.ndarray      # [N] class indices
    classes: np.ndarray      # [K] the classes present on the full split
    age: np.ndarray          # [N]
    tasks: tuple = TASKS     # the tasks y_true has labels for


def _absent_figures(truth) -> set:
    return {vb_tasks.task(task).figure for task in TASKS if task not in truth.tasks}


def _stand_ins(values, tasks, num_clips):
    """`values` with stand-in arrays for the tasks outside `tasks` (see `_Truth`)."""
    values = dict(values)
    for task in TASKS:
        if task not in tasks:
            values[task] = {EMOTION: np.zeros((num_clips, 0)), COUNTRY: np.zeros(num_clips, np.int64),
                            AGE: np.zeros(num_clips)}[task]
    return values


def _truth_arrays(y_true, num_clips):
    if not isinstance(y_true, Mapping):
        raise ValueError(f"y_true must be a dict with keys among {EMOTION}, {COUNTRY}, {AGE}")
    tasks = tuple(task for task in TASKS if task in y_true)
    if not tasks:
        raise ValueError(f"y_true has none of {EMOTION}, {COUNTRY}, {AGE}")
    y_true = _stand_ins(y_true, tasks, num_clips)
    emotion = _emotion(y_true[EMOTION], "y_true")
    country = metrics.class_indices(y_true[COUNTRY])
    age = np.asarray(y_true[AGE], np.float64).reshape(-1)
    for key, values in ((EMOTION, emotion), (COUNTRY, country), (AGE, age)):
        if key in tasks and len(values) != num_clips:
            raise ValueError(f"y_true[{key!r}] has {len(values)} clips, expected {num_clips} "
                             "(one per speaker id / weight column)")
    # CCC is unchanged when truth and prediction move together; centring both on the truth's mean
    # keeps E[x^2] - E[x]^2 free of cancellation in the weighted moments.
    shift = emotion.mean(axis=0)
    return _Truth(raw_emotion=emotion, emotion=emotion - shift, shift=shift, country=country,
                  classes=np.unique(country), age=age, tasks=tasks)


def _prediction_arrays(y_pred, truth, name):
    """{emotion (shifted like the truth), country indices, age [N]} of one prediction (of the
    tasks the truth has; stand-ins for the others)."""
    _check_keys(y_pred, name, truth.tasks)
    y_pred = _stand_ins(y_pred, truth.tasks, len(truth.age))
    emotion = _emotion(y_pred[EMOTION], name)
    country = metrics.class_indices(y_pred[COUNTRY])
    age = np.asarray(y_pred[AGE], np.float64).reshape(-1)
    num_clips = len(truth.age)
    if emotion.shape != truth.emotion.shape:
        raise ValueError(f"{name}[{EMOTION!r}] has shape {emotion.shape}, y_true's is "
                         f"{truth.emotion.shape}")
    for key, values in ((COUNTRY, country), (AGE, age)):
        if len(values) != num_clips:
            raise ValueError(f"{name}[{key!r}] has {len(values)} clips, y_true has {num_clips}")
    return {EMOTION: emotion - truth.shift, "raw_emotion": emotion, COUNTRY: country, AGE: age}


def _check_keys(values, name, tasks=TASKS):
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must be a dict with keys {', '.join(tasks)}")
    missing = [key for key in tasks if key not in values]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)}")


def _emotion(values, name):
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{name}[{EMOTION!r}] must be [clips, emotions], got shape {values.shape}")
    return values


# ---------------------------------------------------------------- figures


def _full_split_figures(truth, prediction):
    """The figures on the split itself, exactly as `scoring.evaluate` computes them."""
    def pair(task, true, predicted):
        return (true, predicted) if task in truth.tasks else (None, None)
    return metrics.challenge_figures(*pair(EMOTION, truth.raw_emotion, prediction["raw_emotion"]),
                                     *pair(COUNTRY, truth.country, prediction[COUNTRY]),
                                     *pair(AGE, truth.age, prediction[AGE]))


def _weighted_figures(truth, predictions, weights):
    """{figure: [seeds, R]} on R weighted replicates; the truth's moments are shared by all seeds."""
    total = weights.sum(axis=1)[:, None]
    positive = weights > 0
    num_emotions = truth.emotion.shape[1]

    moments = weights @ np.hstack([truth.emotion, truth.emotion ** 2]) / total
    mean_t, var_t, constant_t = _weighted_mean_and_variance(
        truth.emotion, moments[:, :num_emotions], moments[:, num_emotions:], positive)

    one_hot = (truth.country[:, None] == truth.classes[None, :]).astype(np.float64)   # [N, K]
    support = weights @ one_hot
    present = support > 0
    # Only classes present in the resample count, as in metrics.unweighted_average_recall.
    num_present = present.sum(axis=1)

    figures = {figure: [] for figure in FIGURES}
    for prediction in predictions:
        emotion = prediction[EMOTION]
        moments = weights @ np.hstack([emotion, emotion ** 2, truth.emotion * emotion]) / total
        mean_p, var_p, constant_p = _weighted_mean_and_variance(
            emotion, moments[:, :num_emotions], moments[:, num_emotions:2 * num_emotions], positive)
        covariance = moments[:, 2 * num_emotions:] - mean_t * mean_p
        # metrics.concordance_cc's rule: a constant side has exactly zero covariance.
        covariance = np.where(constant_t | constant_p, 0.0, covariance)
        denominator = var_t + var_p + (mean_t - mean_p) ** 2
        safe = np.where(denominator > 0, denominator, 1.0)
        ccc = np.where(denominator > 0, 2.0 * covariance / safe, 1.0)
        mean_ccc = ccc.mean(axis=1) if ccc.shape[1] else np.zeros(len(ccc))   # (no emotions)

        hits = weights @ (one_hot * (prediction[COUNTRY] == truth.country)[:, None])
        recall = np.where(present, hits / np.where(present, support, 1.0), 0.0)
        uar = recall.sum(axis=1) / num_present

        mae = weights @ np.abs(truth.age - prediction[AGE]) / total[:, 0]

        labelled = {figure: values for figure, values in
                    (("mean_ccc", mean_ccc), ("uar", uar), ("mae", mae))
                    if figure not in _absent_figures(truth)}
        for figure, values in (("mean_ccc", mean_ccc), ("uar", uar), ("mae", mae),
                               ("hmean", _challenge_scores(labelled.get("mean_ccc"),
                                                           labelled.get("uar"),
                                                           labelled.get("mae")))):
            figures[figure].append(values)
    return {figure: np.array(values) for figure, values in figures.items()}


def _weighted_mean_and_variance(values, mean, second_moment, positive):
    """Weighted population (mean, variance, constant) per replicate and column, each [R, E].

    `constant`: the column is constant over the clips of weight > 0 (np.ptp == 0 in `metrics`); such a
    column gets exactly zero variance and its exact value as mean.
    """
    variance = second_moment - mean ** 2
    # E[x^2] - E[x]^2 of a constant column leaves a rounding residue of ~N eps E[x^2], so only columns
    # under this bound can be constant; max == min over the positive clips decides them exactly.
    candidate = variance <= 1e-8 * second_moment
    constant = np.zeros(mean.shape, bool)
    value = np.zeros(mean.shape)
    for column in range(values.shape[1]):
        column_values = values[:, column]
        if np.ptp(column_values) == 0:   # constant on the full split (e.g. the naive baseline)
            constant[:, column], value[:, column] = True, column_values[0]
            continue
        rows = np.flatnonzero(candidate[:, column])
        if rows.size:
            low = np.where(positive[rows], column_values, np.inf).min(axis=1)
            high = np.where(positive[rows], column_values, -np.inf).max(axis=1)
            constant[rows, column], value[rows, column] = low == high, low
    mean = np.where(constant, value, mean)
    variance = np.where(constant, 0.0, np.maximum(variance, 0.0))
    return mean, variance, constant


def _challenge_scores(mean_ccc, uar, mae):
    """metrics.challenge_score over arrays: 3 / (1/mean CCC + 1/UAR + MAE), 0 unless both positive;
    a figure given as None (a task without labels) is left out: k / (sum of the k reciprocals)."""
    present = [values for values in (mean_ccc, uar, mae) if values is not None]
    valid = np.ones(np.shape(present[0]), bool)
    total = np.zeros(np.shape(present[0]))
    for values in (mean_ccc, uar):
        if values is not None:
            valid &= values > 0
            total = total + 1.0 / np.where(valid, values, 1.0)
    if mae is not None:
        total = total + mae
    with np.errstate(divide="ignore"):
        score = len(present) / np.where(valid, total, 1.0)
    return np.where(valid, score, 0.0)
