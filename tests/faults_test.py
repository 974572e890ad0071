"""Nothing lost under faults: the bin/ programs killed with SIGKILL at chosen points, then rerun.

Each program runs in its own session on tiny data. A fault comes either from outside (the whole
process group is killed when a line appears on the program's output, as a terminal or a job
scheduler would) or from inside: `VB_FAULT` makes a startup hook (the sitecustomize.py this module
writes) kill the main process alone, as the OOM killer would, right before or after a chosen call,
such as the rename that publishes a result. Then the same command runs again; its outputs must equal
an uninterrupted run's (the same files, one history row per epoch), with no scratch file left and no
process of the killed run alive (the export's verifier child included).
"""
import contextlib
import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from conftest import REPO_ROOT, YAMNET, requires_yamnet, run_main

# Set in every program's environment (and so its children's): finds them after a kill.
MARK = "VB_FAULTS_TEST_RUN"
# How long a killed program's processes may take to go: long enough for the kernel, far shorter
# than the export's verifier takes to finish on its own (it imports TensorFlow).
GONE_WITHIN_S = 5.0
# Scratch names: atomic_directory's ".<name>.partial-*", write_file's ".*.tmp", training's
# ".partial.model.keras", BestWeights' "best.tmp.weights.h5", the cache's "<shard>.partial".
SCRATCH = re.compile(r"partial|\.tmp$|\.tmp\.")

HOOK = r'''"""Fault injection for tests/faults_test.py, loaded at startup (first on PYTHONPATH).

VB_FAULT = {"when": "before"|"after", "module": M, "name": "f" or "Class.method", "nth": N,
            "args": REGEX}: kill this process with SIGKILL before (or after) the N-th call of M.f
whose string arguments (joined by spaces; lists flattened) match REGEX. With "sleep": S it sleeps
S seconds there instead, holding the process at that point for a kill from outside.
"""
import importlib.abc
import importlib.util
import json
import os
import re
import signal
import sys
import time

_SPEC = os.environ.pop("VB_FAULT", None)   # popped: child processes run unharmed


def _text(values):
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from _text(value)
        elif isinstance(value, (str, os.PathLike)):
            yield os.fspath(value)


def _install(spec):
    pattern, nth, calls = re.compile(spec.get("args", "")), spec.get("nth", 1), [0]

    def wrap(function):
        def wrapper(*args, **kwargs):
            hit = False
            if pattern.search(" ".join(_text(args))):
                calls[0] += 1
                hit = calls[0] == nth
            if hit and spec.get("sleep"):
                time.sleep(spec["sleep"])
            elif hit and spec["when"] == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = function(*args, **kwargs)
            if hit and not spec.get("sleep"):
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    def patch(module):
        owner, _, attribute = spec["name"].rpartition(".")
        target = module
        for part in filter(None, owner.split(".")):
            target = getattr(target, part)
        setattr(target, attribute, wrap(getattr(target, attribute)))

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != spec["module"]:
                return None
            sys.meta_path.remove(self)
            found = importlib.util.find_spec(fullname)
            load = found.loader.exec_module

            def exec_module(module):
                load(module)
                patch(module)
            found.loader.exec_module = exec_module
            return found

    if spec["module"] in sys.modules:
        patch(sys.modules[spec["module"]])
    else:
        sys.meta_path.insert(0, Finder())


if _SPEC:
    _install(json.loads(_SPEC))
'''


@pytest.fixture(scope="module")
def hooks(tmp_path_factory):
    """The folder of the fault hook; its `tmp` is the programs' temporary directory ($TMPDIR)."""
    directory = tmp_path_factory.mktemp("fault_hooks")
    (directory / "sitecustomize.py").write_text(HOOK)
    (directory / "tmp").mkdir()
    return str(directory)


def temporary_files_left(hooks) -> list:
    """What the programs left in their temporary directory: a killed program cannot remove its
    own folder there (TensorFlow's AutoGraph files, Keras's assets); the next program must. (The
    one matplotlib cache shared by all programs where $HOME is not writable, as under Bazel, is
    meant to stay.)"""
    return sorted(name for name in os.listdir(os.path.join(hooks, "tmp"))
                  if not name.startswith("vb_keras-matplotlib-"))


