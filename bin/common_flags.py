"""Flags and plumbing shared by the bin/ programs: data source, label schema, split, errors.

Programs read these flags and pass plain values into the library, which never sees FLAGS.
"""

import dataclasses
import os
import signal
import sys
import tempfile
import typing

# Exit status of a program stopped by Ctrl-C or SIGTERM (the shells' for SIGINT).
INTERRUPTED_STATUS = 130
INTERRUPTED = "interrupted; run the same command to resume"


def _stopped_while_starting(signum, frame):
    """Ctrl-C or SIGTERM while the program imports its libraries (TensorFlow takes seconds):
    nothing is written yet, so one line and out, not an import's traceback."""
    del signum, frame
    print(f"{sys.argv[0]}: {INTERRUPTED}", file=sys.stderr, flush=True)
    os._exit(INTERRUPTED_STATUS)   # pylint: disable=protected-access


# Before the heavy imports below. (A shell's background job ignores Ctrl-C: left so.)
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _stopped_while_starting)
    signal.signal(signal.SIGTERM, _stopped_while_starting)

from absl import app
from absl import flags
from absl import logging

from vb_keras.evaluation import scoring
from vb_keras.data import avb, demo, exvo
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB, LAYOUTS, LabelSchema
from vb_keras.utils import atomic, model_safety

if typing.TYPE_CHECKING:   # (the programs that read no trained model load no Keras)
    from vb_keras.training.runs import TrainedRun


def define_data_flags(schema_flags=True):
    """--data_dir and the split flags, for programs that read a data set, and unless the schema
    comes from a trained model, the label-schema flags."""
    # Where the data is.
    flags.DEFINE_string("data_dir", None,
                        "HUME-VB-layout directory (data_info.csv + wav/), A-VB-layout directory "
                        "(labels/*.csv + audio/wav/, with --dataset=avb), or a directory written by "
                        "bin/prepare_data. Default: for a program reading a trained model, the "
                        "data it was trained on (its config.json); else the embedded demo data "
                        "(generated once).")
    if schema_flags:
        define_schema_flags()
    # Which clips form each split.
    defaults = exvo.SPLIT_DEFAULTS
    flags.DEFINE_enum("split_scheme", defaults["split_scheme"], exvo.SPLIT_SCHEMES,
                      "official: the Split column; paper: also move every clip of "
                      "--moved_val_speakers random Val speakers into Train (section 3.3). "
                      "Programs reading a trained model's data default to its split settings.")
    flags.DEFINE_integer("moved_val_speakers", defaults["moved_val_speakers"], "Val speakers "
                         "moved to Train by --split_scheme=paper.", lower_bound=0)
    flags.DEFINE_integer("split_seed", defaults["split_seed"], "Seed choosing the speakers "
                         "--split_scheme=paper moves.")


def define_trust_flag():
    """--trust_model, for programs that load SavedModels (`model_safety`); `run` applies it."""
    flags.DEFINE_bool("trust_model", False, "Run the SavedModels this program is given (an "
                      "exported model, an embedder, a teacher) even if their graphs hold ops that "
                      "touch files, processes or the network, which are refused otherwise (a "
                      "downloaded model is untrusted input). Only for models you trust.")


def define_schema_flags():
    """The data layout and which columns hold the labels."""
    flags.DEFINE_enum("dataset", "hume_vb", LAYOUTS,
                      "Layout of --data_dir: hume_vb (HUME-VB / ExVo 2022: data_info.csv + wav/) or "
                      "avb (ACII 2022 A-VB: labels/*.csv + audio/wav/).")
    flags.DEFINE_enum("avb_task", "high", avb.AVB_TASKS,
                      "With --dataset=avb, the task that sets the label columns: high (10 emotions), "
                      "two (Valence, Arousal), culture (40 <Country>_<Emotion> columns), type "
                      "(Voc_Type feeds the `country` output). Country and Age feed the other outputs.")
    flags.DEFINE_list("emotion_columns", list(HUME_VB.emotion_columns),
                      "Columns with emotion intensities in [0, 1], in output order. Default: the 10 "
                      "HUME-VB emotions, or the --avb_task's columns with --dataset=avb. Empty "
                      "(--emotion_columns=): the data has no emotion labels.")
    flags.DEFINE_string("class_column", HUME_VB.class_column,
                        "The categorical column (the `country` output), integers or strings. "
                        "--dataset=avb: default from --avb_task. Empty (--class_column=): the data "
                        "has no class labels.")
    flags.DEFINE_string("age_column", HUME_VB.age_column, "The age column, in years. Empty "
                        "(--age_column=): the data has no age labels.")


def schema_from_flags(values) -> LabelSchema:
    """The label schema: --dataset (and --avb_task), then any column flag given explicitly."""
    if values.dataset != "avb":
        if values["avb_task"].present:
            raise UserInputError("--avb_task: only meaningful with --dataset=avb")
        return LabelSchema.from_flags(values.emotion_columns, values.class_column,
                                      values.age_column)
    if not values.data_dir:   # (the schema flags are only defined along with --data_dir)
        # The built-in demo data is in the HUME-VB layout.
        raise UserInputError("--dataset=avb: --data_dir is needed (the demo data is HUME-VB)")
    overrides = {name: values[name].value for name in ("emotion_columns", "class_column",
                                                        "age_column") if values[name].present}
    return dataclasses.replace(avb.avb_schema(values.avb_task, values.data_dir), **overrides)


