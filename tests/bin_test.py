"""End to end: the bin/ programs as a user runs them, on tiny generated data and on real EmoDB."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import (EMODB, EMODB_EMOTIONS, REPO_ROOT, YAMNET, requires_emodb,
                      requires_yamnet, run_main, write_foreign_saved_model)
from program_runs import assert_one_line_error, programs_in_one_process, succeeded


def program(name, *args, check=True):
    process = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bin", f"{name}.py"), *args],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if check and process.returncode != 0:
        raise AssertionError(f"bin/{name} failed ({process.returncode}):\n{process.stderr[-3000:]}")
    return process



class ErrorRuns:
    """The programs of the error-only tests, run once (`error_runs`); `program` looks one up."""

    def __init__(self, runs, scratch, empty, cut, foreign):
        self.runs, self.scratch, self.empty, self.cut = runs, scratch, empty, cut
        self.foreign = foreign

    def program(self, name, *args):
        assert (name, args, "checkout") in self.runs, (
            f"bin/{name} {args} is not among error_runs' cases")
        return self.runs[name, args, "checkout"]


def baseline_error_args(small_demo, args):
    return [f"--data_dir={small_demo}", *args] if not args[0].startswith("--data_dir") else args


def bad_output_cases(small_demo, scratch):
    """(name, args, fragment) of test_bad_output_paths_give_one_line_errors_before_any_work; in
    `scratch` a file `file` and a non-empty directory `full`."""
    afile, full = scratch / "file", scratch / "full"
    data = f"--data_dir={small_demo}"
    return [
        ("train", [data, f"--model_dir={afile}"], f"--model_dir: {afile} is a file, not a directory"),
        ("train", [data, f"--model_dir={afile}/run"], f"--model_dir: cannot create {afile}/run: "
                                                      f"{afile} is a file"),
        ("train", [data, "--model_dir=/proc/vb_keras/run"], "--model_dir: cannot create "
                                                            "/proc/vb_keras/run"),
        ("prepare_data", [data, f"--output_dir={full}"],
         f"--output_dir: {full} exists and is not empty"),
        ("prepare_data", [data, f"--output_dir={afile}"], f"--output_dir: {afile} is a file"),
        ("predict", ["--saved_model=nowhere", f"--audio={small_demo}", f"--output={scratch}"],
         f"--output: {scratch} is a directory, not a file"),
        ("export", ["--model_dir=nowhere", f"--output_dir={afile}"],
         f"--output_dir: {afile} is a file, not a directory"),

        # Issue 26: these two once wrote into the path or beside it (IsADirectoryError and a
        # .full.*.tmp left; clips written into a foreign directory).
        ("baseline", [data, f"--output_json={full}"], f"--output_json: {full} is a directory"),
        ("make_demo_data", [f"--output_dir={full}", "--num_clips=2"],
         f"--output_dir: {full} exists and is not empty"),
    ]


def embedder_error_args(small_demo, program_name, args):
    with_data = program_name in ("train", "extract_embeddings", "predict")
    return [*([f"--data_dir={small_demo}"] if with_data else []), *args]


BASELINE_ERRORS = [
    (["--data_dir=/nonexistent"], ["/nonexistent/data_info.csv: not found"]),
    (["--split=Test"], ["clips have no labels"]),
    (["--class_column=Nation"], ["missing column 'Nation'"]),
    (["--split_scheme=paper", "--moved_val_speakers=999"], ["--moved_val_speakers: 999 requested"]),
]
TRAIN_FLAG_ERRORS = [
    (["--model=resnet101"], ["flag --model=resnet101: value should be one of <resnet18|"]),
    (["--tasks=valence"], ["--tasks must be distinct names"]),
    (["--batch_size=0"], ["--batch_size"]),
]
EMBEDDER_ERRORS = [
    ("train", ["--model=conformer_autopool", "--embedder=/nonexistent"],
     ["--embedder: /nonexistent is not a directory"]),
    ("extract_embeddings", ["--embedder=/tmp"], ["--embedder: /tmp is not a SavedModel directory"]),
    ("extract_embeddings", ["--window_seconds=1", "--min_tail_seconds=2"],
     ["--min_tail_seconds: min_tail_seconds must lie in"]),
    ("export_embedder", ["--output_dir=/tmp", "--weights=/nonexistent.weights.h5"],
     ["--output_dir: /tmp already exists"]),
    ("export", ["--model_dir=/tmp"], ["holds no trained model"]),
    ("predict", ["--saved_model=/tmp", "--output=/tmp/x.csv"],
     ["--saved_model: /tmp is neither a SavedModel nor a directory of integer versions"]),
    ("evaluate", [], ["--model_dir: give one of --model_dir and --saved_model"]),
    ("evaluate", ["--saved_model=/tmp"], ["--output_dir is required with --saved_model"]),
    ("evaluate", ["--saved_model=/tmp", "--output_dir=/tmp/x"],
     ["--saved_model: /tmp is neither a SavedModel nor a directory of integer versions"]),
]
# The names that changed (one name per kind of flag), each with a run that the new name's value
# makes fail at once: (program, args, old name, new name).
DEPRECATED_NAMES = [
    ("make_demo_data", ["--out_dir=/dev/null/demo"], "out_dir", "output_dir"),
    ("prepare_data", ["--out_dir=/dev/null/prepared", "--data_dir={demo}"], "out_dir",
     "output_dir"),
    ("export", ["--model_dir=/tmp", "--export_dir=/dev/null/export"], "export_dir",
     "output_dir"),
    ("export_embedder", ["--export_dir=/tmp"], "export_dir", "output_dir"),
    ("predict", ["--model=/tmp", "--audio=/tmp"], "model", "saved_model"),
]


def deprecated_args(small_demo, args):
    return [arg.format(demo=small_demo) for arg in args]


EXPERIMENT_ERRORS = [
    (["--models=resnet19"], ["--models: unknown model 'resnet19'"]),
    (["--forms=both"], ["--forms: 'both' is not one of multitask, single_task"]),
]
EXPERIMENT_BAD_SEEDS = ["a", "-1"]   # a negative seed once reached numpy's seeding


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("bin") / "demo")
    process = program("make_demo_data", f"--output_dir={out}", "--num_clips=40", "--seed=2")
    assert "wrote 40 clips" in process.stdout
    return out


@pytest.fixture(scope="module")
def error_runs(small_demo, tmp_path_factory):
    """Every program run of the tests that check a one-line error (or a flag error), in one
    process: each is refused before any work, and a process of its own would cost it far more
    (TensorFlow's import) than the refusal."""
    scratch, empty = tmp_path_factory.mktemp("bad_outputs"), tmp_path_factory.mktemp("no_model")
    (scratch / "file").write_text("x")
    (scratch / "full").mkdir()
    (scratch / "full" / "a").write_text("x")
    escaping = escaping_copy(small_demo, tmp_path_factory.mktemp("escaping"))
    foreign = tmp_path_factory.mktemp("foreign_models")
    for kind in ("write_file", "wrong_signature"):
        write_foreign_saved_model(foreign / kind, kind, str(foreign / "written"))
    cases = [("make_demo_data", [f"--output_dir={small_demo}"])]
    cases += [(name, [f"--data_dir={escaping}", *args]) for name, args in ESCAPING_ID_RUNS]
    cases += [("predict", foreign_model_args(small_demo, foreign, kind, trust))
              for kind, trust in FOREIGN_MODEL_RUNS]

    cases += [(name, deprecated_args(small_demo, args)) for name, args, _, _ in DEPRECATED_NAMES]
    cases += [("baseline", baseline_error_args(small_demo, args)) for args, _ in BASELINE_ERRORS]
    cases += [(name, args) for name, args, _ in bad_output_cases(small_demo, scratch)]
    cases += [("train", args) for args, _ in TRAIN_FLAG_ERRORS]
    cases += [("evaluate", [f"--model_dir={empty}", f"--data_dir={small_demo}"])]
    # A run directory whose config.json a crash of the machine left empty (issue 26).
    cut = tmp_path_factory.mktemp("cut_config")
    (cut / "model.keras").write_text("x")
    (cut / "config.json").write_text("")
    cases += [("evaluate", [f"--model_dir={cut}"])]
    cases += [(name, embedder_error_args(small_demo, name, args))
              for name, args, _ in EMBEDDER_ERRORS]
    cases += [("experiment", args) for args, _ in EXPERIMENT_ERRORS]
    cases += [("experiment", [f"--seeds={seeds}"]) for seeds in EXPERIMENT_BAD_SEEDS]
    runs = programs_in_one_process(cases, str(tmp_path_factory.mktemp("error_runs")))
    return ErrorRuns(runs, scratch, empty, cut, foreign)


# bin/predict given a foreign SavedModel (`conftest.write_foreign_saved_model`): its kind, and
# whether --trust_model is passed.
FOREIGN_MODEL_RUNS = [("write_file", False), ("wrong_signature", False), ("write_file", True)]


def foreign_model_args(small_demo, foreign, kind, trust):
    clip = sorted(os.listdir(os.path.join(small_demo, "wav")))[0]
    return [f"--saved_model={foreign / kind}", f"--audio={os.path.join(small_demo, 'wav', clip)}",
            f"--output={foreign / f'{kind}_{trust}.csv'}", *(["--trust_model"] if trust else [])]


def test_a_foreign_model_that_would_write_a_file_is_refused_unless_trusted(small_demo,
                                                                           error_runs):
    """Issue 26: a SavedModel with bin/export's signature and a tf.io.write_file op wrote its
    file; one with another signature gave five tracebacks."""
    runs = {(kind, trust): run for (name, args, _), run in error_runs.runs.items()
            if name == "predict" for kind, trust in FOREIGN_MODEL_RUNS
            if args == tuple(foreign_model_args(small_demo, error_runs.foreign, kind, trust))}
    assert_one_line_error(runs["write_file", False], f"--saved_model: {error_runs.foreign}/write_file is "
                          "refused: its graph runs WriteFile (in __inference_serve_",
                          "an op that touches files", "pass --trust_model")
    assert_one_line_error(runs["wrong_signature", False],
                          f"--saved_model: {error_runs.foreign}/wrong_signature: its serving_default "
                          "signature takes ['x'], not 'waveform' and 'num_samples'")
    # Trusted, it runs, and writes its file.
    assert succeeded(runs["write_file", True])
    assert open(error_runs.foreign / "written").read() == "written by a model"


# Programs that read a data set whose data_info.csv names a file outside its wav/ (`escaping_copy`).
ESCAPING_ID_RUNS = [("prepare_data", ["--out_dir=never_written"]), ("baseline", [])]


def escaping_copy(data_dir, scratch):
    """A copy of `data_dir` (audio folder linked) whose first File_ID climbs out of wav/ to a
    secret beside the copy."""
    (scratch / "secret.wav").write_bytes(open(os.path.join(data_dir, "wav", os.listdir(
        os.path.join(data_dir, "wav"))[0]), "rb").read())
    copy = scratch / "data"
    copy.mkdir()
    lines = open(os.path.join(data_dir, "data_info.csv")).read().splitlines(keepends=True)
    lines[1] = "[../../secret]" + lines[1][lines[1].index(","):]
    (copy / "data_info.csv").write_text("".join(lines))
    os.symlink(os.path.join(data_dir, "wav"), copy / "wav")
    return str(copy)


@pytest.mark.parametrize("name, args", ESCAPING_ID_RUNS)
def test_a_file_id_naming_a_file_outside_the_data_is_refused_naming_its_row(error_runs, name,
                                                                             args):
    process = next(run for (program_name, run_args, _), run in error_runs.runs.items()
                   if program_name == name and "/escaping" in run_args[0])
    assert_one_line_error(process, "data_info.csv: line 2 (File_ID [../../secret]): climbs out of")
    assert not os.path.exists("never_written")


def test_make_demo_data_refuses_to_overwrite(small_demo, error_runs):
    assert_one_line_error(error_runs.program("make_demo_data", f"--output_dir={small_demo}"),
                          "already holds a data set")


@pytest.mark.parametrize("name, args, old, new", DEPRECATED_NAMES)
def test_the_old_flag_names_still_work_with_a_one_line_warning(small_demo, error_runs, name, args,
                                                               old, new):
    process = error_runs.program(name, *deprecated_args(small_demo, args))
    warnings = [line for line in process.stderr.splitlines() if ": warning: " in line]
    assert warnings == [f"{os.path.join(REPO_ROOT, 'bin', name + '.py')}: warning: --{old} is "
                        f"deprecated and goes in the next release; use --{new}"], process.stderr
    assert_one_line_error(process, f"--{new}: ")   # the value reached the new flag


def test_baseline_prints_a_table_row_and_writes_json(small_demo, tmp_path):
    output = str(tmp_path / "naive.json")
    process = program("baseline", f"--data_dir={small_demo}", "--split=Val", f"--output_json={output}")
    assert "| NAIVE | — | 0.000 | " in process.stdout
    result = json.load(open(output))
    assert result["split"] == "Val" and result["hmean"] == 0.0 and len(result["ccc_per_emotion"]) == 10


def test_baseline_on_the_default_demo_data_says_so():
    process = program("baseline")
    assert "using the embedded demo data" in process.stderr
    assert "naive baseline on Val (400 clips)" in process.stdout


@pytest.mark.parametrize("args, fragments", BASELINE_ERRORS)
def test_bad_input_gives_one_line_errors(small_demo, error_runs, args, fragments):
    assert_one_line_error(error_runs.program("baseline", *baseline_error_args(small_demo, args)),
                          *fragments)


def test_prepare_data_skips_and_lists_bad_audio(small_demo, tmp_path):
    import pandas as pd
    corrupted = str(tmp_path / "corrupted")
    subprocess.run(["cp", "-r", small_demo, corrupted], check=True)
    table = pd.read_csv(os.path.join(corrupted, "data_info.csv"))
    victim = table[table.Split == "Train"].File_ID.iloc[0].strip("[]")
    with open(os.path.join(corrupted, "wav", victim + ".wav"), "wb") as stream:
        stream.write(b"RIFF....WAVEjunk")
    out = str(tmp_path / "prepared")
    # (Four short runs that load no model: one process.)
    (tmp_path / "runs").mkdir()
    process, strict, from_raw, from_prepared = programs_in_one_process([
        ("prepare_data", [f"--data_dir={corrupted}", f"--output_dir={out}"]),
        ("prepare_data", [f"--data_dir={corrupted}", f"--output_dir={tmp_path / 'strict'}",
                          "--on_bad_audio=fail"]),
        ("baseline", [f"--data_dir={corrupted}", "--split=Val"]),
        ("baseline", [f"--data_dir={out}", "--split=Val"]),
    ], str(tmp_path / "runs")).values()
    assert "wrote " in succeeded(process).stdout
    report = open(os.path.join(out, "bad_audio.csv")).read()
    assert victim in report
    assert_one_line_error(strict, victim)
    # The prepared set is a data directory for the other programs: same baseline, one clip fewer.
    from_raw, from_prepared = (succeeded(process).stdout for process in (from_raw, from_prepared))
    assert "| NAIVE |" in from_prepared and from_raw.splitlines()[-1] == from_prepared.splitlines()[-1]


def test_train_evaluate_export_predict_with_naive_fallback(small_demo, tmp_path):
    model_dir = str(tmp_path / "emotion")
    export_root = str(tmp_path / "saved_models" / "emotion")
    import pandas as pd
    info = pd.read_csv(os.path.join(small_demo, "data_info.csv"))
    audio = tmp_path / "audio"
    audio.mkdir()
    first = info.File_ID.iloc[0].strip("[]")
    subprocess.run(["cp", os.path.join(small_demo, "wav", first + ".wav"), str(audio)], check=True)
    (audio / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    output = str(tmp_path / "predictions" / "test.csv")
    (tmp_path / "runs").mkdir()
    servable_eval = tmp_path / "servable_eval"
    # (Seven programs, one after another in one process: one TensorFlow import, not seven.)
    trained, evaluated, exported, served, of_split, of_folder, of_file = (
        succeeded(process) for process in programs_in_one_process([
            ("train", [f"--data_dir={small_demo}", f"--model_dir={model_dir}", "--epochs=1",
                       "--batch_size=8", "--clip_seconds=0.5", "--tasks=emotion"]),
            # No --data_dir: evaluate, export and predict read the data the model was trained on
            # (not the demo data, which they once fell back to silently) and say so.
            ("evaluate", [f"--model_dir={model_dir}"]),
            ("export", [f"--model_dir={model_dir}", f"--output_dir={export_root}",
                        "--median_age=30"]),
            # The export scored through its serving signature, with speaker-bootstrap intervals.
            ("evaluate", [f"--saved_model={export_root}", "--bootstrap=50",
                          f"--output_dir={servable_eval}"]),
            ("predict", [f"--saved_model={export_root}", "--split=Test", f"--output={output}",
                         f"--output_json={output[:-4]}.json"]),
            ("predict", [f"--saved_model={export_root}/1", f"--audio={audio}",
                         f"--output={tmp_path / 'audio.csv'}"]),
            ("predict", [f"--saved_model={export_root}", f"--audio={audio / (first + '.wav')}"]),
        ], str(tmp_path / "runs")).values())
    assert "| resnet18 (emotion) | NO |" in trained.stdout
    assert (f"no --data_dir: reading the data {model_dir} was trained on, {small_demo}"
            in evaluated.stderr)
    assert ("country: naive prediction" in evaluated.stdout
            and "emotion: resnet18 (emotion)" in evaluated.stdout)
    for name in ("eval_Val.json", "ccc_per_emotion_Val.png", "confusion_Val.png", "age_Val.png"):
        assert os.path.isfile(os.path.join(model_dir, name)), name
    assert json.load(open(os.path.join(model_dir, "eval_Val.json")))["split"] == "Val"
    assert "age: naive prediction" in exported.stdout
    assert "exported and verified in a fresh process" in exported.stdout
    by_run, by_servable = (json.load(open(os.path.join(folder, "eval_Val.json")))
                           for folder in (model_dir, servable_eval))
    assert by_servable["mean_ccc"] == pytest.approx(by_run["mean_ccc"], abs=1e-4)   # as served
    interval = by_servable["bootstrap"]["intervals"]["mean_ccc"]
    assert interval["low"] - 1e-9 <= by_servable["mean_ccc"] <= interval["high"] + 1e-9
    assert by_servable["bootstrap"]["resamples"] == 50 and "95% intervals" in served.stdout
    assert f"predicting Test of {small_demo}, the data" in of_split.stderr
    predicted = pd.read_csv(output)
    assert sorted(predicted.File_ID) == sorted(info.File_ID[info.Split == "Test"])
    assert list(predicted.columns[:3]) == ["File_ID", "Country", "Age"]
    assert (predicted.Age == 30.0).all()          # the naive age asked for at export
    assert "broken.wav" in of_folder.stderr and "predicted 1 clips" in of_folder.stdout
    assert list(pd.read_csv(tmp_path / "audio.csv").File_ID) == [int(first)]
    # One file, no --output: a table to read on the terminal (its strongest emotions).
    header, row = of_file.stdout.splitlines()
    assert header.split() == ["File_ID", "Country", "(probability)", "Age", "strongest",
                              "emotions", "(intensity)"]
    assert row.startswith(f"{first}  ") and "  30.0  " in row    # the naive age asked for
    assert len(re.findall(r"[A-Z][a-z]+ -?\d\.\d\d", row)) == 3, row   # the top 3 emotions


def test_bad_output_paths_give_one_line_errors_before_any_work(small_demo, error_runs):
    scratch = error_runs.scratch    # holds a file `file` and a non-empty directory `full`
    for name, args, fragment in bad_output_cases(small_demo, scratch):
        assert_one_line_error(error_runs.program(name, *args), fragment)
    assert sorted(p.name for p in scratch.iterdir()) == ["file", "full"]   # nothing left behind
    assert sorted(p.name for p in (scratch / "full").iterdir()) == ["a"]


@pytest.mark.parametrize("args, fragments", TRAIN_FLAG_ERRORS)
def test_train_flag_validation(error_runs, args, fragments):
    assert_one_line_error(error_runs.program("train", *args), *fragments)


PROGRAMS = ("baseline", "evaluate", "experiment", "export", "export_embedder", "extract_embeddings",
            "make_demo_data", "permutation_test", "predict", "prepare_data", "pretrain", "train")

REQUIRED = {"export": ["model_dir"], "export_embedder": ["output_dir"],
            "make_demo_data": ["output_dir"],
            "prepare_data": ["output_dir"]}


# The programs whose flags include the model families' settings, read from vb_keras.families
# (bin/training_flags.py): their --help imports TensorFlow, quietly.
FAMILY_FLAG_PROGRAMS = ("experiment", "extract_embeddings", "permutation_test", "train")


def test_help_is_quick_clean_complete_and_a_success_checked_out_and_installed(tmp_path):
    """--help and --helpfull exit with 0 and write nothing to stderr, import no TensorFlow (seconds,
    and start-up lines) but for the programs with the families' flags, show the program's
    docstring as written (its usage examples unwrapped), list every flag the program defines, and
    mark the required ones."""
    # Checked out: bin/<name>.py; installed: the module vb_keras_bin.<name> under a console script.
    (tmp_path / "vb_keras_bin").symlink_to(os.path.join(REPO_ROOT, "bin"))
    ordered = sorted(PROGRAMS, key=lambda name: name in FAMILY_FLAG_PROGRAMS)   # TensorFlow last
    runs = programs_in_one_process(
        [(name, [option], form) for name in ordered for option in ("--help", "--helpfull")
         for form in ("checkout", "installed")], tmp_path, installed_root=str(tmp_path))
    own_and_shared = {"train": ["model", "tasks", "data_dir", "batch_size", "epochs", "embedder"],
                      "evaluate": ["model_dir", "split", "data_dir", "split_scheme"],
                      "predict": ["saved_model", "output", "batch_size", "on_bad_audio"],
                      "permutation_test": ["on_bad_audio", "output_dir"],
                      "experiment": ["models", "seeds", "data_dir", "learning_rate"]}
    for name in PROGRAMS:
        with open(os.path.join(REPO_ROOT, "bin", f"{name}.py")) as stream:
            # The docstring as written: a `\` ending an example's line once joined it to the next.
            docstring = stream.read().split('"""')[1]
        for option in ("--help", "--helpfull"):
            for form in ("checkout", "installed"):
                process = runs[name, (option,), form]
                assert process.returncode == 0 and process.stderr == "", (name, option, form,
                                                                          process.stderr)
                if name not in FAMILY_FLAG_PROGRAMS:
                    assert not process.loaded_tensorflow, (name, option, form)
                text = process.stdout
                assert text.startswith(docstring) and "\nflags:\n" in text, (name, form, text)
                for flag in process.defined + own_and_shared.get(name, []):
                    assert f"  --{flag}:" in text or f"  --[no]{flag}:" in text, (name, form, flag)
                for flag in REQUIRED.get(name, []):
                    help_text = text[text.index(f"  --{flag}:"):].split("\n  --")[0]
                    assert "(required)" in help_text, (name, flag, help_text)


def test_the_flag_choices_are_the_librarys():
    """bin/choices.py holds, for --help, copies of values the library owns: they must agree."""
    # pylint: disable=import-outside-toplevel
    import dataclasses
    import importlib.util
    from vb_keras.analysis import experiment, permutation
    from vb_keras.data import avb, exvo
    from vb_keras.models import conformer, heads
    from vb_keras.training import distribute, pretraining, wav2vec2
    spec = importlib.util.spec_from_file_location("choices", os.path.join(REPO_ROOT, "bin",
                                                                          "choices.py"))
    choices = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(choices)
    pretraining_defaults = dataclasses.asdict(pretraining.PretrainingParams())
    copies = {
        "SPLITS": exvo.SPLITS, "SPLIT_SCHEMES": exvo.SPLIT_SCHEMES,
        "SPLIT_DEFAULTS": exvo.SPLIT_DEFAULTS, "AVB_TASKS": avb.AVB_TASKS,
        "HEADS": tuple(sorted(heads.HEADS)),
        "CONFORMER_CONFIGS": tuple(sorted(conformer.CONFORMER_CONFIGS)),
        "STRATEGIES": distribute.STRATEGIES, "PRETRAINING_METHODS": pretraining.METHODS,
        "PRETRAINING_DEFAULTS": {key: pretraining_defaults[key]
                                 for key in choices.PRETRAINING_DEFAULTS},
        "WAV2VEC2_DEFAULTS": {key: getattr(wav2vec2.Wav2Vec2Params(), key)
                              for key in choices.WAV2VEC2_DEFAULTS},
        "TABLE1_MODELS": experiment.TABLE1_MODELS, "FORMS": experiment.FORMS,
        "PERMUTATION_CONDITIONS": permutation.CONDITIONS}
    names = {name for name in vars(choices) if name.isupper()}
    assert names == set(copies), names ^ set(copies)
    for name, owners in copies.items():
        assert getattr(choices, name) == owners, (
            f"bin/choices.py's {name} is not the library's {owners!r}: copy it there")


def test_evaluate_names_an_empty_config_json_in_one_line(error_runs):
    assert_one_line_error(error_runs.program("evaluate", f"--model_dir={error_runs.cut}"),
                          f"{error_runs.cut}/config.json: cannot be read as the run's settings: "
                          "it is empty")


def test_evaluate_refuses_a_directory_without_a_model(small_demo, error_runs):
    assert_one_line_error(error_runs.program("evaluate", f"--model_dir={error_runs.empty}",
                                             f"--data_dir={small_demo}"), "holds no trained model")


@requires_emodb
def test_baseline_on_real_emodb():
    process = program("baseline", f"--data_dir={EMODB}", "--split=Test",
                      f"--emotion_columns={','.join(EMODB_EMOTIONS)}", "--class_column=Sex")
    assert "naive baseline on Test (127 clips): majority class 'male'" in process.stdout
    assert "| NAIVE | — | 0.000 | 0.500 |" in process.stdout



def test_train_conformer_autopool_extracts_trains_and_evaluates(small_demo, tmp_path):
    cache = str(tmp_path / "embeddings")
    exported = str(tmp_path / "embedder")
    model_dir = str(tmp_path / "autopool")
    (tmp_path / "runs").mkdir()
    # (One process for the four programs: one TensorFlow import.)
    exported_run, extracted, trained, evaluated = (
        succeeded(process) for process in programs_in_one_process([
            ("export_embedder", [f"--output_dir={exported}", "--seed=3"]),
            ("extract_embeddings", [f"--data_dir={small_demo}", f"--embedder={exported}",
                                    f"--embedding_cache={cache}", "--window_seconds=1.0"]),
            ("train", ["--model=conformer_autopool", f"--data_dir={small_demo}",
                       f"--embedder={exported}", f"--embedding_cache={cache}",
                       "--window_seconds=1.0", f"--model_dir={model_dir}", "--epochs=2",
                       "--batch_size=8"]),
            ("evaluate", [f"--model_dir={model_dir}", f"--data_dir={small_demo}",
                          f"--embedding_cache={cache}"]),
        ], str(tmp_path / "runs")).values())
    assert "RANDOM weights" in exported_run.stdout and "144-d" in exported_run.stdout
    assert "40 clips" in extracted.stdout and "144-d embeddings (0 unusable)" in extracted.stdout
    assert "reusing the embedding cache" in trained.stderr
    assert "| conformer_autopool (emotion+country+age) | YES |" in trained.stdout
    assert "| conformer_autopool (emotion+country+age) | YES |" in evaluated.stdout
    assert os.path.isfile(os.path.join(model_dir, "eval_Val.json"))


@requires_emodb
@pytest.mark.skipif(not os.path.isfile(os.path.join(YAMNET, "saved_model.pb")),
                    reason=f"{YAMNET} is absent")
def test_real_emodb_head_export_and_predict_reproduce_the_evaluation(tmp_path):
    """Real audio through every program: extract (pre-trained YAMNet), train, evaluate on Test,
    export, predict Test from the SavedModel; the CSV's mean CCC equals bin/evaluate's."""
    import pandas as pd
    from vb_keras.evaluation import metrics
    schema_flags = [f"--emotion_columns={','.join(EMODB_EMOTIONS)}", "--class_column=Sex"]
    model_dir = str(tmp_path / "autopool")
    export_root = str(tmp_path / "saved_models" / "autopool")
    output = str(tmp_path / "test.csv")
    (tmp_path / "runs").mkdir()
    for process in programs_in_one_process([   # (one process: one TensorFlow import, not four)
            ("train", ["--model=conformer_autopool", f"--data_dir={EMODB}", *schema_flags,
                       f"--embedder={YAMNET}", "--epochs=20", f"--model_dir={model_dir}"]),
            ("evaluate", [f"--model_dir={model_dir}", f"--data_dir={EMODB}", "--split=Test"]),
            ("export", [f"--model_dir={model_dir}", f"--output_dir={export_root}"]),
            ("predict", [f"--saved_model={export_root}", f"--data_dir={EMODB}", "--split=Test",
                         f"--output={output}"]),
    ], str(tmp_path / "runs")).values():
        succeeded(process)
    evaluated = json.load(open(os.path.join(model_dir, "eval_Test.json")))
    predicted = pd.read_csv(output).set_index("File_ID")
    info = pd.read_csv(os.path.join(EMODB, "data_info.csv")).set_index("File_ID")
    test = info[info.Split == "Test"].loc[predicted.index]
    ccc = metrics.mean_ccc(test[list(EMODB_EMOTIONS)].to_numpy(),
                           predicted[list(EMODB_EMOTIONS)].to_numpy())
    assert ccc == pytest.approx(evaluated["mean_ccc"], abs=2e-3)
    recalls = [(predicted.Sex[test.Sex == sex] == sex).mean() for sex in sorted(set(test.Sex))]
    assert np.mean(recalls) == pytest.approx(evaluated["uar"], abs=1e-6)
    assert np.abs(predicted.Age - test.Age).mean() == pytest.approx(evaluated["mae"], abs=1e-3)


@pytest.mark.parametrize("program_name, args, fragments", EMBEDDER_ERRORS)
def test_embedder_programs_give_one_line_errors(small_demo, error_runs, program_name, args,
                                                fragments):
    process = error_runs.program(program_name,
                                 *embedder_error_args(small_demo, program_name, args))
    assert_one_line_error(process, *fragments)


def test_experiment_writes_table_1_and_a_rerun_reuses_the_runs(small_demo, tmp_path):
    output_dir = str(tmp_path / "table1")
    args = [f"--data_dir={small_demo}", "--models=resnet18,conformer", "--forms=multitask",
            "--epochs=1", "--batch_size=8", "--clip_seconds=1", "--bootstrap_resamples=100",
            f"--output_dir={output_dir}"]
    (tmp_path / "runs").mkdir()
    # The grid, then a rerun that names no --data_dir (one process: one TensorFlow import).
    process, again = (succeeded(run) for run in programs_in_one_process(
        [("experiment", args), ("experiment", args[1:])], str(tmp_path / "runs")).values())
    lines = [line for line in process.stdout.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| Model | MTL? | Emotions (CCC) ↑ | Country (UAR) ↑")
    assert [line.split(" | ")[0] for line in lines[1:]] == [
        "| naive", "| resnet18 (MTL)", "| conformer (MTL)"]
    assert "95% percentile intervals from 100 bootstrap resamples of the speakers" in process.stdout
    for name in ("table1_Val.md", "table1_Val.csv", "table1_Val.json",
                 "side_by_side_confusion_Val.png", "side_by_side_training_curves.png",
                 "runs/resnet18_emotion_country_age_seed0/training_curves.png"):
        assert os.path.isfile(os.path.join(output_dir, name)), name
    # The rerun names no --data_dir: the grid continues on the data its runs were trained on.
    assert f"no --data_dir: reading the data the grid in {output_dir} was trained on, {small_demo}" \
        in again.stderr
    assert "reusing the finished run" in again.stderr and "training resnet18" not in again.stderr
    assert [line for line in again.stdout.splitlines() if line.startswith("| ")] == lines


@pytest.mark.parametrize("args, fragments", EXPERIMENT_ERRORS)
def test_experiment_gives_one_line_errors(error_runs, args, fragments):
    assert_one_line_error(error_runs.program("experiment", *args), *fragments)


@pytest.mark.parametrize("seeds", EXPERIMENT_BAD_SEEDS)
def test_experiment_flag_validation(error_runs, seeds):
    assert_one_line_error(error_runs.program("experiment", f"--seeds={seeds}"),
                          "--seeds must be distinct integers")


@requires_emodb
@requires_yamnet
def test_permutation_test_on_real_emodb(tmp_path):
    """Section 3.1 end to end: YAMNet embeddings of EmoDB (Sex as the class), 2 trials of each
    condition, the JSON, Figure 1 and the printed tables."""
    output_dir = str(tmp_path / "permutation")
    process = program("permutation_test", f"--data_dir={EMODB}",
                      f"--emotion_columns={','.join(EMODB_EMOTIONS)}", "--class_column=Sex",
                      f"--embedder={YAMNET}", "--trials=2", "--epochs=5",
                      f"--output_dir={output_dir}")
    result = json.load(open(os.path.join(output_dir, "permutation_test.json")))
    for condition in ("true", "shuffled", "incorrect"):
        scores = [t["val_mean_ccc"] for t in result["trials"] if t["condition"] == condition]
        assert len(scores) == 2 and np.all(np.isfinite(scores))
        assert result["summary"]["conditions"][condition]["n"] == 2
    for pair in ("true_vs_shuffled", "true_vs_incorrect", "shuffled_vs_incorrect"):
        assert {"t", "p", "df"} <= set(result["summary"]["t_tests"][pair])
    assert result["settings"]["epochs"] == 5 and result["settings"]["head"] == "conformer"
    assert os.path.getsize(os.path.join(output_dir, "permutation_test.png")) > 1000
    assert "| true distribution | 2 |" in process.stdout
    assert "| true vs incorrect |" in process.stdout and "kept a correct class" in process.stdout
    assert "[6/6] incorrect trial 1" in process.stdout



EMOGATOR = os.path.join(os.path.dirname(EMODB), "emogator")
requires_emogator = pytest.mark.skipif(
    not os.path.isfile(os.path.join(EMOGATOR, "data_info.csv")),
    reason=f"real-audio test: {EMOGATOR} is absent (it ships only beside the project, in ../shared)")


def emogator_subset(directory, train=28, val=12):
    """A small EmoGator copy: data_info.csv of `train` + `val` clips of distinct categories, and
    copies of their MP3s (a link leading out of wav/ is refused); returns (directory, emotion
    columns)."""
    import pandas as pd
    table = pd.read_csv(os.path.join(EMOGATOR, "data_info.csv"), dtype=str, keep_default_na=False)
    picked = pd.concat([table[table["Split"] == split].drop_duplicates("Category").head(count)
                        for split, count in (("Train", train), ("Val", val))])
    os.makedirs(os.path.join(directory, "wav"))
    picked.to_csv(os.path.join(directory, "data_info.csv"), index=False)
    for clip_id in picked["File_ID"].str.strip("[]"):
        shutil.copyfile(os.path.join(EMOGATOR, "wav", f"{clip_id}.mp3"),
                        os.path.join(directory, "wav", f"{clip_id}.mp3"))
    return directory, list(table.columns[4:])


@requires_emogator
def test_train_evaluate_baseline_on_real_emogator_without_age_labels(tmp_path):
    """Real vocal bursts (MP3) labelling two of the three tasks: --age_column= leaves age out."""
    data_dir, emotions = emogator_subset(str(tmp_path / "emogator"))
    assert "Romantic Love" in emotions and "Surprise (Negative)" in emotions and len(emotions) == 30
    data = [f"--data_dir={data_dir}", f"--emotion_columns={','.join(emotions)}",
            "--class_column=Category"]
    model_dir = str(tmp_path / "run")
    (tmp_path / "short_runs").mkdir()
    # (Two refusals, the baseline, a training and its evaluation: one process.)
    baseline_refused, train_refused, baseline, trained, evaluated = programs_in_one_process([
        ("baseline", data),
        ("train", [*data, "--age_column=", "--tasks=emotion,age", f"--model_dir={model_dir}"]),
        ("baseline", [*data, "--age_column="]),
        ("train", [*data, "--age_column=", "--epochs=1", "--batch_size=8", "--clip_seconds=1",
                   f"--model_dir={model_dir}"]),
        ("evaluate", [f"--model_dir={model_dir}", f"--data_dir={data_dir}"]),
    ], str(tmp_path / "short_runs")).values()
    # A named column the data lacks stays an error, and says how to leave the task out.
    assert_one_line_error(baseline_refused, "missing column 'Age'",
                          "(if the data has no age labels, pass --age_column=)")
    assert_one_line_error(train_refused,
                          "--tasks: the data has no age labels (--age_column is empty)")
    process = succeeded(trained)
    assert "| resnet18 (emotion+country) | YES |" in process.stdout
    assert " | — | " in process.stdout.splitlines()[-1]
    from vb_keras.training import runs
    run = runs.TrainedRun.finished(model_dir)
    assert sorted(run.model.output_names) == ["country", "emotion"]
    assert run.schema.tasks == ("emotion", "country") and len(run.schema.classes) == 28
    saved = json.load(open(os.path.join(model_dir, "eval_Val.json")))
    assert saved["mae"] is None and saved["uar"] is not None and len(saved["ccc_per_emotion"]) == 30
    process = succeeded(evaluated)
    assert "| resnet18 (emotion+country) | YES |" in process.stdout and "age:" not in process.stdout
    assert not os.path.exists(os.path.join(model_dir, "age_Val.png"))
    process = succeeded(baseline)
    assert "majority class" in process.stdout and "median age" not in process.stdout
    naive_row = process.stdout.rstrip().splitlines()[-1]
    assert naive_row.startswith("| NAIVE | — | ") and naive_row.split(" | ")[4] == "—"


if __name__ == "__main__":
    run_main()
