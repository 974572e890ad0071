"""The three task outputs of section 2.1, one `Task` entry each: the facts that differ between the
emotion, class and age outputs wherever the package branches on a task.

The model's outputs are always named `emotion`, `country` and `age` (the paper's three tasks;
HUME-VB's class is the country of origin); `LabelSchema` says which columns feed them. Written here
once: the output's name, the label in words and the flag naming its column(s), the schema field
holding them, the size and activation of its output layer, and the challenge figure that scores it
(with its direction, which picks a single-task model's best epoch). What stays with its layer, as
that layer's own work for each kind of label: reading the label tensor (`data.pipeline`), the loss
(`training.compiling`, section 2.1's recipe), the NumPy and streaming metrics
(`evaluation.metrics`), the naive answer (`evaluation.baseline`) and the prediction CSV's columns
(`serving.prediction`).
"""

import dataclasses
from typing import Callable, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class Task:
    """One task output.

    Attributes:
      name: the model output's name, and the key of every label, prediction and loss dict.
      label: the labels in words, for messages ("the data has no class labels").
      column_flag: the command-line flag naming the task's column(s).
      schema_field: the `LabelSchema` field holding those columns (a tuple, or one name).
      units: the size of the output layer, from the schema (one per emotion column, one per
        class, one age).
      activation: of the output layer (None: linear).
      figure: the challenge figure scoring the task: the key in `EvaluationResult`, the JSON and
        the `val_<figure>` logs.
      higher_is_better: the figure's direction.
      loss_weight: the task loss's weight in section 2.1 (5.0 / 0.05 / 0.05), and the flag
        `--<name>_loss_weight`'s default.
    """
    name: str
    label: str
    column_flag: str
    schema_field: str
    units: Callable[..., int]
    activation: Optional[str]
    figure: str
    higher_is_better: bool
    loss_weight: float

    def columns(self, schema) -> Tuple[str, ...]:
        """The task's label columns in `schema` (empty: the data has no such labels)."""
        value = getattr(schema, self.schema_field)
        return tuple(value) if isinstance(value, (tuple, list)) else tuple(c for c in (value,) if c)

    @property
    def monitor(self) -> Tuple[str, str]:
        """(the epoch log key of the task's Val figure, Keras' "max" or "min")."""
        return f"val_{self.figure}", "max" if self.higher_is_better else "min"


EMOTION, COUNTRY, AGE = "emotion", "country", "age"

REGISTRY = {task.name: task for task in (
    Task(EMOTION, label="emotion", column_flag="--emotion_columns",
         schema_field="emotion_columns", units=lambda schema: schema.num_emotions,
         activation=None, figure="mean_ccc", higher_is_better=True, loss_weight=5.0),
    Task(COUNTRY, label="class", column_flag="--class_column", schema_field="class_column",
         units=lambda schema: schema.num_classes, activation="softmax", figure="uar",
         higher_is_better=True, loss_weight=0.05),
    Task(AGE, label="age", column_flag="--age_column", schema_field="age_column",
         units=lambda schema: 1, activation=None, figure="mae", higher_is_better=False,
         loss_weight=0.05),
)}

TASKS = tuple(REGISTRY)   # the canonical order of outputs, rows and figures

# The challenge's figures in Table 1's order: each task's, then their harmonic mean.
FIGURES = (*(entry.figure for entry in REGISTRY.values()), "hmean")


def task(name: str) -> Task:
    """The registry entry of the task output `name`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}: expected one of {', '.join(TASKS)}") from None


def canonical(names) -> tuple:
    """`names` (distinct task outputs, in any order) in the canonical order of TASKS.

    Raises:
      ValueError: a name is unknown or repeated, or there is none.
    """
    names = tuple(names)
    unknown = [name for name in names if name not in REGISTRY]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(f"tasks must be distinct names among {', '.join(TASKS)}, got {names}")
    return tuple(name for name in TASKS if name in names)
