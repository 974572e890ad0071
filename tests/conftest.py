"""Shared fixtures: tiny generated data sets, the shared/ material, a private demo cache."""

import ast
import contextlib
import importlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import soundfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
# ../shared beside the project (CI and developer machines); absent on a user's machine.
SHARED = os.environ.get("VB_KERAS_SHARED") or os.path.join(os.path.dirname(REPO_ROOT), "shared")
EMODB = os.path.join(SHARED, "data", "emodb")
YAMNET = os.path.join(SHARED, "models", "yamnet_hub")
EFFICIENTAT = os.path.join(SHARED, "models", "efficientat_mn04_hub")
EMODB_EMOTIONS = ("Anger", "Boredom", "Disgust", "Fear", "Happiness", "Sadness", "Neutral")

requires_emodb = pytest.mark.skipif(
    not os.path.isfile(os.path.join(EMODB, "data_info.csv")),
    reason=f"real-audio test: {EMODB} is absent (it ships only beside the project, in ../shared)")
requires_yamnet = pytest.mark.skipif(
    not os.path.isfile(os.path.join(YAMNET, "saved_model.pb")),
    reason=f"real embedder test: {YAMNET} is absent (it ships only beside the project, in ../shared)")


requires_efficientat = pytest.mark.skipif(
    not os.path.isfile(os.path.join(EFFICIENTAT, "saved_model.pb")),
    reason=f"real embedder test: {EFFICIENTAT} is absent (it ships only beside the project, in "
    "../shared)")

# Test modules whose tests share an expensive module-scoped fixture (a trained model, an export, a
# pre-training run, the programs' refused-input runs, a built Conformer). Under `-n 2` each runs
# whole on one worker, so the fixture is built once, not on every worker that was handed some of
# its tests; every other test is still handed out on its own.
SHARED_FIXTURE_MODULES = frozenset(f"{name}_test.py" for name in (
    "avb", "bin", "conformer", "embedders", "experiment", "export", "faults",
    "permutation_resumable", "prediction", "pretraining"))