class Run:
    """One program run: its exit status (-9 when killed), output and the processes it left."""

    def __init__(self, returncode, output, left, timed_out=False):
        self.returncode, self.output, self.left = returncode, output, left
        self.timed_out = timed_out

    def check(self):
        assert self.returncode == 0, self.output[-3000:]
        assert not self.left, self.left
        return self

    def check_killed(self):
        assert not self.timed_out, f"killed for running too long:\n{self.output[-3000:]}"
        assert self.returncode == -signal.SIGKILL, (
            f"the fault never fired (exit status {self.returncode}):\n{self.output[-3000:]}")
        return self


def program(hooks, name, *args, fault=None, kill_on=None, timeout=300,
            kill_signal=signal.SIGKILL) -> Run:
    """Runs bin/<name> in a session of its own, to the end, or until `fault` kills it from inside
    or a line of its output matches `kill_on` (then its whole process group is sent
    `kill_signal`, as a terminal's Ctrl-C or a scheduler's stop would be; a program that may
    handle it is read on to its end)."""
    tag = uuid.uuid4().hex
    env = {key: value for key, value in os.environ.items() if key != "VB_FAULT"}
    env.update({"PYTHONPATH": os.pathsep.join([hooks, REPO_ROOT]), "TF_CPP_MIN_LOG_LEVEL": "3",
                MARK: tag, "TMPDIR": os.path.join(hooks, "tmp")})
    if fault:
        env["VB_FAULT"] = json.dumps(fault)
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, "bin", f"{name}.py"), *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        start_new_session=True)
    timed_out = threading.Event()

    def kill_when_late():
        timed_out.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    timer = threading.Timer(timeout, kill_when_late)
    timer.start()
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if kill_on and re.search(kill_on, line):
                os.killpg(process.pid, kill_signal)
                kill_on = None
                if kill_signal == signal.SIGKILL:
                    break
        process.stdout.close()
        returncode = process.wait()
    finally:
        timer.cancel()
    return Run(returncode, "".join(lines), processes_left(process.pid, tag), timed_out.is_set())


def processes_left(group, tag) -> list:
    """The live processes of a finished run (in its process group, or carrying its mark), after
    GONE_WITHIN_S; they are killed before returning, so no test leaves any behind."""
    deadline = time.time() + GONE_WITHIN_S
    while True:
        left = _live_processes(group, tag)
        if not left or time.time() > deadline:
            break
        time.sleep(0.2)
    for pid, _ in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _live_processes(group, tag):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stream:
                stat = stream.read()
            state, _, process_group = stat[stat.rindex(")") + 2:].split()[:3]
            with open(f"/proc/{entry}/environ", "rb") as stream:
                marked = f"{MARK}={tag}".encode() in stream.read().split(b"\0")
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                command = stream.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):   # gone meanwhile, or another user's
            continue
        if state != "Z" and (marked or int(process_group) == group):
            found.append((int(entry), command[:200]))
    return found


def files(directory) -> set:
    """Relative paths of the files under `directory` (TensorBoard's event files by kind: each
    process writes its own, so a resumed run has more)."""
    paths = set()
    for root, _, names in os.walk(directory):
        for name in names:
            relative = os.path.relpath(os.path.join(root, name), directory)
            paths.add(re.sub(r"events\.out\.tfevents\..*", "events.out.tfevents.*", relative))
    return paths


def scratch_left(directory) -> list:
    return sorted(os.path.join(root, name) for root, dirs, names in os.walk(directory)
                  for name in dirs + names if SCRATCH.search(name))


def in_os_replace(target_regex, when="before"):
    """A fault at the rename (os.replace) onto a path matching `target_regex`."""
    return {"when": when, "module": "os", "name": "replace", "args": target_regex}


def history_epochs(model_dir) -> list:
    with open(os.path.join(model_dir, "history.csv")) as stream:
        return [int(row["epoch"]) for row in csv.DictReader(stream)]


class ProcessesLeft(AssertionError):
    """A killed run left processes alive."""


def assert_none_left(*runs):
    left = [process for run in runs for process in run.left]
    if left:
        raise ProcessesLeft(f"alive after the kill: {left}")


def killed_in_turn(hooks, name, command, faults) -> list:
    """Runs `command` once per fault, each run killed by its fault (a dict of `program`'s fault or
    kill_on); returns the runs. Each run after the first is also the rerun of the one before."""
    return [program(hooks, name, *command, **how).check_killed() for how in faults]


# ---------------------------------------------------------------- bin/train

EPOCHS = 2
TRAIN_FLAGS = [f"--epochs={EPOCHS}", "--batch_size=8", "--clip_seconds=0.5"]


