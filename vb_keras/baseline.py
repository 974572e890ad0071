"""The paper's naive baseline (Table 1, first row): predictions that ignore the audio.

Majority training class for the class task ("United States" on HUME-VB), the median training age
(26.0 years on HUME-VB) and the training mean of each emotion intensity. A constant emotion
prediction has a CCC of 0, so the baseline's mean CCC and harmonic mean are 0 ("—" in Table 1).
"""

import numpy as np
import pandas as pd

from vb_keras.data.exvo import LABELLED
from vb_keras.errors import UserInputError
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema


def fit_naive(train_table: pd.DataFrame, schema: LabelSchema) -> dict:
    """{emotion: [E] training means, country: majority class index, age: median training age}."""
    train = train_table[train_table[LABELLED]]
    if train.empty:
        raise UserInputError("the Train split has no labelled clips to fit the naive baseline on")
    counts = train[schema.class_column].value_counts()
    # Ties go to the first class in the schema's order, so the choice is deterministic.
    majority = min(counts[counts == counts.max()].index, key=schema.classes.index)
    return {EMOTION: train[list(schema.emotion_columns)].to_numpy(np.float64).mean(axis=0),
            COUNTRY: schema.classes.index(majority),
            AGE: float(np.median(train[schema.age_column].to_numpy(np.float64)))}


def naive_predictions(naive: dict, num_clips: int) -> dict:
    """The naive prediction for `num_clips` clips, in the shapes `evaluation.evaluate` takes."""
    return {EMOTION: np.tile(naive[EMOTION], (num_clips, 1)),
            COUNTRY: np.full(num_clips, naive[COUNTRY], np.int64),
            AGE: np.full(num_clips, naive[AGE])}


def fill_missing_tasks(y_pred: dict, naive: dict, num_clips: int) -> tuple:
    """(predictions of all three tasks, tasks filled in): a task the models do not predict takes
    the naive prediction (section 3.3's age fallback), so every figure is defined."""
    fallback = naive_predictions(naive, num_clips)
    filled = tuple(task for task in (EMOTION, COUNTRY, AGE) if task not in y_pred)
    return {task: y_pred[task] if task in y_pred else fallback[task]
            for task in (EMOTION, COUNTRY, AGE)}, filled