# optionalhook: a run without pytest-xdist (`-p no:xdist`) has no such hook to validate against.
@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scope scheduler with a module as the unit for SHARED_FIXTURE_MODULES and a
    test as the unit otherwise: `--dist=loadgroup` with `xdist_group` marks would say this, but
    it silently stopped grouping under pytest 9.2 (pytest-dev/pytest-xdist#1386)."""
    if config.getvalue("dist") != "load":   # (only the default of -n: an explicit --dist wins)
        return None
    from xdist.scheduler import LoadScopeScheduling   # pylint: disable=import-outside-toplevel

    class SharedFixtureModules(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            module = nodeid.split("::", 1)[0]
            return module if os.path.basename(module) in SHARED_FIXTURE_MODULES else nodeid

    return SharedFixtureModules(config, log)


@pytest.fixture(scope="session", autouse=True)
def private_demo_cache(tmp_path_factory):
    """Points the demo-data cache (and any subprocess) at a temporary directory."""
    os.environ["VB_KERAS_CACHE"] = str(tmp_path_factory.mktemp("vb_keras_cache"))


@pytest.fixture(scope="session", autouse=True)
def private_working_directory(tmp_path_factory):
    """Runs the tests (and the programs they start) in an empty directory, so that defaults relative
    to the working directory, such as bin/train's runs/<model>_<tasks>, never meet a checkout's own
    runs/ (an unfinished run there once turned a flag-error test into a different error)."""
    os.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(scope="session")
def load_saved_model_binary(tmp_path_factory):
    """The C++ TF Serving loader of `serving_loaders`, built once per test session (the parent of
    the base temp is shared by pytest-xdist's workers)."""
    import serving_loaders   # pylint: disable=import-outside-toplevel  (TensorFlow; few tests)
    return serving_loaders.cpp_loader(str(tmp_path_factory.getbasetemp().parent))


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """A 60-clip demo data set in the HUME-VB layout (Train 36, Val 12, Test 12 clips)."""
    from vb_keras.data import demo
    return demo.write_demo_data(str(tmp_path_factory.mktemp("tiny_demo")), num_clips=60, seed=1)


def write_tiny_embedder(directory, dimension=4, reusable=True, seed=0):
    """Writes a tiny TF-Hub-style embedder: frames of 25 ms -> one ReLU layer -> mean over frames.
    `reusable`: a TF Hub Reusable SavedModel (variables, trainable_variables,
    regularization_losses, __call__(audio, training)), so it can be fine-tuned; else only the
    `serving_default` signature, as a frozen export has."""
    import tensorflow as tf   # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(seed)
    kernel = tf.Variable(rng.normal(0, 0.05, (400, dimension)).astype(np.float32),
                         name="layer1/kernel")
    bias = tf.Variable(np.zeros(dimension, np.float32), name="layer1/bias")
    gain = tf.Variable(1.0, trainable=False, name="frontend/gain")

    def call(audio_samples, training=False):
        frames = tf.signal.frame(audio_samples * gain, 400, 160, pad_end=True)
        hidden = tf.nn.relu(tf.einsum("nft,td->nfd", frames, kernel) + bias)
        if training:   # (a training-only path, as dropout would be)
            hidden = hidden * 1.0
        return {"embedding": tf.reduce_mean(hidden, axis=1)}

    spec = tf.TensorSpec([None, None], tf.float32, name="audio_samples")
    root = tf.__internal__.tracking.AutoTrackable()
    root.kept = [kernel, bias, gain]
    if reusable:
        root.variables = [kernel, bias, gain]
        root.trainable_variables = [kernel, bias]
        root.regularization_losses = []
        root.__call__ = tf.function(call, autograph=False)
        for training in (False, True):
            root.__call__.get_concrete_function(spec, training=training)
    serve = tf.function(lambda audio_samples: call(audio_samples), input_signature=[spec])
    tf.saved_model.save(root, directory, signatures={"serving_default": serve})
    return directory


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory):
    """A tiny Reusable SavedModel embedder (`write_tiny_embedder`), 4-d."""
    return write_tiny_embedder(str(tmp_path_factory.mktemp("tiny_embedder")))


def write_foreign_saved_model(path, kind="write_file", written=None):
    """A SavedModel as someone else might publish one, with bin/export's signature
    (waveform, num_samples -> emotion) unless `kind` says otherwise:
      write_file  serving_default also writes the file `written` (tf.io.write_file)
      read_file   __call__ (not a signature) reads `written`
      text_table  a lookup table initialised from the text file `written` when it is loaded
      print_file  serving_default prints to the file `written` (PrintV2, output_stream=file://)
      print       serving_default prints to stderr: harmless
      plain       nothing but arithmetic
      wrong_signature  serving_default takes `x` and returns `y`
    Returns `path`."""
    import tensorflow as tf   # pylint: disable=import-outside-toplevel  (few tests)

    class Foreign(tf.Module):
        def __init__(self):
            super().__init__()
            if kind == "text_table":
                self.table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
                    written, tf.string, 0, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER), -1)

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform"),
                                      tf.TensorSpec([None], tf.int32, name="num_samples")])
        @tf.autograph.experimental.do_not_convert
        def serve(self, waveform, num_samples):
            if kind == "write_file":
                tf.io.write_file(written, "written by a model")
            elif kind == "print_file":
                tf.print("hello", output_stream=f"file://{written}")
            elif kind == "print":
                tf.print("hello", output_stream=sys.stderr)
            emotion = tf.zeros([tf.shape(waveform)[0], 10]) + tf.cast(num_samples[:1], tf.float32)
            if kind == "text_table":
                emotion += tf.cast(self.table.lookup(tf.constant("x")), tf.float32)
            return {"emotion": emotion}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        @tf.autograph.experimental.do_not_convert
        def other(self, x):
            return {"y": x * 2}

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        @tf.autograph.experimental.do_not_convert
        def __call__(self, x):
            if kind == "read_file":
                return tf.strings.length(tf.io.read_file(written))
            return tf.cast(x, tf.int32)

    model = Foreign()
    signature = model.other if kind == "wrong_signature" else model.serve
    tf.saved_model.save(model, str(path), signatures={"serving_default": signature})
    return path


def write_wav(path, samples, sample_rate=16000, subtype="PCM_16"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, samples, sample_rate, subtype=subtype)
    return path


