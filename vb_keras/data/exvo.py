"""Clip table reader: HUME-VB (ExVo 2022) `data_info.csv` plus `wav/<id>.wav`, validated, with the
splits. The A-VB layout (`labels/*.csv` plus `audio/wav/`, avb.py) goes through the same checks.

`read_clip_table` returns one row per clip with the schema's label columns, the audio path and a
`labelled` flag (Test rows of HUME-VB have empty labels). Every problem in the CSV raises
`UserInputError` naming the file, row or column and the reason.
"""

import dataclasses
import logging
import os
import re

import numpy as np
import pandas as pd

from vb_keras import tasks as vb_tasks
from vb_keras.data import avb, csvfile, tfrecord
from vb_keras.data.audio import AUDIO_EXTENSIONS
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema

DATA_INFO = "data_info.csv"
SPLITS = ("Train", "Val", "Test")
# Columns added by the reader, next to the schema's own.
PATH, LABELLED = "path", "labelled"


def read_clip_table(data_dir, schema: LabelSchema, audio_dirs=None) -> pd.DataFrame:
    """Reads and checks the labels of `data_dir`: `data_info.csv` in the HUME-VB layout (and in a
    prepared directory), `labels/*.csv` in the A-VB layout (`schema.layout == "avb"`, see avb.py).

    Args:
      audio_dirs: folders searched for `<id>.<extension>`; default: the layout's (`wav`, or
        `audio/wav` for A-VB).

    Returns:
      A DataFrame with the id, split and speaker columns (ids without brackets), the emotion, class
      (as strings) and age columns the schema has (`schema.label_columns`), `path` (the clip's audio file, whether or not it exists yet) and
      `labelled`. Only Test rows may be unlabelled.

    Raises:
      UserInputError: missing file or column, duplicate ids, unknown split, missing or out-of-range
        labels in a labelled row, or an unknown class value.
    """
    # A task the schema leaves out (an empty column setting) is not read at all.
    label_columns = list(schema.label_columns)
    required = (schema.id_column, schema.split_column, schema.speaker_column, *label_columns)
    avb_layout = schema.layout == "avb" and not tfrecord.is_prepared(data_dir)
    if avb_layout:
        raw = avb.read_label_table(data_dir, required, hints={
            column: _absent_hint(column, schema) for column in label_columns})
        origin = _Origin(os.path.join(data_dir, avb.DATA_INFO), raw.attrs[avb.SOURCES],
                         raw.attrs[avb.LINES])
        audio_dirs = audio_dirs or avb.AUDIO_DIRS
    else:
        raw = _read_data_info(data_dir)
        origin = _Origin(os.path.join(data_dir, DATA_INFO))
        audio_dirs = audio_dirs or ("wav",)
    csv_path = origin.path
    for column in required:
        if column not in raw.columns:
            raise UserInputError(f"{csv_path}: missing column {column!r}{_absent_hint(column, schema)}"
                                 f" (it has: {', '.join(raw.columns)})")
    table = raw[list(required)].copy()
    table.attrs = {}   # the provenance stays in `origin`, not in every table derived from this one
    table[schema.id_column] = csvfile.clean_ids(table[schema.id_column])
    _check_ids(table, schema, origin)
    _check_splits(table, schema, origin)

    blank = table[label_columns].apply(lambda column: column.str.strip() == "")
    table[LABELLED] = ~blank.all(axis=1)
    if schema.layout == "avb":
        # A-VB withholds the task labels of Test clips; data_info.csv may still give their Country
        # and Age, so a Test row with any label missing counts as unlabelled.
        table[LABELLED] &= ~(blank.any(axis=1) & (table[schema.split_column] == "Test"))
    unlabelled_outside_test = ~table[LABELLED] & (table[schema.split_column] != "Test")
    if unlabelled_outside_test.any():
        # (Located through an emotion column: in A-VB that names the label file lacking the clip.)
        _raise_at(origin, table, schema, unlabelled_outside_test, "has no labels outside Test",
                  label_columns[0])
    partly_blank = blank.any(axis=1) & table[LABELLED]
    if partly_blank.any():
        row = int(np.flatnonzero(partly_blank)[0])
        column = blank.columns[blank.iloc[row].to_numpy()][0]
        _raise_at(origin, table, schema, partly_blank, f"{column} is empty", column)

    labelled = table[LABELLED]
    for column in (*schema.emotion_columns, *([schema.age_column] if schema.age_column else [])):
        values = pd.to_numeric(table[column].where(labelled, None), errors="coerce")
        bad = labelled & values.isna()
        if bad.any():
            _raise_at(origin, table, schema, bad, f"{column} is not a number", column)
        table[column] = values.astype(np.float32)
    for column in schema.emotion_columns:
        bad = labelled & ~table[column].between(0.0, 1.0)
        if bad.any():
            value = table.loc[bad, column].iloc[0]
            _raise_at(origin, table, schema, bad, f"{column} = {value:g} lies outside [0, 1]",
                      column)
    if schema.age_column:
        bad_age = labelled & (table[schema.age_column] < 0)
        if bad_age.any():
            _raise_at(origin, table, schema, bad_age, f"{schema.age_column} is negative",
                      schema.age_column)

    if schema.class_column:
        # An unlabelled row keeps no class (as in HUME-VB), so a prepared copy reads back the same.
        table[schema.class_column] = table[schema.class_column].str.strip().where(labelled, "")
        _check_classes(table, schema, origin)
    table[PATH], escape = audio_paths(data_dir, table[schema.id_column], audio_dirs)
    if escape is not None:
        row, reason = escape
        _raise_at(origin, table, schema, np.arange(len(table)) == row, reason)
    return table.reset_index(drop=True)


