"""Runs a SavedModel the way TF Serving does, for the export tests: through `saved_model_cli run`
(the session-based loader) and through TensorFlow's C++ `LoadSavedModel`, compiled from
tools/tf_serving_loader/load_saved_model.cc against the installed TensorFlow wheel."""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT

SOURCE = os.path.join(REPO_ROOT, "tools", "tf_serving_loader", "load_saved_model.cc")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def saved_model_cli_run(path, feeds: dict, signature: str = "serving_default") -> dict:
    """`saved_model_cli run` on `feeds` (input key -> array); returns output key -> array."""
    with tempfile.TemporaryDirectory() as scratch:
        inputs = []
        for key, value in feeds.items():
            np.save(os.path.join(scratch, f"{key}.npy"), value)
            inputs.append(f"{key}={os.path.join(scratch, key)}.npy")
        outdir = os.path.join(scratch, "out")
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        process = subprocess.run(
            [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def", signature,
             "--inputs", ";".join(inputs), "--outdir", outdir],
            capture_output=True, text=True, env=ENV)
        assert process.returncode == 0, process.stderr[-3000:]
        # (String outputs, the class names, come as object arrays, which np.load unpickles.)
        return {name[:-len(".npy")]: np.load(os.path.join(outdir, name), allow_pickle=True)
                for name in os.listdir(outdir)}


def cpp_loader(directory) -> str:
    """The compiled C++ loader (built once into `directory`); skips where no C++ compiler is."""
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler: the C++ LoadSavedModel check needs one (CI's machine has g++)")
    # The binary's rpath names this environment's TensorFlow, so the key does too: a binary built
    # for another (since removed) virtual environment in the shared temp dir no longer loads.
    library = os.path.dirname(tf.__file__)
    with open(SOURCE, "rb") as stream:
        key = hashlib.sha256(stream.read() + tf.__version__.encode()
                             + library.encode()).hexdigest()[:16]
    binary = os.path.join(directory, f"load_saved_model_{key}")
    if not os.path.isfile(binary):
        scratch = f"{binary}.{os.getpid()}.tmp"
        # --no-as-needed: the session factory registers itself from libtensorflow_cc's static
        # initialisers, which the linker would otherwise drop as unused.
        process = subprocess.run(
            [compiler, "-O1", "-o", scratch, SOURCE, *tf.sysconfig.get_compile_flags(),
             f"-L{library}", "-Wl,--no-as-needed", "-l:libtensorflow_cc.so.2",
             "-l:libtensorflow_framework.so.2", f"-Wl,-rpath,{library}", "-w"],
            capture_output=True, text=True)
        assert process.returncode == 0, process.stderr[-3000:]
        os.replace(scratch, binary)   # another pytest worker may be building it too
    return binary


def cpp_load_and_run(binary, path, feeds: dict, signature: str = "serving_default") -> dict:
    """TensorFlow's C++ `LoadSavedModel` + `Session::Run` on `feeds`; output key -> array."""
    with tempfile.TemporaryDirectory() as scratch:
        arguments = []
        for key, value in feeds.items():
            file_path = os.path.join(scratch, f"{key}.pb")
            with open(file_path, "wb") as stream:
                stream.write(tf.make_tensor_proto(value).SerializeToString())
            arguments.append(f"{key}={file_path}")
        outdir = os.path.join(scratch, "out")
        os.makedirs(outdir)
        process = subprocess.run([binary, path, signature, outdir, *arguments],
                                 capture_output=True, text=True, env=ENV)
        assert process.returncode == 0, process.stderr[-3000:]
        outputs = {}
        for name in os.listdir(outdir):
            proto = tf.make_tensor_proto(0)
            with open(os.path.join(outdir, name), "rb") as stream:
                proto.ParseFromString(stream.read())
            outputs[name[:-len(".pb")]] = tf.make_ndarray(proto)
        return outputs


def assert_serves_like(path, feeds: dict, expected: dict, binary=None, atol=1e-4):
    """Both TF Serving loaders run `path` on `feeds` and reproduce `expected` (key -> array)."""
    runs = {"saved_model_cli run": saved_model_cli_run(path, feeds)}
    if binary is not None:
        runs["C++ LoadSavedModel"] = cpp_load_and_run(binary, path, feeds)
    for loader, outputs in runs.items():
        assert set(outputs) == set(expected), loader
        for key, value in expected.items():
            if np.asarray(value).dtype.kind in "OSU":   # names: equal, as text
                np.testing.assert_array_equal(_text(outputs[key]), _text(value),
                                              err_msg=f"{key} under {loader}")
            else:
                np.testing.assert_allclose(outputs[key], value, atol=atol,
                                           err_msg=f"{key} under {loader}")


def _text(values) -> list:
    return [value.decode() if isinstance(value, bytes) else str(value)
            for value in np.asarray(values).ravel()]