def tone(seconds=1.0, sample_rate=16000, frequency=440.0, amplitude=0.5):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_data_info(directory, rows):
    """Writes a HUME-VB data_info.csv from a list of dicts (missing emotion columns default to 0.1)."""
    from vb_keras.schema import HUME_VB_EMOTIONS
    frame = pd.DataFrame(rows)
    for column in HUME_VB_EMOTIONS:
        frame[column] = frame[column].astype(object).fillna(0.1) if column in frame else 0.1
    os.makedirs(directory, exist_ok=True)
    frame.to_csv(os.path.join(directory, "data_info.csv"), index=False)
    return directory


@contextlib.contextmanager
def directory_held_by_another_process(directory, seconds=60, then=""):
    """Runs a process that holds `directory` (`atomic.owned_directory`) for `seconds`, then runs the
    Python statement `then` (with `directory` bound) and ends; yields the process once it holds it."""
    script = textwrap.dedent(f"""
        import os, time
        from vb_keras.utils import atomic
        directory = {str(directory)!r}
        with atomic.owned_directory(directory):
            print("held", flush=True)
            time.sleep({seconds})
            {then}
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": REPO_ROOT})
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def _free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run_local_workers(args_of, log_dir, count=2, timeout=600):
    """Runs `count` processes `args_of(index)` (a command line) as the workers of one multi-worker
    cluster on localhost (TF_CONFIG), and returns [(returncode, stdout, stderr)] once all ended."""
    cluster = {"worker": [f"localhost:{_free_port()}" for _ in range(count)]}
    workers, logs = [], []
    try:
        for index in range(count):
            env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3",
                   "TF_CONFIG": json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": index}})}
            # Output goes to files, not pipes: a worker blocked on a full pipe that nobody reads
            # would stop joining the collectives and hang the others.
            logs.append((open(os.path.join(log_dir, f"worker{index}.out"), "w+"),
                         open(os.path.join(log_dir, f"worker{index}.err"), "w+")))
            workers.append(subprocess.Popen(args_of(index), stdout=logs[-1][0], stderr=logs[-1][1],
                                            text=True, env=env))
        results = []
        for worker, (out, err) in zip(workers, logs):
            worker.wait(timeout=timeout)
            out.seek(0)
            err.seek(0)
            results.append((worker.returncode, out.read(), err.read()))
        return results
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        for files in logs:
            for stream in files:
                stream.close()


def run_main():
    """Lets a test module run on its own (as Bazel's py_test does) through pytest; with
    VB_KERAS_BAZEL_CHECK=imports in the environment (`.bazelrc`'s --config=imports), checks its
    imports instead (`check_imports`)."""
    if os.environ.get("VB_KERAS_BAZEL_CHECK") == "imports":
        sys.exit(check_imports(sys.argv[0]))
    sys.exit(pytest.main([sys.argv[0], "-q", "-p", "no:cacheprovider"]))


# The modules of this repository a test may import: the library and the tests' helpers.
LOCAL_MODULES = ("vb_keras", "conftest", "serving_loaders", "permutation_fixtures")


def check_imports(test_file) -> int:
    """What a Bazel test target proves that the README's test run cannot: that the target's
    declared deps hold all the code it needs. Bazel runs the test from runfiles holding only those
    deps, and every file the tests open and every program they start is read from the checkout
    (REPO_ROOT), so the imports are what the runfiles decide. This imports every module of the
    repository that an import statement of `test_file` names, at any depth of the code (inside
    functions too, whether or not a test reaches it), and, the same way, every module those name,
    transitively; then it collects the tests. A missing dep fails here as an ImportError, where a
    run of the tests would find it only on the paths they take. The tests' own checks run in the
    README's test command (`.ci/run`, step 1)."""
    seen, pending = set(), [test_file]
    while pending:
        path = pending.pop()
        for name in _local_imports(path):
            if name in seen:
                continue
            seen.add(name)
            module = importlib.import_module(name)
            if getattr(module, "__file__", None):
                pending.append(module.__file__)
    print(f"{os.path.basename(test_file)}: {len(seen)} modules of the repository import from the "
          "runfiles")
    return pytest.main([test_file, "-q", "--collect-only", "-p", "no:cacheprovider"])


def _local_imports(path):
    """The LOCAL_MODULES modules an import statement of the file `path` names, anywhere in it."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from package import name`: the package, and `name` where it is a module.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names
                                      if _is_module(f"{node.module}.{alias.name}")]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in LOCAL_MODULES)


def _is_module(name) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:   # `name`'s parent is a module, not a package: `name` is an attribute
        return False
