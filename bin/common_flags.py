"""Flags and plumbing shared by the bin/ programs: data source, label schema, split, errors, help.

Programs read these flags and pass plain values into the library, which never sees FLAGS.

Importing this module (and defining a program's flags) loads no TensorFlow: `--help` answers at
once. The library modules a program runs are imported in its `main`, after the flags are parsed;
`run` imports TensorFlow first, holding back its start-up lines (`quiet_tensorflow_import`).
"""

import contextlib
import logging as std_logging
import dataclasses
import os
import re
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


def _matplotlib_config_dir():
    """Where $HOME is not writable (a container, a Bazel sandbox), matplotlib, which Keras imports,
    makes a new cache folder in the temporary directory at every start and removes it at exit, so
    every killed program left one behind: point it at one shared folder instead."""
    if "MPLCONFIGDIR" in os.environ:
        return
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"),
                                                                     ".config")
    default = os.path.join(config_home, "matplotlib")
    try:
        os.makedirs(default, exist_ok=True)
        if os.access(default, os.W_OK):
            return
    except OSError:
        pass
    os.environ["MPLCONFIGDIR"] = os.path.join(tempfile.gettempdir(),
                                              f"{MATPLOTLIB_CONFIG_PREFIX}{os.getuid()}")


MATPLOTLIB_CONFIG_PREFIX = "vb_keras-matplotlib-"
_matplotlib_config_dir()

from absl import app
from absl import flags
from absl import logging

if __package__:  # installed: vb_keras_bin
    from . import choices
else:            # a checkout: bin/
    import choices
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB, LAYOUTS, LabelSchema
from vb_keras.utils import atomic, model_safety

if typing.TYPE_CHECKING:   # (the programs that read no trained model load no Keras)
    from vb_keras.training.runs import TrainedRun

