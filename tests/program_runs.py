"""Runs bin/ programs the way the end-to-end tests need: several in one process (TensorFlow's
import paid once), and the checks of their exit status and one-line errors."""

import json
import os
import subprocess
import sys

from conftest import REPO_ROOT


def succeeded(process):
    """`process`, once it has ended with exit status 0 (as `program` checks)."""
    if process.returncode != 0:
        raise AssertionError(f"{process.args} failed ({process.returncode}):\n"
                             f"{process.stderr[-3000:]}")
    return process


def assert_one_line_error(process, *fragments):
    assert process.returncode == 1
    errors = [line for line in process.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in process.stderr, process.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# Runs several bin/ programs, one after another, in ONE process (TensorFlow's import, ~10 s of CPU,
# paid once), each through its own __main__ as `python bin/<name>.py ...` runs it (so through
# common_flags.run and absl's flag parsing), or as installed (form "installed": the module
# vb_keras_bin.<name> under a console script, found in argv[4]), with its stdout and stderr (file
# descriptors 1 and 2) captured and its exit status as the interpreter would give it: SystemExit's
# code, 1 and the traceback for an exception. Between programs the flags one defined are deleted
# (the next defines them again). Reads [[name, args, form], ...] from the JSON file argv[2] and
# writes [[returncode, stdout, stderr, [the flags it defined], whether TensorFlow has been
# imported by then], ...] to argv[3].
PROGRAMS_SCRIPT = """
import importlib, json, os, runpy, sys, tempfile, traceback
from absl import app, flags
app.define_help_flags()   # (app.run defines them on its first call: not a program's)
root, cases_path, results_path, installed_root = sys.argv[1:5]
sys.path[:0] = [os.path.join(root, "bin"), installed_root]
main_module, results = sys.modules["__main__"], []
for name, args, form in json.load(open(cases_path)):
    before, path = set(flags.FLAGS), os.path.join(root, "bin", name + ".py")
    main_module.__doc__ = None   # (an installed program's --help shows its module's own)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        try:
            if form == "installed":
                sys.argv = ["vb_" + name, *args]
                importlib.import_module("vb_keras_bin." + name).run()
            else:
                sys.argv = [path, *args]
                runpy.run_path(path, run_name="__main__")
            returncode = 0
        except SystemExit as exit:
            returncode = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            if not isinstance(exit.code, (int, type(None))):
                print(exit.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            returncode = 1
        finally:
            sys.stdout.flush(); sys.stderr.flush()
            os.dup2(saved[0], 1); os.dup2(saved[1], 2)
            os.close(saved[0]); os.close(saved[1])
        out.seek(0); err.seek(0)
        output = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    # (An imported library may define flags of its own: left alone.)
    defined = []
    for flag in set(flags.FLAGS) - before:
        module = os.path.basename(flags.FLAGS.find_module_defining_flag(flag))
        if module.removesuffix(".py").rpartition(".")[2] in (name, "common_flags",
                                                             "training_flags"):
            defined.append(flag)
            delattr(flags.FLAGS, flag)
    sys.modules.pop("vb_keras_bin." + name, None)
    results.append([returncode, *output, sorted(defined), "tensorflow" in sys.modules])
json.dump(results, open(results_path, "w"))
"""


def programs_in_one_process(cases, directory, installed_root=""):
    """{(name, args, form): subprocess.CompletedProcess, `.defined` the flags it defined and
    `.loaded_tensorflow` whether TensorFlow was imported by its end} of
    `cases`, [(name, [args])] or [(name, [args], "checkout" or "installed")], run by
    PROGRAMS_SCRIPT in one process; `directory` holds its input and output; `installed_root` holds
    the package vb_keras_bin of the installed form."""
    cases = [(case[0], tuple(case[1]), case[2] if len(case) > 2 else "checkout") for case in cases]
    cases_path, results_path = os.path.join(directory, "cases.json"), os.path.join(directory,
                                                                                  "results.json")
    with open(cases_path, "w") as stream:
        json.dump([[name, list(args), form] for name, args, form in cases], stream)
    process = subprocess.run(
        [sys.executable, "-c", PROGRAMS_SCRIPT, REPO_ROOT, cases_path, results_path,
         installed_root], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.returncode == 0, process.stderr[-3000:]
    with open(results_path) as stream:
        results = json.load(stream)
    assert len(results) == len(cases)
    runs = {}
    for case, (returncode, stdout, stderr, defined, tensorflow) in zip(cases, results):
        runs[case] = subprocess.CompletedProcess([case[0], *case[1]], returncode, stdout, stderr)
        runs[case].defined, runs[case].loaded_tensorflow = defined, tensorflow
    return runs
