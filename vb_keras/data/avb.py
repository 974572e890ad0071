"""ACII 2022 A-VB layout: `labels/*.csv` merged into one label table, audio in `audio/wav/`.

An A-VB data directory holds
  labels/data_info.csv     File_ID (`[10119]`), Split (Train/Val/Test), Subject_ID, Country (a name
                           such as `United States`), Age
  labels/high_info.csv     File_ID, Split, the 10 emotions Awe ... Surprise (intensities in [0, 1])
  labels/two_info.csv      File_ID, Split, Valence, Arousal (in [0, 1])
  labels/culture_info.csv  File_ID, Split, 40 columns `<Country>_<Emotion>` (`China_Awe`, ...)
  labels/type_info.csv     File_ID, Split, Voc_Type (Gasp, Laugh, Cry, Scream, Grunt, Groan, Pant,
                           Other)
  audio/wav/<id>.wav       File_ID `[10119]` names audio/wav/10119.wav
Test rows have empty labels. Columns are selected by name, never by position; the label files are
joined onto data_info.csv by File_ID.

Each task (--avb_task) maps onto the model's three outputs:
  task      emotion                               country     age
  high      the 10 emotions                       Country     Age
  two       Valence, Arousal                      Country     Age
  culture   the 40 `<Country>_<Emotion>` columns  Country     Age
  type      the 10 emotions                       Voc_Type    Age
With `type` the output named `country` predicts the vocalisation type (scored by UAR, as the task is).
"""

import logging
import os

import numpy as np
import pandas as pd

from vb_keras.data import csvfile, tfrecord
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB_EMOTIONS, LabelSchema

AVB_TASKS = ("high", "two", "culture", "type")
AUDIO_DIRS = ("audio/wav",)
LABELS_DIR = "labels"
DATA_INFO = os.path.join(LABELS_DIR, "data_info.csv")
TWO_EMOTIONS = ("Valence", "Arousal")
TYPE_COLUMN = "Voc_Type"
ID_COLUMN, SPLIT_COLUMN = "File_ID", "Split"
# Keys of `read_label_table(...).attrs`, for error messages: SOURCES {column: csv path} for the
# columns that came from a label file rather than data_info.csv; LINES {csv path: the line of each
# table row in that file, 0 where the clip has no row} (tuples, which pandas copies and compares).
SOURCES, LINES = "avb_sources", "avb_lines"


def label_file(task: str) -> str:
    """`labels/<task>_info.csv`, relative to the data directory."""
    return os.path.join(LABELS_DIR, f"{task}_info.csv")


def is_culture_column(column: str) -> bool:
    """`<Country>_<Emotion>` with one of the 10 A-VB High emotions, e.g. `United States_Awe`."""
    country, _, emotion = str(column).rpartition("_")
    return bool(country.strip()) and emotion in HUME_VB_EMOTIONS


def avb_schema(task: str, data_dir=None) -> LabelSchema:
    """The label schema of an A-VB task (see the module docstring).

    Args:
      data_dir: the A-VB (or prepared) data directory; needed only for `culture`, whose 40 columns
        are read from the header of labels/culture_info.csv.
    """
    if task not in AVB_TASKS:
        raise UserInputError(f"--avb_task: {task!r} is not one of {', '.join(AVB_TASKS)}")
    emotions, class_column = HUME_VB_EMOTIONS, "Country"
    if task == "two":
        emotions = TWO_EMOTIONS
    elif task == "culture":
        emotions = _culture_columns(data_dir)
    elif task == "type":
        class_column = TYPE_COLUMN
    return LabelSchema(emotion_columns=emotions, class_column=class_column, age_column="Age",
                       layout="avb")


def read_label_table(data_dir, required=(), hints=None) -> pd.DataFrame:
    """labels/data_info.csv with every present labels/<task>_info.csv joined on File_ID.

    Every value is a string (empty where a clip has no row in a label file); rows keep
    data_info.csv's order and ids lose their brackets. `table.attrs[SOURCES]` and `[LINES]` say which file and line each
    label came from.

    Args:
      required: columns the caller needs; a missing one names the file that should hold it.
      hints: {column: text added to the error when that column is missing} (e.g. how to leave a
        task the data has no labels for out).

    Raises:
      UserInputError: a missing or unreadable data_info.csv, a label file whose Split disagrees with
        data_info.csv or which names a clip data_info.csv lacks, or a missing required column.
    """
    info_path = os.path.join(data_dir, DATA_INFO)
    if not os.path.isfile(info_path):
        raise UserInputError(f"{info_path}: not found (an A-VB data directory holds {DATA_INFO})")
    table = csvfile.read_strings(info_path)
    if ID_COLUMN not in table.columns:
        raise UserInputError(f"{info_path}: missing column {ID_COLUMN!r} "
                             f"(it has: {', '.join(table.columns)})")
    table[ID_COLUMN] = csvfile.clean_ids(table[ID_COLUMN])
    _check_ids(table[ID_COLUMN], info_path)   # first, so a label file is matched against good ids
    added, sources, lines = {}, {}, {}
    for task in AVB_TASKS:
        path = os.path.join(data_dir, label_file(task))
        if os.path.isfile(path):
            lines[path] = _join(table, csvfile.read_strings(path), path, info_path, added, sources)
    # One concat rather than a column at a time (culture alone adds 40).
    table = pd.concat([table, pd.DataFrame(added, index=table.index)], axis=1)
    table.attrs.update({SOURCES: sources, LINES: lines})
    for column in required:
        if column not in table.columns:
            _raise_missing(data_dir, info_path, column, (hints or {}).get(column, ""))
    return table


