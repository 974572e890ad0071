"""LabelSchema: which columns hold the labels of the three tasks, and in which data layout.

The model's outputs are always named `emotion`, `country` and `age` (the paper's three tasks,
`vb_keras.tasks`); the schema says which columns feed them, so the same code reads HUME-VB, EmoDB
(class column `Sex`) or any data set in the HUME-VB layout, and the ACII 2022 A-VB layout
(`vb_keras.data.avb`). Columns are always selected by name, never by position.

A data set may label any non-empty subset of the three tasks: an empty column setting
(`emotion_columns=()`, `class_column=""`, `age_column=""`; `--emotion_columns= --class_column=
--age_column=` on the command line) means the data has no labels for that task, and `schema.tasks`
names the tasks it has. Everything downstream (reading, model outputs, losses, metrics, evaluation,
the naive baseline) follows `schema.tasks`.
"""

import dataclasses
import json
from typing import Optional, Sequence, Tuple

from vb_keras import tasks as vb_tasks
from vb_keras.errors import UserInputError
# The task outputs' names (section 2.1), defined in `vb_keras.tasks`; importable from here too.
from vb_keras.tasks import AGE, COUNTRY, EMOTION, TASKS

__all__ = ["AGE", "COUNTRY", "EMOTION", "TASKS", "HUME_VB_EMOTIONS", "LAYOUTS", "LabelSchema",
           "HUME_VB"]

# HUME-VB (ExVo 2022) emotion columns, in the official order.
HUME_VB_EMOTIONS = ("Awe", "Excitement", "Amusement", "Awkwardness", "Fear", "Horror", "Distress",
                    "Triumph", "Sadness", "Surprise")

# Raw data layouts (--dataset): HUME-VB's `data_info.csv + wav/`, A-VB's `labels/*.csv + audio/wav/`.
LAYOUTS = ("hume_vb", "avb")


@dataclasses.dataclass(frozen=True)
class LabelSchema:
    """Where the labels are.

    Attributes:
      emotion_columns: columns with emotion intensities in [0, 1], in output order; empty when the
        data has no emotion labels.
      class_column: the categorical column (HUME-VB `Country`), integers or strings; "" when the
        data has no class labels.
      age_column: the age column, in years; "" when the data has no age labels.
      classes: the class values in output order, as strings. None until fitted on the training split
        with `with_classes`; every trained model stores them.
      id_column, split_column, speaker_column: the HUME-VB bookkeeping columns.
      layout: how a raw data directory is laid out, one of LAYOUTS (a prepared directory reads the
        same whatever the layout).
    """
    emotion_columns: Tuple[str, ...] = HUME_VB_EMOTIONS
    class_column: str = "Country"
    age_column: str = "Age"
    classes: Optional[Tuple[str, ...]] = None
    id_column: str = "File_ID"
    split_column: str = "Split"
    speaker_column: str = "Subject_ID"
    layout: str = "hume_vb"   # the default also covers configs written before A-VB support

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise UserInputError(f"--dataset: {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        object.__setattr__(self, "emotion_columns", tuple(self.emotion_columns))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if not self.tasks:
            raise UserInputError("--emotion_columns, --class_column and --age_column are all empty: "
                                 "the data must label at least one task")
        if len(set(self.emotion_columns)) != len(self.emotion_columns):
            raise UserInputError(f"--emotion_columns: a column is named twice in {self.emotion_columns}")
        label_columns = set(self.emotion_columns)
        for flag, column in (("--class_column", self.class_column), ("--age_column", self.age_column)):
            if column and column in label_columns:
                raise UserInputError(f"{flag}: column {column!r} is also an emotion column")

    @property
    def tasks(self) -> Tuple[str, ...]:
        """The tasks the data labels, in canonical order (a subset of TASKS)."""
        return tuple(name for name, task in vb_tasks.REGISTRY.items() if task.columns(self))

    def has(self, task: str) -> bool:
        return task in self.tasks

    @property
    def label_columns(self) -> Tuple[str, ...]:
        """The label columns the data has: emotions, then the class and age columns if present."""
        return tuple(column for task in vb_tasks.REGISTRY.values() for column in task.columns(self))

    def check_tasks(self, tasks: Sequence[str], flag: str = "--tasks") -> None:
        """A one-line error when `tasks` asks for a task the data has no labels for."""
        for task in tasks:
            if task not in self.tasks:
                entry = vb_tasks.task(task)
                raise UserInputError(f"{flag}: the data has no {entry.label} labels "
                                     f"({entry.column_flag} is empty); it has "
                                     f"{', '.join(self.tasks)}")

    @classmethod
    def from_flags(cls, emotion_columns: Sequence[str] | str, class_column: str,
                   age_column: str) -> "LabelSchema":
        """Builds a schema from the `--emotion_columns=A,B,... --class_column --age_column` values."""
        if isinstance(emotion_columns, str):
            emotion_columns = emotion_columns.split(",")
        # `--emotion_columns=` parses as [] (absl) or [""]: no emotion labels.
        emotion_columns = [c.strip() for c in emotion_columns if c.strip()]
        return cls(emotion_columns=tuple(emotion_columns), class_column=(class_column or "").strip(),
                   age_column=(age_column or "").strip())

    def with_classes(self, classes: Sequence) -> "LabelSchema":
        return dataclasses.replace(self, classes=tuple(str(c) for c in classes))

    @property
    def num_emotions(self) -> int:
        return len(self.emotion_columns)

    @property
    def num_classes(self) -> int:
        if not self.class_column:
            raise ValueError("the schema has no class column")
        if self.classes is None:
            raise ValueError("the schema's classes are not known yet: fit them on the training split")
        return len(self.classes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "LabelSchema":
        return cls(**json.loads(text))


HUME_VB = LabelSchema()