@pytest.fixture(scope="module")
def trained(hooks, tiny_demo, tmp_path_factory):
    """An uninterrupted run: the reference, and the model the export faults start from."""
    model_dir = str(tmp_path_factory.mktemp("reference") / "run")
    program(hooks, "train", f"--data_dir={tiny_demo}", f"--model_dir={model_dir}",
            *TRAIN_FLAGS).check()
    assert history_epochs(model_dir) == list(range(1, EPOCHS + 1))
    return model_dir


# Uninterrupted runs in two processes gave the same history.csv, digit for digit, on these CPU
# kernels (2 cores, TF 2.21); the tolerance leaves room for kernels that sum in another order.
RESUMED_TOLERANCE = dict(rtol=1e-5, atol=1e-6)


def test_train_killed_mid_run_and_after_the_last_epoch_ends_as_an_uninterrupted_run(
        hooks, tiny_demo, trained, tmp_path):
    model_dir = str(tmp_path / "run")
    command = [f"--data_dir={tiny_demo}", f"--model_dir={model_dir}", *TRAIN_FLAGS]
    runs = killed_in_turn(hooks, "train", command, [
        # Epoch 1's history row is written, its backup not: the rerun repeats epoch 1 (and once
        # logged it twice).
        dict(fault={"when": "before", "module": "vb_keras.training.callbacks",
                    "name": "ResumableBackup.on_epoch_end"}),
        # Epoch 1's backup written: the rerun resumes at epoch 2 (issue 26: it then read epoch
        # 1's data and dropout masks again, and its epoch 2 differed from an uninterrupted one).
        dict(fault={"when": "after", "module": "vb_keras.training.callbacks",
                    "name": "ResumableBackup.on_epoch_end"}),
        # After the last epoch, everything but model.keras written (issue 15, part A (1): the
        # backup was once deleted before the save, and the rerun trained from scratch).
        dict(fault=in_os_replace(r"/model\.keras$")),
    ])
    assert_none_left(*runs)
    assert "resuming the unfinished run" in runs[2].output and "Epoch 1/" not in runs[2].output
    assert not os.path.exists(os.path.join(model_dir, "model.keras"))
    program(hooks, "train", *command).check()
    assert files(model_dir) == files(trained)
    assert not scratch_left(tmp_path)
    assert 1 <= json.load(open(os.path.join(model_dir, "config.json")))["best_epoch"] <= EPOCHS
    assert history_epochs(model_dir) == list(range(1, EPOCHS + 1))   # one row per epoch
    # Every figure of every epoch is the uninterrupted run's.
    import pandas as pd   # pylint: disable=import-outside-toplevel
    resumed, reference = (pd.read_csv(os.path.join(directory, "history.csv"))
                          for directory in (model_dir, trained))
    assert list(resumed.columns) == list(reference.columns)
    np.testing.assert_allclose(resumed.to_numpy(), reference.to_numpy(), **RESUMED_TOLERANCE)
    assert temporary_files_left(hooks) == []   # the killed runs' folders went with the rerun


# ---------------------------------------------------------------- bin/export

# Shares the train test's `trained` fixture (one worker runs this module: conftest's
# SHARED_FIXTURE_MODULES).

@pytest.fixture(scope="module")
def exported(hooks, trained, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("reference") / "exported")
    program(hooks, "export", f"--model_dir={trained}", f"--output_dir={root}").check()
    return root


def test_export_killed_while_verifying_and_before_the_rename_exports_version_1(
        hooks, trained, exported, tmp_path):
    root = str(tmp_path / "exported")
    command = [f"--model_dir={trained}", f"--output_dir={root}"]
    runs = killed_in_turn(hooks, "export", command, [
        # Right after the verifier child starts: it must go with its parent (it once lived on,
        # importing TensorFlow, for 13 s).
        dict(fault={"when": "after", "module": "subprocess", "name": "Popen.__init__",
                    "args": r"-m vb_keras\.serving\.export_check"}),
        # Verified, not yet renamed to <export_dir>/1.
        dict(fault=in_os_replace(r"/exported/1$")),
    ])
    assert not os.path.exists(os.path.join(root, "1"))
    rerun = program(hooks, "export", *command).check()
    assert "exported and verified in a fresh process" in rerun.output
    assert files(root) == files(exported)        # version 1 only, whole
    assert not scratch_left(tmp_path)
    assert_none_left(*runs)
    assert temporary_files_left(hooks) == []


# ---------------------------------------------------------------- bin/prepare_data