# TensorFlow's C++ start-up lines that a user can do nothing about (seen with TF 2.21 on CPU
# machines): they are written to file descriptor 2 while TensorFlow is imported, before any
# logging is set up, and TF_CPP_MIN_LOG_LEVEL does not hold them all back.
TENSORFLOW_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called|oneDNN custom operations are on|"
    r"cudart_stub\.cc|Could not find cuda drivers|failed call to cuInit|cuda_(driver|executor)\.cc|"
    r"cpu_feature_guard\.cc|rebuild TensorFlow with the appropriate compiler flags|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc|TF-TRT Warning")


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
    defaults = choices.SPLIT_DEFAULTS
    flags.DEFINE_enum("split_scheme", defaults["split_scheme"], choices.SPLIT_SCHEMES,
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


def define_on_bad_audio_flag(skipped_to: str = "bad_audio.csv in the output"):
    """--on_bad_audio, for every program that decodes audio; `skipped_to` says where the skipped
    clips are listed."""
    flags.DEFINE_enum("on_bad_audio", "skip", ["skip", "fail"], "skip: leave out unusable clips "
                      f"and list them in {skipped_to}; fail: stop at the first.",
                      module_name=_caller())


class _RepeatableList(flags.Flag):
    """A comma-separated list flag that may also be given several times (the lists add up)."""

    def __init__(self, name, help_):
        super().__init__(flags.ListParser(), flags.CsvListSerializer(","), name, [], help_)

    def parse(self, argument):
        self.value = (self.value if self.present else []) + self._parse(argument)
        self.present += 1

    def flag_type(self):
        return "comma-separated list (or the flag repeated)"


def define_path_list(name: str, help_: str):
    """A flag naming files and folders: a comma-separated list, as absl's DEFINE_list (the
    convention of every list flag here), or the flag given once for each."""
    return flags.DEFINE_flag(_RepeatableList(name, help_), module_name=_caller())


def define_deprecated_alias(old: str, new: str):
    """Keeps --`old` working for one release as another name of --`new`, with a one-line warning
    on stderr each time it is used (absl's DEFINE_alias is silent)."""
    target = flags.FLAGS[new]

    class _DeprecatedAlias(flags.Flag):
        def parse(self, argument):
            print(f"{sys.argv[0]}: warning: --{old} is deprecated and goes in the next release; "
                  f"use --{new}", file=sys.stderr)
            target.parse(argument)
            self.present += 1

        def _parse_from_default(self, value):
            return value

        @property
        def value(self):
            return target.value

        @value.setter
        def value(self, value):
            target.value = value

    flags.DEFINE_flag(_DeprecatedAlias(target.parser, target.serializer, old, target.default,
                                       f"Deprecated: use --{new}.", boolean=target.boolean),
                      module_name=_caller())


def _caller() -> str:
    """The module that called the define_* function calling this one: the flag is its own, as if
    it had defined it (so its --help lists it)."""
    name = sys._getframe(2).f_globals["__name__"]   # pylint: disable=protected-access
    return sys.argv[0] if name == "__main__" else name   # as absl names a program's module


def mark_required(*names: str):
    """absl's required flags, also marked "(required)" in --help (absl does not mark them)."""
    for name in names:
        flags.FLAGS[name].help += " (required)"
    flags.mark_flags_as_required(list(names))


def data_name(data_dir) -> str:
    """What default output folders call a data set: its directory's name, or demo for the
    built-in demo data. So runs on different data never meet in one default folder."""
    return os.path.basename(os.path.normpath(data_dir)) if data_dir else "demo"


def define_schema_flags():
    """The data layout and which columns hold the labels."""
    flags.DEFINE_enum("dataset", "hume_vb", LAYOUTS,
                      "Layout of --data_dir: hume_vb (HUME-VB / ExVo 2022: data_info.csv + wav/) or "
                      "avb (ACII 2022 A-VB: labels/*.csv + audio/wav/).")
    flags.DEFINE_enum("avb_task", "high", choices.AVB_TASKS,
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
    from vb_keras.data import avb   # pylint: disable=import-outside-toplevel  (TensorFlow)
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
    from vb_keras.data import demo   # pylint: disable=import-outside-toplevel
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
    from vb_keras.data import exvo   # pylint: disable=import-outside-toplevel  (TensorFlow)
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


def run(main, tensorflow: bool = True):
    """absl's app.run, with bad user input and a full disk reported as one line and exit status
    1, Ctrl-C or SIGTERM as one line and exit status 130 (whatever was being written is removed
    on the way out, as for an error), `--help` (and --helpfull, --helpxml) exiting with 0, and
    (for a program that uses it, `tensorflow`) TensorFlow imported quietly before `main`; the
    program's temporary files live in a folder of its own (`atomic.process_scratch`), removed
    when it ends."""
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
                if tensorflow:
                    quiet_tensorflow_import()
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
    app.run(guarded, flags_parser=_parse_flags)


def _parse_flags(argv):
    """absl's flag parsing, but a flag error is one line, and help is a success: absl's help
    flags print it and exit with status 1 while parsing, the only exits parsing makes."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        message = " ".join(str(error).split())   # absl's messages can run over several lines
        print(f"{sys.argv[0]}: error: {message} (--help lists the flags)", file=sys.stderr)
        sys.exit(1)
    except SystemExit as exit_:
        sys.exit(0 if exit_.code == 1 else exit_.code)


def quiet_tensorflow_import():
    """Imports TensorFlow with its start-up lines held back (`TENSORFLOW_NOISE`); anything else it
    writes then is passed on. TF_CPP_MIN_LOG_LEVEL defaults to 2 (errors only) unless set."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryFile() as held, _stderr_to(held):
        try:
            import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        finally:
            sys.stderr.flush()
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            passed_on = "".join(line for line in lines if not TENSORFLOW_NOISE.search(line))
    if passed_on:
        sys.stderr.write(passed_on)
    # TensorFlow's own Python INFO lines (a SavedModel's renamed resources, "Assets written to",
    # sharding durations: one export of a fine-tuned model logged a line of 30,000 characters)
    # say nothing a user can act on; its warnings still show.
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)


@contextlib.contextmanager
def _stderr_to(stream):
    """Points file descriptor 2 (C++ writes there, not through sys.stderr) at `stream`."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(stream.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


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
    from vb_keras.data import exvo   # pylint: disable=import-outside-toplevel  (TensorFlow)
    schema = schema_from_flags(values) if schema is None else schema
    data_dir = data_dir_from_flags(values)
    table, schema = exvo.read_and_split(data_dir, schema, values.split_scheme,
                                        values.moved_val_speakers, values.split_seed)
    return data_dir, table, schema


def table_row(model_name, tasks, result):
    """A Table-1 row: 'YES' in the MTL column for multitask models, 'NO' for single-task ones."""
    from vb_keras.evaluation import scoring   # pylint: disable=import-outside-toplevel
    mtl = "YES" if len(tasks) > 1 else "NO"
    return scoring.table_row(f"{model_name} ({'+'.join(tasks)})", mtl, result)