def _join(table, labels, path, info_path, added, sources):
    """Puts the label columns of one file, aligned with `table`'s rows, into `added` (and their
    `sources`), after checking the file's ids and splits. Returns each table row's line in the file
    (0: the clip has no row there)."""
    if ID_COLUMN not in labels.columns:
        raise UserInputError(f"{path}: missing column {ID_COLUMN!r} "
                             f"(it has: {', '.join(labels.columns)})")
    ids = csvfile.clean_ids(labels[ID_COLUMN])
    _check_ids(ids, path)
    lines = np.arange(len(labels)) + 2
    known = set(table[ID_COLUMN])
    unknown = ~ids.isin(known)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise UserInputError(f"{path}: line {lines[row]}: {ID_COLUMN} [{ids.iloc[row]}] is not in "
                             f"{info_path}")
    line_of = dict(zip(ids, lines))
    row_lines = table[ID_COLUMN].map(line_of).fillna(0).astype(int).to_numpy()
    if SPLIT_COLUMN in labels.columns and SPLIT_COLUMN in table.columns:
        theirs = dict(zip(ids, labels[SPLIT_COLUMN].str.strip()))
        ours = table[SPLIT_COLUMN].str.strip()
        stated = table[ID_COLUMN].map(theirs)
        disagree = stated.notna() & (stated != ours)
        if disagree.any():
            row = int(np.flatnonzero(disagree)[0])
            raise UserInputError(
                f"{path}: line {row_lines[row]} ({ID_COLUMN} [{table[ID_COLUMN].iloc[row]}]): "
                f"{SPLIT_COLUMN} {stated.iloc[row]!r} disagrees with {info_path} "
                f"({ours.iloc[row]!r})")
    by_id = labels.assign(**{ID_COLUMN: ids}).set_index(ID_COLUMN)
    for column in labels.columns:
        if column in (ID_COLUMN, SPLIT_COLUMN):
            continue
        if column in table.columns or column in added:
            # The first file to hold a column provides it (data_info.csv first).
            logging.warning("%s: column %r is also in %s; that one is used", path, column,
                            sources.get(column, (info_path,))[0])
            continue
        added[column] = table[ID_COLUMN].map(by_id[column]).fillna("").to_numpy()
        sources[column] = path
    return tuple(int(line) for line in row_lines)


def _check_ids(ids, path):
    """No empty and no repeated ids in one file."""
    if (ids == "").any():
        raise UserInputError(f"{path}: line {np.flatnonzero(ids == '')[0] + 2}: "
                             f"{ID_COLUMN} is empty")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        clip_id = duplicated.iloc[0]
        rows = np.flatnonzero(ids == clip_id) + 2
        raise UserInputError(f"{path}: {ID_COLUMN} [{clip_id}] appears {len(rows)} times "
                             f"(lines {', '.join(map(str, rows[:5]))})")


def _raise_missing(data_dir, info_path, column, hint=""):
    """A schema column in no file: name the file that should hold it (and add `hint`)."""
    holders = {"high": column in HUME_VB_EMOTIONS, "two": column in TWO_EMOTIONS,
               "culture": is_culture_column(column), "type": column == TYPE_COLUMN}
    task = next((task for task, holds in holders.items() if holds), None)
    if task is None:
        raise UserInputError(f"{info_path}: missing column {column!r}, and no "
                             f"{os.path.join(LABELS_DIR, '<task>_info.csv')} has it either{hint}")
    path = os.path.join(data_dir, label_file(task))
    if not os.path.isfile(path):
        raise UserInputError(f"{path}: not found (the label schema needs its column {column!r}; "
                             f"e.g. --avb_task={task} needs it)")
    header = csvfile.read_strings(path, nrows=0).columns
    raise UserInputError(f"{path}: missing column {column!r}{hint} (it has: {', '.join(header)})")


def _culture_columns(data_dir):
    """The `<Country>_<Emotion>` columns of labels/culture_info.csv, in the file's order."""
    if data_dir is None:
        raise UserInputError(f"--avb_task=culture: its columns are read from "
                             f"{label_file('culture')}, so --data_dir is needed")
    path = os.path.join(data_dir, label_file("culture"))
    if not os.path.isfile(path) and tfrecord.is_prepared(data_dir):
        # A prepared directory keeps the prepared columns in its (HUME-VB layout) data_info.csv.
        path = os.path.join(data_dir, "data_info.csv")
    if not os.path.isfile(path):
        raise UserInputError(f"{path}: not found (--avb_task=culture reads its "
                             f"<Country>_<Emotion> columns from it)")
    columns = tuple(c for c in csvfile.read_strings(path, nrows=0).columns if is_culture_column(c))
    if not columns:
        raise UserInputError(f"{path}: no <Country>_<Emotion> columns such as China_Awe "
                             f"(needed by --avb_task=culture)")
    return columns
