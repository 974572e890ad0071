"""The permutation test's data: each split's window embeddings, padded once, with the emotion
targets and the class and age of every clip, and how class and age enter the model."""

import dataclasses
import logging

import numpy as np
import pandas as pd

from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras import tasks as vb_tasks
from vb_keras.schema import TASKS, LabelSchema


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
            f"{' or '.join(vb_tasks.task(task).label for task in missing)} "
            f"labels ({', '.join(vb_tasks.task(task).column_flag for task in missing)} empty)")


def data_from_sequences(table: pd.DataFrame, schema: LabelSchema,
                        sequences: dict) -> PermutationData:
    """Train and Val arrays of a data set (`exvo.read_and_split`) and its window embeddings
    (`embedding_cache.sequences`)."""
    check_schema(schema)
    train = split_arrays(table, schema, sequences, "Train")
    val = split_arrays(table, schema, sequences, "Val")
    std = float(np.std(train.ages))
    # Constant ages carry nothing; divide by 1 rather than 0.
    return PermutationData(train, val, schema, float(np.mean(train.ages)), std if std > 0 else 1.0)
