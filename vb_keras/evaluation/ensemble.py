"""Predicting a split with one model per task (the paper's submission, section 3.3).

Each task is taken from the first model trained for it; a task no model covers falls back to the
naive prediction (majority class, median training age, mean training emotions). One multitask model
is the special case of a single entry. A task the data has no labels for is neither predicted nor
filled in (the models were trained without it, and the naive baseline has none).
"""

from typing import List, Tuple

import keras
import numpy as np

from vb_keras.evaluation import baseline
from vb_keras.evaluation.inference import predict_batches
from vb_keras.errors import UserInputError
from vb_keras.schema import TASKS, LabelSchema


def task_owners(task_lists) -> dict:
    """{task: index of the first of `task_lists` (each model's tasks) that holds it}, in the
    canonical task order: the one rule for which model answers a task."""
    owners = {}
    for index, tasks in enumerate(task_lists):
        for task in tasks:
            owners.setdefault(task, index)
    return {task: owners[task] for task in TASKS if task in owners}


def assign_tasks(entries: List[Tuple[keras.Model, LabelSchema, tuple]]) -> dict:
    """{task: index of the first entry that predicts it}; checks the models agree on the labels.

    Args:
      entries: (model, schema, tasks) per model, e.g. of a `runs.TrainedRun`.
    """
    first_schema = entries[0][1]
    for _, schema, _ in entries:
        if (schema.emotion_columns, schema.classes) != (first_schema.emotion_columns,
                                                        first_schema.classes):
            raise UserInputError("--model_dir: the models were trained on different label schemas "
                                 f"({first_schema.emotion_columns}/{first_schema.classes} vs "
                                 f"{schema.emotion_columns}/{schema.classes})")
    return task_owners(tasks for _, _, tasks in entries)


def predict(entries, batches, naive: dict):
    """(y_true, y_pred, owners, file_ids) over `batches` (which must carry file ids: keep_ids=True),
    the clips in the order of their sorted file ids.

    `batches` is one dataset for every entry, or a list with one per entry (models of different
    families read different inputs: waveforms, embedding sequences). owners maps each task to the
    index of its entry, or "naive".
    """
    owners = assign_tasks(entries)
    truth, predictions, reference_ids = None, {}, None
    for index, (model, _, _) in enumerate(entries):
        wanted = [task for task, owner in owners.items() if owner == index]
        if not wanted:
            continue
        entry_batches = batches[index] if isinstance(batches, (list, tuple)) else batches
        y_true, y_pred, ids = predict_batches(model, entry_batches, tasks=wanted)
        order = np.argsort(ids)
        if reference_ids is None:
            reference_ids = np.asarray(ids)[order]
            truth = {task: value[order] for task, value in y_true.items()}
        elif not np.array_equal(np.asarray(ids)[order], reference_ids):
            raise RuntimeError("models saw different clips of the same split")
        predictions.update({task: y_pred[task][order] for task in wanted})
    if truth is None:
        raise UserInputError("--model_dir: none of the models predicts emotion, country or age")
    predictions, filled = baseline.fill_missing_tasks(predictions, naive,
                                                      len(next(iter(truth.values()))))
    owners.update({task: "naive" for task in filled})
    return truth, predictions, owners, reference_ids