def _absent_hint(column, schema: LabelSchema) -> str:
    """For a missing label column: how to say the data has no labels for that task."""
    for task in vb_tasks.REGISTRY.values():
        if column in task.columns(schema):
            return f" (if the data has no {task.label} labels, pass {task.column_flag}=)"
    return ""


def _read_data_info(data_dir) -> pd.DataFrame:
    """The raw `data_dir/data_info.csv` (HUME-VB layout, or a prepared directory), all strings."""
    csv_path = os.path.join(data_dir, DATA_INFO)
    if not os.path.isfile(csv_path):
        if os.path.isfile(os.path.join(data_dir, avb.DATA_INFO)):
            raise UserInputError(f"{csv_path}: not found ({data_dir} is in the A-VB layout: "
                                 "read it with --dataset=avb)")
        raise UserInputError(f"{csv_path}: not found (a HUME-VB data directory holds {DATA_INFO})")
    return csvfile.read_strings(csv_path)


@dataclasses.dataclass(frozen=True)
class _Origin:
    """Where the rows of a raw label table came from, for error messages.

    path: the main CSV (one row per clip, in table order); sources, lines: for columns read from
    another file (A-VB), {column: csv path} and {csv path: line of each row, 0 where it has none}.
    """
    path: str
    sources: dict = dataclasses.field(default_factory=dict)
    lines: dict = dataclasses.field(default_factory=dict)

    def locate(self, row, column=None):
        """(csv path, line, note) of a table row, in the file that gave `column`."""
        if column in self.sources:
            path = self.sources[column]
            if self.lines[path][row]:
                return path, self.lines[path][row], ""
            return self.path, row + 2, f" (it has no row in {path})"
        return self.path, row + 2, ""


