"""Evaluation reports: the Table-1-style row and the JSON every evaluation writes.

JSON keys: mean_ccc, uar, mae, hmean, ccc_per_emotion (name -> value), n_clips, split.
"""

import dataclasses
from typing import Dict

import numpy as np
import pandas as pd

from vb_keras import atomic, metrics
from vb_keras.data.exvo import LABELLED
from vb_keras.errors import UserInputError
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    split: str
    n_clips: int
    mean_ccc: float
    uar: float
    mae: float
    hmean: float
    ccc_per_emotion: Dict[str, float]

    def to_dict(self):
        return dataclasses.asdict(self)


def labels_from_table(table: pd.DataFrame, schema: LabelSchema) -> dict:
    """{emotion [N, E], country (class indices) [N], age [N]} of the labelled rows of a clip table."""
    if not table[LABELLED].all():
        raise UserInputError(f"{(~table[LABELLED]).sum()} clips have no labels (HUME-VB's Test "
                             "labels are withheld): evaluate on a labelled split")
    index = {name: i for i, name in enumerate(schema.classes)}
    return {EMOTION: table[list(schema.emotion_columns)].to_numpy(np.float64),
            COUNTRY: table[schema.class_column].map(index).to_numpy(np.int64),
            AGE: table[schema.age_column].to_numpy(np.float64)}


def evaluate(y_true: dict, y_pred: dict, schema: LabelSchema, split: str) -> EvaluationResult:
    """Scores predictions of the three tasks with the challenge metrics.

    Args:
      y_true: as from `labels_from_table`.
      y_pred: emotion [N, E]; country as class indices [N] or scores [N, C]; age [N] or [N, 1].
    """
    figures = metrics.challenge_figures(y_true[EMOTION], y_pred[EMOTION], y_true[COUNTRY],
                                        y_pred[COUNTRY], y_true[AGE], y_pred[AGE])
    per_emotion = figures.pop("ccc_per_emotion")
    return EvaluationResult(
        split=split, n_clips=int(len(y_true[AGE])), **figures,
        ccc_per_emotion={name: float(value)
                         for name, value in zip(schema.emotion_columns, per_emotion)})


TABLE_HEADER = ("| Model | MTL? | Emotions (CCC) ↑ | Country (UAR) ↑ | Age (MAE) ↓ | Harmonic mean ↑ |\n"
                "|---|---|---|---|---|---|")


def table_row(model: str, mtl: str, result: EvaluationResult) -> str:
    """One Markdown row in the layout of the paper's Table 1."""
    return (f"| {model} | {mtl} | {result.mean_ccc:.3f} | {result.uar:.3f} | {result.mae:.3f} | "
            f"{result.hmean:.3f} |")


def write_json(result: EvaluationResult, path) -> None:
    """Writes the result as JSON, atomically (a reader never sees half a file)."""
    atomic.write_json(path, result.to_dict())