@pytest.fixture(scope="module")
def prepared(hooks, tiny_demo, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("reference") / "prepared")
    program(hooks, "prepare_data", f"--data_dir={tiny_demo}", f"--output_dir={out}").check()
    return out


def contents(directory) -> dict:
    """{relative path: content}; TFRecords as their tf.train.Examples (the serialized order of a
    feature map varies from process to process)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    result = {}
    for path in files(directory):
        full = os.path.join(directory, path)
        if path.endswith(".tfrecord"):
            result[path] = [tf.train.Example.FromString(record.numpy())
                            for record in tf.data.TFRecordDataset(full)]
        else:
            with open(full, "rb") as stream:
                result[path] = stream.read()
    return result


def test_prepare_data_killed_mid_run_and_before_the_rename_writes_the_same_set(
        hooks, tiny_demo, prepared, tmp_path):
    out = str(tmp_path / "prepared")
    command = [f"--data_dir={tiny_demo}", f"--output_dir={out}"]
    runs = killed_in_turn(hooks, "prepare_data", command, [
        # From outside, the whole process group, once Train is written (held there, so that Val
        # and Test are not).
        dict(kill_on=r"Train: \d+ clips", fault={
            "when": "before", "module": "vb_keras.data.prepare", "name": "_write_split", "nth": 2,
            "sleep": 120}),
        # Everything written, the scratch directory not yet renamed into place.
        dict(fault=in_os_replace(r"/prepared$")),
    ])
    assert_none_left(*runs)
    assert not os.path.exists(out)            # nothing that looks prepared
    program(hooks, "prepare_data", *command).check()
    assert contents(out) == contents(prepared)
    assert not scratch_left(tmp_path)         # the killed writers' scratch is gone too
    assert temporary_files_left(hooks) == []


# ---------------------------------------------------------------- bin/extract_embeddings

EXTRACT_FLAGS = ["--window_seconds=1.0"]   # the built-in (random) Conformer embedder


@pytest.fixture(scope="module")
def extracted(hooks, tiny_demo, tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("reference") / "embeddings")
    program(hooks, "extract_embeddings", f"--data_dir={tiny_demo}", f"--embedding_cache={cache}",
            *EXTRACT_FLAGS).check()
    return cache


def test_extract_embeddings_killed_before_the_cache_is_complete_resumes(hooks, tiny_demo,
                                                                        extracted, tmp_path):
    cache = str(tmp_path / "embeddings")
    command = [f"--data_dir={tiny_demo}", f"--embedding_cache={cache}", *EXTRACT_FLAGS]
    # Every shard written; cache_info.json, which marks the cache complete, not yet in place.
    killed, = killed_in_turn(hooks, "extract_embeddings", command,
                             [dict(fault=in_os_replace(r"/cache_info\.json$"))])
    assert_none_left(killed)
    rerun = program(hooks, "extract_embeddings", *command).check()
    assert "1 of 1 shards already written" in rerun.output    # resumed, not redone
    assert files(cache) == files(extracted)
    assert not scratch_left(tmp_path)
    assert temporary_files_left(hooks) == []


# ---------------------------------------------------------------- bin/make_demo_data

def test_make_demo_data_killed_midway_leaves_no_half_set_and_the_rerun_writes_it(
        hooks, tiny_demo, tmp_path):
    """Issue 26: killed after 189 clips, it left them and no data_info.csv at the target."""
    out = str(tmp_path / "demo")
    command = [f"--out_dir={out}", "--num_clips=60", "--seed=1"]   # tiny_demo's settings
    killed, = killed_in_turn(hooks, "make_demo_data", command, [dict(fault={
        "when": "before", "module": "soundfile", "name": "write", "nth": 30})])
    assert_none_left(killed)
    assert not os.path.exists(out)
    program(hooks, "make_demo_data", *command).check()
    reference = {path: content for path, content in contents(tiny_demo).items()
                 if path == "data_info.csv" or path.startswith("wav/")}
    assert contents(out) == reference
    assert not scratch_left(tmp_path)
    assert temporary_files_left(hooks) == []


# ---------------------------------------------------------------- Ctrl-C and SIGTERM

def test_ctrl_c_and_sigterm_end_in_one_line_with_status_130_and_leave_nothing_half_made(
        hooks, tiny_demo, trained, tmp_path):
    """Issue 26: train, export, prepare_data and extract_embeddings printed a KeyboardInterrupt
    traceback. The signal goes to the whole process group, as a terminal's Ctrl-C does, once a
    line shows the program at work; a hook holds it there (sleeping) so that it cannot finish
    first."""
    def held(module, name, **match):
        return {"when": "before", "module": module, "name": name, "sleep": 120, **match}

    cases = [
        ("train", [f"--data_dir={tiny_demo}", f"--model_dir={tmp_path / 'run'}", *TRAIN_FLAGS],
         signal.SIGINT, r"^Epoch 1/", held("vb_keras.training.callbacks",
                                          "ValidationScore.on_epoch_end")),
        ("export", [f"--model_dir={trained}", f"--export_dir={tmp_path / 'exported'}"],
         signal.SIGINT, r"no --data_dir: reading", held("subprocess", "run",
                                                         args=r"export_check")),
        ("prepare_data", [f"--data_dir={tiny_demo}", f"--out_dir={tmp_path / 'prepared'}"],
         signal.SIGTERM, r"Train: \d+ clips", held("vb_keras.data.prepare", "_write_split",
                                                   nth=2)),
        ("extract_embeddings", [f"--data_dir={tiny_demo}", f"--embedding_cache={tmp_path / 'cache'}",
                                *EXTRACT_FLAGS],
         signal.SIGTERM, r"embedding \d+ clips with", held("vb_keras.data.embedding_cache",
                                                           "_write_shard")),
    ]
    for name, args, stop, line, fault in cases:
        run = program(hooks, name, *args, kill_on=line, kill_signal=stop, fault=fault)
        assert run.returncode == 130 and not run.timed_out, (name, run.output[-3000:])
        # (the line may follow a progress bar's on the terminal: stdout and stderr are merged)
        told = [text for text in run.output.splitlines() if "interrupted" in text]
        assert len(told) == 1 and told[0].endswith(
            f"{os.path.join(REPO_ROOT, 'bin', name + '.py')}: interrupted; run the same command "
            "to resume"), (name, told)
        assert "Traceback" not in run.output, (name, run.output[-3000:])
        assert_none_left(run)
    assert not scratch_left(tmp_path)
    assert not os.path.exists(tmp_path / "exported" / "1")
    assert not os.path.exists(tmp_path / "prepared")
    assert not [path for path in files(tmp_path / "cache") if "shard" in path]
    assert temporary_files_left(hooks) == []


# ---------------------------------------------------------------- a full disk

@contextlib.contextmanager
def small_file_systems(directory, sizes):
    """{name: mount point} of a tmpfs of `sizes[name]` MB each, under `directory`; skips the test
    where mounting is not permitted (it needs root)."""
    points = {}
    try:
        for name, megabytes in sizes.items():
            point = directory / name
            point.mkdir()
            mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs",
                                      str(point)], capture_output=True, text=True)
            if mounted.returncode != 0:
                pytest.skip("a full disk is made with a small tmpfs, and mount is not permitted "
                            f"here ({mounted.stderr.strip() or mounted.returncode})")
            points[name] = point
        yield points
    finally:
        for point in points.values():
            subprocess.run(["umount", "-l", str(point)], check=False)


def fill(point, leave_bytes=0):
    """Fills the file system at `point` with a file, leaving about `leave_bytes` free."""
    free = os.statvfs(point).f_bavail * os.statvfs(point).f_frsize
    with open(point / "filler", "wb") as stream:
        stream.write(b"\0" * max(free - leave_bytes, 0))


def test_a_full_disk_is_one_line_leaves_nothing_half_made_and_the_command_goes_on_once_freed(
        tiny_demo, trained, exported, tmp_path):
    """Issue 26: bin/train crashed (h5py, SIGSEGV) leaving a 25 MB best.tmp.weights.h5; export,
    prepare_data, predict and extract_embeddings gave tracebacks, extract leaving a .partial
    shard. The programs run in one process each time (bin_test's runner)."""
    from program_runs import assert_one_line_error, programs_in_one_process, succeeded
    sizes = {"train": 30, "export": 5, "prepare": 1, "extract": 1, "predict": 1}
    with small_file_systems(tmp_path, sizes) as disks:
        fill(disks["extract"], leave_bytes=16 << 10)   # the 60 clips' shard takes ~70 kB
        fill(disks["predict"])
        commands = {
            "train": ("train", [f"--data_dir={tiny_demo}", f"--model_dir={disks['train']}/run",
                                *TRAIN_FLAGS]),
            "export": ("export", [f"--model_dir={trained}", f"--export_dir={disks['export']}/x"]),
            "prepare": ("prepare_data", [f"--data_dir={tiny_demo}",
                                         f"--out_dir={disks['prepare']}/out"]),
            "extract": ("extract_embeddings", [f"--data_dir={tiny_demo}", *EXTRACT_FLAGS,
                                               f"--embedding_cache={disks['extract']}/cache"]),
            "predict": ("predict", [f"--saved_model={exported}", f"--data_dir={tiny_demo}",
                                    f"--output={disks['predict']}/out.csv"]),
        }
        (tmp_path / "full_runs").mkdir()
        full = dict(zip(commands, programs_in_one_process(commands.values(),
                                                          str(tmp_path / "full_runs")).values()))
        for name, point in disks.items():
            assert_one_line_error(full[name], f"error: no space left on {point} (tmpfs) while "
                                              f"writing {point}/", "free some space and run "
                                                                   "the same command again")
            assert not scratch_left(point), name
        assert "best.weights.h5 (" in full["train"].stderr   # refused before h5py writes it
        assert not any(name.endswith(".h5") for name in files(disks["train"]))
        assert not os.path.exists(disks["export"] / "x" / "1")
        assert not os.path.exists(disks["prepare"] / "out")
        assert not [path for path in files(disks["extract"]) if "shard" in path]
        assert sorted(os.listdir(disks["predict"])) == ["filler"]
        # Space freed, the same commands go on.
        subprocess.run(["mount", "-o", "remount,size=700m", str(disks["train"])], check=True)
        for name in ("export", "prepare"):   # (the export and its scratch take ~100 MB)
            subprocess.run(["mount", "-o", "remount,size=300m", str(disks[name])], check=True)
        for name in ("extract", "predict"):
            os.remove(disks[name] / "filler")
        (tmp_path / "freed_runs").mkdir()
        freed = dict(zip(commands, programs_in_one_process(commands.values(),
                                                           str(tmp_path / "freed_runs")).values()))
        for name, point in disks.items():
            succeeded(freed[name])
            assert not scratch_left(point), name
        assert files(disks["train"] / "run") == files(trained)
        assert history_epochs(disks["train"] / "run") == list(range(1, EPOCHS + 1))
        assert files(disks["export"] / "x") == files(exported)
        assert os.path.isfile(disks["prepare"] / "out" / "data_info.csv")
        assert os.path.isfile(disks["predict"] / "out.csv")


# ---------------------------------------------------------------- bin/pretrain

# wav2vec 2.0 and distillation from YAMNet at once (--method=both), so every file either writes is
# under the faults: one epoch of 2 updates on the tiny demo's half-second chunks.
PRETRAIN_FLAGS = [f"--teacher={YAMNET}", "--method=both", "--steps=2", "--batch_size=16",
                  "--clip_seconds=0.5", "--codebook_entries=16", "--num_distractors=8"]


@requires_yamnet
def test_pretrain_killed_at_its_targets_its_epoch_and_its_weights_ends_as_an_uninterrupted_run(
        hooks, tiny_demo, tmp_path):
    run_dir = str(tmp_path / "run")
    command = [f"--data_dir={tiny_demo}", f"--output_dir={run_dir}", *PRETRAIN_FLAGS]
    runs = killed_in_turn(hooks, "pretrain", command, [
        # The teacher's embeddings computed, their file not yet in place.
        dict(fault=in_os_replace(r"/teacher_targets\.npz$")),
        # The epoch trained, its backup (and history row) not written: the rerun trains it again.
        dict(fault={"when": "before", "module": "vb_keras.training.callbacks",
                    "name": "ResumableBackup.on_epoch_end"}),
        # Trained to the end, the weights that mark the run finished not yet in place: the rerun
        # writes them from the backup without training again.
        dict(fault=in_os_replace(r"/pretrained\.weights\.h5$")),
    ])
    assert_none_left(*runs)
    assert not os.path.exists(os.path.join(run_dir, "pretrained.weights.h5"))
    rerun = program(hooks, "pretrain", *command).check()
    assert "pre-trained: " in rerun.output and "reusing the teacher's embeddings" in rerun.output
    assert {"config.json", "history.csv", "teacher_targets.npz", "pretrained.weights.h5",
            "training_curves.png"} <= files(run_dir)
    assert not any(path.startswith("backup") for path in files(run_dir))
    assert history_epochs(run_dir) == [1]      # one row for the one epoch
    assert not scratch_left(tmp_path)
    assert temporary_files_left(hooks) == []


if __name__ == "__main__":
    run_main()