def fit_classes(table: pd.DataFrame, schema: LabelSchema) -> LabelSchema:
    """Returns the schema with its class list taken from the labelled rows (if not set yet).

    Every labelled split counts, so a class seen only in Val still gets an output (and counts,
    unrecalled, in UAR); a warning names it. Integer-like classes sort numerically (HUME-VB Country
    0-3), others alphabetically.
    """
    if schema.classes is not None or not schema.class_column:
        return schema
    labelled = table[table[LABELLED]]
    values = sorted(set(labelled[schema.class_column]), key=_class_sort_key)
    if not values:
        raise UserInputError(f"{schema.class_column}: no labelled rows to learn classes from")
    in_train = set(labelled.loc[labelled[schema.split_column] == "Train", schema.class_column])
    unseen = [value for value in values if value not in in_train]
    if unseen:
        logging.warning("%s value(s) %s never occur in Train: the model cannot learn them",
                        schema.class_column, ", ".join(unseen))
    return schema.with_classes(values)


def select_split(table: pd.DataFrame, schema: LabelSchema, split: str) -> pd.DataFrame:
    if split not in SPLITS:
        raise UserInputError(f"--split: {split!r} is not one of {', '.join(SPLITS)}")
    return table[table[schema.split_column] == split].reset_index(drop=True)


def paper_split(table: pd.DataFrame, schema: LabelSchema, num_speakers: int = 250,
                seed: int = 0) -> pd.DataFrame:
    """The paper's own split (section 3.3): every clip of `num_speakers` random Val speakers -> Train."""
    val_speakers = sorted(set(table.loc[table[schema.split_column] == "Val", schema.speaker_column]))
    if not 0 <= num_speakers <= len(val_speakers):
        raise UserInputError(f"--moved_val_speakers: {num_speakers} requested, but Val has "
                             f"{len(val_speakers)} speakers")
    moved = set(np.random.default_rng(seed).choice(val_speakers, size=num_speakers, replace=False))
    table = table.copy()
    move = (table[schema.split_column] == "Val") & table[schema.speaker_column].isin(moved)
    table.loc[move, schema.split_column] = "Train"
    return table


def speakers_in_several_splits(table: pd.DataFrame, schema: LabelSchema) -> dict:
    """{speaker: [splits]} for every speaker with clips in more than one split (a leak check)."""
    splits = table.groupby(schema.speaker_column)[schema.split_column].unique()
    return {speaker: sorted(values) for speaker, values in splits.items() if len(values) > 1}


def audio_path(data_dir, clip_id, audio_dirs):
    """`wav/<id>.wav` in HUME-VB; the first existing file among the known folders and extensions."""
    return _find_audio(data_dir, clip_id, audio_dirs)[1]


def _find_audio(data_dir, clip_id, audio_dirs) -> tuple:
    """(audio folder, path) of `audio_path`."""
    for folder in audio_dirs:
        for extension in AUDIO_EXTENSIONS:
            candidate = os.path.join(data_dir, folder, clip_id + extension)
            if os.path.exists(candidate):
                return folder, candidate
    return audio_dirs[0], os.path.join(data_dir, audio_dirs[0], clip_id + ".wav")


def audio_paths(data_dir, ids, audio_dirs) -> tuple:
    """([`audio_path` of each id], None or (row, reason) of the first id whose file would lie
    outside the data set's audio folder).

    A label file is untrusted input (data sets are downloaded): an id may name a file in the audio
    folder or below it, never elsewhere. An absolute id, a `..` in it, or a link in the folder
    that leads out of it is refused (the folder itself may be a link, e.g. to a larger disk: the
    files must lie inside what it leads to).
    """
    paths, escape = [], None
    for row, clip_id in enumerate(ids):
        folder, path = _find_audio(data_dir, clip_id, audio_dirs)
        paths.append(path)
        if escape is None:
            reason = _escape_reason(data_dir, folder, clip_id, path)
            if reason:
                escape = (row, reason)
    return paths, escape


