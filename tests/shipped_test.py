"""vb_keras.serving.shipped and the model it finds, saved_models/emogator (docs/model_card.md): it
is in the checkout, small, found by an installed package too, served by TF Serving's C++ loader,
and gives the model card's prediction for the example clip beside it, in a fresh process."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO_ROOT, run_main
from serving_loaders import cpp_load_and_run, cpp_loader
from vb_keras.data import loading, pipeline, unlabelled
from vb_keras.keys import SIGNATURE
from vb_keras.serving import export, shipped

CARD = os.path.join(REPO_ROOT, "docs", "model_card.md")
SERVABLE = os.path.join(REPO_ROOT, "saved_models", shipped.NAME)
# The repository's limit for a shipped file set (GitHub refuses files over 100 MB; well under).
MAX_BYTES = 25 * 2 ** 20


def card_example():
    """(the example clip's path, the table lines the card shows for it): the card's block that
    starts with `$ bin/predict --audio=docs/examples/...`."""
    text = open(CARD, encoding="utf-8").read()
    match = re.search(r"```\n\$ bin/predict --audio=(\S+)\n(.*?)```", text, re.S)
    assert match, "docs/model_card.md shows no `$ bin/predict --audio=...` block"
    return os.path.join(REPO_ROOT, match.group(1)), match.group(2).rstrip("\n").splitlines()


def _files(root) -> dict:
    return {os.path.relpath(os.path.join(folder, name), root):
            os.path.getsize(os.path.join(folder, name))
            for folder, _, names in os.walk(root) for name in names}


def test_the_servable_is_found_and_is_small():
    root = shipped.servable_root()
    # The checkout's, or (after `pip install .`, as CI installs) the installed package's copy.
    assert root == SERVABLE or (root.endswith(os.path.join("vb_keras_models", shipped.NAME))
                                and _files(root) == _files(SERVABLE)), root
    version = export.latest_version(SERVABLE)
    assert os.path.basename(version) == "1"
    size = sum(_files(SERVABLE).values())
    assert 0 < size < MAX_BYTES, size
    assert os.path.isfile(os.path.join(version, "assets", "classes.txt"))


def test_an_installed_package_is_found_first(tmp_path, monkeypatch):
    # As `pip install .` lays it out: saved_models/ becomes the package vb_keras_models.
    package = tmp_path / "vb_keras_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / shipped.NAME).symlink_to(SERVABLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert shipped.servable_root() == str(package / shipped.NAME)


def test_predict_without_a_model_prints_the_cards_table_for_the_example(tmp_path):
    example, table = card_example()
    # A fresh process, from another directory, as a user runs it.
    process = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bin", "predict.py"),
                              f"--audio={example}"], capture_output=True, text=True, timeout=600,
                             cwd=tmp_path, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert process.returncode == 0, process.stderr[-3000:]
    assert "no --saved_model: predicting with the shipped model" in process.stderr
    assert process.stdout.rstrip("\n").splitlines() == table


def test_tf_servings_cpp_loader_serves_the_example_as_python_does(tmp_path_factory):
    example, table = card_example()
    version = export.latest_version(SERVABLE)
    files = unlabelled.audio_files([example])
    [(_, audio)] = list(loading.decode_clips(files, "File_ID", "fail", progress=False))
    feeds = pipeline.padded_batch([audio.astype(np.float32) / 32768.0])   # as bin/predict sends
    python = {key: value.numpy() for key, value in tf.saved_model.load(version).signatures[
        SIGNATURE](**{key: tf.constant(value) for key, value in feeds.items()}).items()}
    binary = cpp_loader(str(tmp_path_factory.mktemp("loader")))
    served = cpp_load_and_run(binary, version, feeds)
    assert set(served) == set(python) == {"emotion", "country", "country_name"}
    for key in ("emotion", "country"):
        np.testing.assert_allclose(served[key], python[key], atol=1e-4, err_msg=key)
    name = served["country_name"].ravel()[0]
    name = name.decode() if isinstance(name, bytes) else str(name)
    # The class the card's table puts first for the example (names may hold spaces).
    clip_id = os.path.splitext(os.path.basename(example))[0]
    first = re.match(r"(.+?) \d\.\d\d,", table[1][len(clip_id):].strip())
    assert first and first.group(1) == name, (table, name)


if __name__ == "__main__":
    run_main()
