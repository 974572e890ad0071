"""Evaluation reports: the Table-1-style row and the JSON every evaluation writes.

JSON keys: mean_ccc, uar, mae, hmean, ccc_per_emotion (name -> value), n_clips, split. A task the
data has no labels for (see `LabelSchema.tasks`) has null for its figure ('—' in the Table-1 row), and
the harmonic mean is taken over the tasks present (`metrics.challenge_score`).
"""

import dataclasses
from typing import Dict, Optional

import numpy as np
import pandas as pd

from vb_keras.evaluation import metrics
from vb_keras.utils import atomic
from vb_keras.data.exvo import LABELLED
from vb_keras.errors import UserInputError
from vb_keras.schema import AGE, COUNTRY, EMOTION, HUME_VB, LabelSchema


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    split: str
    n_clips: int
    mean_ccc: Optional[float]   # None: the data has no emotion labels
    uar: Optional[float]        # None: no class labels
    mae: Optional[float]        # None: no age labels
    hmean: float
    ccc_per_emotion: Dict[str, float]

    def to_dict(self):
        return dataclasses.asdict(self)


def labels_from_table(table: pd.DataFrame, schema: LabelSchema) -> dict:
    """{emotion [N, E], country (class indices) [N], age [N]} of the labelled rows of a clip table,
    for the tasks the schema has."""
    if not table[LABELLED].all():
        raise UserInputError(f"{(~table[LABELLED]).sum()} clips have no labels (HUME-VB's Test "
                             "labels are withheld): evaluate on a labelled split")
    labels = {}
    if schema.has(EMOTION):
        labels[EMOTION] = table[list(schema.emotion_columns)].to_numpy(np.float64)
    if schema.has(COUNTRY):
        index = {name: i for i, name in enumerate(schema.classes)}
        labels[COUNTRY] = table[schema.class_column].map(index).to_numpy(np.int64)
    if schema.has(AGE):
        labels[AGE] = table[schema.age_column].to_numpy(np.float64)
    return labels


def evaluate(y_true: dict, y_pred: dict, schema: LabelSchema, split: str) -> EvaluationResult:
    """Scores predictions with the challenge metrics, over the tasks the schema has.

    Args:
      y_true: as from `labels_from_table`.
      y_pred: emotion [N, E]; country as class indices [N] or scores [N, C]; age [N] or [N, 1];
        every task of `schema.tasks` is needed (others are ignored).
    """
    tasks = [task for task in schema.tasks if task in y_true]
    if not tasks:
        raise ValueError(f"no labels of the schema's tasks ({', '.join(schema.tasks)}) to evaluate")
    missing = [task for task in tasks if task not in y_pred]
    if missing:
        raise ValueError(f"no predictions for {', '.join(missing)}")
    figures = metrics.challenge_figures(*(value for task in (EMOTION, COUNTRY, AGE) for value in (
        (y_true[task], y_pred[task]) if task in tasks else (None, None))))
    per_emotion = figures.pop("ccc_per_emotion")
    return EvaluationResult(
        split=split, n_clips=int(len(y_true[tasks[0]])), **figures,
        ccc_per_emotion={name: float(value)
                         for name, value in zip(schema.emotion_columns, per_emotion)})


def table_titles(schema: LabelSchema) -> list:
    """Titles of Table 1's four figure columns, naming the schema's class and age columns
    (HUME-VB's: Country, Age); a column the data lacks keeps HUME-VB's name over its '—' cells."""
    return ["Emotions (CCC) ↑", f"{schema.class_column or HUME_VB.class_column} (UAR) ↑",
            f"{schema.age_column or HUME_VB.age_column} (MAE) ↓", "Harmonic mean ↑"]


def table_header(schema: LabelSchema) -> str:
    """The two Markdown header lines of a Table-1 layout (`table_row`'s columns)."""
    titles = table_titles(schema)
    return f"| Model | MTL? | {' | '.join(titles)} |\n|---|---|" + "---|" * len(titles)


def table_row(model: str, mtl: str, result: EvaluationResult) -> str:
    """One Markdown row in the layout of the paper's Table 1 ('—' for a task the data lacks)."""
    return (f"| {model} | {mtl} | {format_figure(result.mean_ccc)} | {format_figure(result.uar)} | "
            f"{format_figure(result.mae)} | {format_figure(result.hmean)} |")


def format_figure(value, digits=3) -> str:
    """A figure with `digits` decimals, or '—' for None (a task the data has no labels for)."""
    return "—" if value is None else f"{value:.{digits}f}"


def write_json(result: EvaluationResult, path, extra: dict | None = None) -> None:
    """Writes the result (and the entries of `extra`, e.g. bootstrap intervals) as JSON,
    atomically (a reader never sees half a file)."""
    atomic.write_json(path, {**result.to_dict(), **(extra or {})})
