"""The paper's naive baseline (Table 1, first row): predictions that ignore the audio.

Majority training class for the class task ("United States" on HUME-VB), the median training age
(26.0 years on HUME-VB) and the training mean of each emotion intensity. A constant emotion
prediction has a CCC of 0, so the baseline's mean CCC and harmonic mean are 0 ("—" in Table 1).
"""

import numpy as np
import pandas as pd

from vb_keras.data.exvo import LABELLED
from vb_keras.errors import UserInputError
from vb_keras.schema import AGE, COUNTRY, EMOTION, TASKS, LabelSchema


def fit_naive(train_table: pd.DataFrame, schema: LabelSchema) -> dict:
    """{emotion: [E] training means, country: majority class index, age: median training age},
    for the tasks the schema has (`schema.tasks`)."""
    train = train_table[train_table[LABELLED]]
    if train.empty:
        raise UserInputError("the Train split has no labelled clips to fit the naive baseline on")
    naive = {}
    if schema.has(EMOTION):
        naive[EMOTION] = train[list(schema.emotion_columns)].to_numpy(np.float64).mean(axis=0)
    if schema.has(COUNTRY):
        counts = train[schema.class_column].value_counts()
        # Ties go to the first class in the schema's order, so the choice is deterministic.
        majority = min(counts[counts == counts.max()].index, key=schema.classes.index)
        naive[COUNTRY] = schema.classes.index(majority)
    if schema.has(AGE):
        naive[AGE] = float(np.median(train[schema.age_column].to_numpy(np.float64)))
    return naive


def naive_predictions(naive: dict, num_clips: int) -> dict:
    """The naive prediction for `num_clips` clips, in the shapes `scoring.evaluate` takes (of
    the tasks `naive` has)."""
    shapes = {EMOTION: lambda value: np.tile(value, (num_clips, 1)),
              COUNTRY: lambda value: np.full(num_clips, value, np.int64),
              AGE: lambda value: np.full(num_clips, value)}
    return {task: shapes[task](naive[task]) for task in TASKS if task in naive}


def fill_missing_tasks(y_pred: dict, naive: dict, num_clips: int) -> tuple:
    """(predictions of every task the naive baseline has, tasks filled in): a task the models do
    not predict takes the naive prediction (section 3.3's age fallback), so every figure is
    defined. A task the data has no labels for is in neither, and stays out."""
    fallback = naive_predictions(naive, num_clips)
    tasks = [task for task in TASKS if task in naive or task in y_pred]
    filled = tuple(task for task in tasks if task not in y_pred)
    return {task: y_pred[task] if task in y_pred else fallback[task] for task in tasks}, filled