def _escape_reason(data_dir, folder, clip_id, path):
    """Why the audio file `path` of `clip_id` lies outside `data_dir/folder`, or None."""
    shown = os.path.join(data_dir, folder)
    if os.path.isabs(clip_id) or clip_id.startswith(("/", "\\")):
        return f"is an absolute path; ids name files inside {shown}"
    if ".." in re.split(r"[\\/]", clip_id):
        return f"climbs out of {shown} ('..'); ids name files inside it"
    if not os.path.lexists(path):
        return None
    root = os.path.realpath(os.path.join(data_dir, folder))
    resolved = os.path.realpath(path)
    if os.path.commonpath([root, resolved]) != root:
        return (f"its audio file {path} is a link to {resolved}, outside {shown}; copy the file "
                "into the data set instead")
    return None


def _check_ids(table, schema, origin):
    ids = table[schema.id_column]
    if (ids == "").any():
        _raise_at(origin, table, schema, ids == "", f"{schema.id_column} is empty")
    counts = ids.value_counts()
    duplicated = counts[counts > 1]
    if len(duplicated):
        clip_id, times = duplicated.index[0], int(duplicated.iloc[0])
        rows = [int(i) + 2 for i in np.flatnonzero(ids == clip_id)[:5]]
        raise UserInputError(f"{origin.path}: {schema.id_column} [{clip_id}] appears {times} times "
                             f"(lines {', '.join(map(str, rows))})")


def _check_splits(table, schema, origin):
    unknown = ~table[schema.split_column].isin(SPLITS)
    if unknown.any():
        value = table.loc[unknown, schema.split_column].iloc[0]
        _raise_at(origin, table, schema, unknown,
                  f"{schema.split_column} {value!r} is not one of {', '.join(SPLITS)}")


def _check_classes(table, schema, origin):
    """Class values must be among a trained model's classes, when the schema carries them."""
    if schema.classes is None:
        return
    unknown = table[LABELLED] & ~table[schema.class_column].isin(schema.classes)
    if unknown.any():
        value = table.loc[unknown, schema.class_column].iloc[0]
        _raise_at(origin, table, schema, unknown,
                  f"unknown {schema.class_column} value {value!r} (not among the model's classes: "
                  f"{', '.join(schema.classes)})", schema.class_column)


def _class_sort_key(value):
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def _raise_at(origin, table, schema, mask, reason, column=None):
    """One line naming the file and line of the first masked row (of the file `column` came from)."""
    row = int(np.flatnonzero(np.asarray(mask))[0])
    clip_id = table[schema.id_column].iloc[row]
    path, line, note = origin.locate(row, column)
    raise UserInputError(f"{path}: line {line} ({schema.id_column} [{clip_id}]): {reason}{note}")


SPLIT_SCHEMES = ("official", "paper")
# How a data set is split unless told otherwise (section 3.3's paper scheme moves 250 Val speakers).
SPLIT_DEFAULTS = {"split_scheme": "official", "moved_val_speakers": 250, "split_seed": 0}


def read_and_split(data_dir, schema: LabelSchema,
                   split_scheme: str = SPLIT_DEFAULTS["split_scheme"],
                   moved_val_speakers: int = SPLIT_DEFAULTS["moved_val_speakers"],
                   split_seed: int = SPLIT_DEFAULTS["split_seed"]):
    """`read_clip_table`, then the chosen split scheme, then the classes fitted on Train.

    Logs a warning for every speaker found in more than one split.

    Returns:
      (table, schema with classes).
    """
    if split_scheme not in SPLIT_SCHEMES:
        raise UserInputError(f"--split_scheme: {split_scheme!r} is not one of "
                             f"{', '.join(SPLIT_SCHEMES)}")
    table = read_clip_table(data_dir, schema)
    if split_scheme == "paper":
        table = paper_split(table, schema, moved_val_speakers, split_seed)
    leaks = speakers_in_several_splits(table, schema)
    if leaks:
        example = next(iter(leaks.items()))
        logging.warning("%d speaker(s) have clips in several splits, e.g. %s in %s: scores on "
                        "held-out splits will be optimistic", len(leaks), example[0], example[1])
    return table, fit_classes(table, schema)
