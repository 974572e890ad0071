"""Flags and plumbing shared by the bin/ programs: data source, label schema, split, errors.

Programs read these flags and pass plain values into the library, which never sees FLAGS.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from vb_keras import evaluation
from vb_keras.data import demo, exvo
from vb_keras.errors import UserInputError
from vb_keras.params import WindowParams
from vb_keras.schema import HUME_VB, LabelSchema


def define_data_flags(schema_flags=True):
    """--data_dir and the split flags, for programs that read a data set, and unless the schema
    comes from a trained model, the label-schema flags."""
    # Where the data is.
    flags.DEFINE_string("data_dir", None,
                        "HUME-VB-layout directory (data_info.csv + wav/), or a directory written by "
                        "bin/prepare_data. Default: the embedded demo data (generated once).")
    if schema_flags:
        define_schema_flags()
    # Which clips form each split.
    flags.DEFINE_enum("split_scheme", "official", exvo.SPLIT_SCHEMES,
                      "official: the Split column; paper: also move every clip of "
                      "--moved_val_speakers random Val speakers into Train (section 3.3).")
    flags.DEFINE_integer("moved_val_speakers", 250, "Val speakers moved to Train by "
                         "--split_scheme=paper.", lower_bound=0)
    flags.DEFINE_integer("split_seed", 0, "Seed choosing the speakers --split_scheme=paper moves.")


def define_embedder_flags(window=True):
    """The frozen embedder of the conformer heads, its windows, and where embedding caches live."""
    defaults = WindowParams()
    flags.DEFINE_string("embedder", "", "Conformer heads: a TF-Hub-style SavedModel directory "
                        "mapping 'audio_samples' [batch, time] at 16 kHz to {'embedding': [batch, "
                        "D]} (CAP12, TRILLsson, ...). Default: the built-in small Conformer with "
                        "random weights.")
    if window:
        flags.DEFINE_float("window_seconds", defaults.window_seconds, "Conformer heads: one "
                           "embedding per non-overlapping window of this length.")
        flags.DEFINE_float("min_tail_seconds", defaults.min_tail_seconds, "Conformer heads: a "
                           "last, partial window is kept (zero-padded) if it holds at least this "
                           "much audio.")
        flags.register_validator("window_seconds", lambda seconds: seconds > 0,
                                 message="--window_seconds must be positive")
        flags.register_validator("min_tail_seconds", lambda seconds: seconds >= 0,
                                 message="--min_tail_seconds must not be negative")
    flags.DEFINE_string("embedding_cache", None, "Conformer heads: root of the embedding caches. "
                        "Default: $VB_KERAS_CACHE/embeddings or ~/.cache/vb_keras/embeddings.")


def window_from_flags(values) -> WindowParams:
    try:
        return WindowParams(values.window_seconds, values.min_tail_seconds)
    except ValueError as error:
        raise UserInputError(f"--window_seconds/--min_tail_seconds: {error}") from None


def define_schema_flags():
    """Which columns hold the labels."""
    flags.DEFINE_list("emotion_columns", list(HUME_VB.emotion_columns),
                      "Columns with emotion intensities in [0, 1], in output order.")
    flags.DEFINE_string("class_column", HUME_VB.class_column,
                        "The categorical column (the `country` output), integers or strings.")
    flags.DEFINE_string("age_column", HUME_VB.age_column, "The age column, in years.")


def schema_from_flags(values) -> LabelSchema:
    return LabelSchema.from_flags(values.emotion_columns, values.class_column, values.age_column)


def data_dir_from_flags(values) -> str:
    """--data_dir, or the demo data (generated on first use) when it is not given."""
    if values.data_dir:
        return values.data_dir
    directory = demo.ensure_demo_data()
    logging.info("no --data_dir: using the embedded demo data at %s", directory)
    return directory


def run(main):
    """absl's app.run, with bad user input reported as one line and exit status 1."""
    def guarded(argv):
        try:
            return main(argv)
        except UserInputError as error:
            print(f"{sys.argv[0]}: error: {error}", file=sys.stderr)
            sys.exit(1)
    app.run(guarded)


def read_data(values, schema):
    """(data_dir, table, schema with classes) from the data and split flags."""
    data_dir = data_dir_from_flags(values)
    table, schema = exvo.read_and_split(data_dir, schema, values.split_scheme,
                                        values.moved_val_speakers, values.split_seed)
    return data_dir, table, schema


def table_row(model_name, tasks, result):
    """A Table-1 row: 'YES' in the MTL column for multitask models, 'NO' for single-task ones."""
    mtl = "YES" if len(tasks) > 1 else "NO"
    return evaluation.table_row(f"{model_name} ({'+'.join(tasks)})", mtl, result)