def data_dir_from_flags(values) -> str:
    """--data_dir, or the demo data (generated on first use) when it is not given."""
    if values.data_dir:
        return values.data_dir
    directory = demo.ensure_demo_data()
    logging.info("no --data_dir: using the embedded demo data at %s", directory)
    return directory


# The flags that decide which clips form each split; bin/train records them in config.json's
# "settings", so programs that read a trained model's data split it the same way.
SPLIT_FLAGS = ("split_scheme", "moved_val_speakers", "split_seed")


def split_settings(values) -> dict:
    """The split flags' values, for config.json's "settings"."""
    return {name: values[name].value for name in SPLIT_FLAGS}


def read_trained_data(values, run: "TrainedRun", source: str):
    """(data_dir, table, schema with classes) for a program that reads a trained model's data,
    in the run's label schema.

    --data_dir wins, with the split flags as given. Without it, the data directory and split
    settings `run` recorded (a model's config.json) are used, split flags given explicitly
    still win, and a line on stderr says so: a model trained on other data no longer silently
    falls back to the demo data. `source` names the model in that line.
    """
    schema = run.schema
    recorded = run.data_dir
    if values.data_dir or not recorded:
        return read_data(values, schema)
    if not os.path.isdir(recorded):
        raise UserInputError(f"--data_dir: not given, and {recorded}, the data {source} was "
                             "trained on, no longer exists; pass --data_dir")
    split = {name: (values[name].value if name in values and values[name].present
                    else run.split_settings[name]) for name in SPLIT_FLAGS}
    print(f"no --data_dir: reading the data {source} was trained on, {recorded} "
          f"(split_scheme={split['split_scheme']}, from its config.json)", file=sys.stderr)
    table, schema = exvo.read_and_split(recorded, schema, *(split[name] for name in SPLIT_FLAGS))
    return recorded, table, schema


def run(main):
    """absl's app.run, with bad user input and a full disk reported as one line and exit status
    1, and Ctrl-C or SIGTERM as one line and exit status 130 (whatever was being written is
    removed on the way out, as for an error); the program's temporary files live in a folder of
    its own (`atomic.process_scratch`), removed when it ends."""
    program = sys.modules[main.__module__]
    if program.__name__ != "__main__":
        _lend_help_to_main(program)

    def guarded(argv):
        # tensorflow_hub caches downloads in the temporary directory unless told: keep that the
        # system's, not this process's scratch, which goes when it ends.
        os.environ.setdefault("TFHUB_CACHE_DIR", os.path.join(tempfile.gettempdir(),
                                                              "tfhub_modules"))
        # Within main, both raise KeyboardInterrupt, so that what is being written is removed on
        # the way out (a shell's background job ignores Ctrl-C: left so).
        previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
        if previous[signal.SIGINT] is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        # (set on every run: tests run several programs in one process)
        model_safety.trust_models("trust_model" in flags.FLAGS and flags.FLAGS.trust_model)
        try:
            with atomic.process_scratch():
                return main(argv)
        except UserInputError as error:
            _exit(1, f"error: {error}")
        except KeyboardInterrupt:
            _exit(INTERRUPTED_STATUS, INTERRUPTED)
        except Exception as error:   # pylint: disable=broad-except
            if not atomic.is_out_of_space(error):
                raise   # a bug in vb_keras: its traceback
            path = getattr(error, "filename", None) or "a file"
            _exit(1, f"error: no space left on the disk while writing {path} "
                     f"({str(error).strip().splitlines()[0]}); free some space and run the same "
                     "command again")
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
    app.run(guarded)


def _interrupt(signum, frame):
    """SIGTERM (a scheduler's or `kill`'s stop) handled as Ctrl-C is."""
    del signum, frame
    raise KeyboardInterrupt


def _exit(status, message):
    print(f"{sys.argv[0]}: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def _lend_help_to_main(program):
    """Installed (vb_<name>), __main__ is the console script, not the program: give it the
    program's key flags and docstring, which absl's --help shows for __main__ alone."""
    for flag in flags.FLAGS.get_key_flags_for_module(program):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules["__main__"]
    if not main_module.__doc__:
        main_module.__doc__ = program.__doc__


def read_data(values, schema=None):
    """(data_dir, table, schema with classes) from the data and split flags; `schema` defaults to
    the schema flags'."""
    schema = schema_from_flags(values) if schema is None else schema
    data_dir = data_dir_from_flags(values)
    table, schema = exvo.read_and_split(data_dir, schema, values.split_scheme,
                                        values.moved_val_speakers, values.split_seed)
    return data_dir, table, schema


def table_row(model_name, tasks, result):
    """A Table-1 row: 'YES' in the MTL column for multitask models, 'NO' for single-task ones."""
    mtl = "YES" if len(tasks) > 1 else "NO"
    return scoring.table_row(f"{model_name} ({'+'.join(tasks)})", mtl, result)
