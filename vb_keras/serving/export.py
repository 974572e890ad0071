"""SavedModel export for TF Serving: raw audio in, the three task outputs out.

The `serving_default` signature takes
  waveform     float32 [batch, samples]: 16 kHz audio in [-1, 1], rows zero-padded to the longest
  num_samples  int32 [batch]: the true length of each row
and returns
  emotion  float32 [batch, n_emotions]: perceived intensities, in the order of assets/emotions.txt
  country  float32 [batch, n_classes]: class probabilities, in the order of assets/classes.txt
  country_name  string [batch]: the most probable class's name
  age      float32 [batch, 1]: years
(only the outputs of the tasks the training data labels, `LabelSchema.tasks`: a data set without age
labels gives a servable without `age`, and without its asset for a missing emotion or class task;
without class labels there is no `country` nor `country_name`). The intensities are the emotion
layer's linear outputs, not clipped to [0, 1]: the challenge's CCC is computed on them as they are.
Everything a client would otherwise have to reproduce is inside the graph: normalisation and log-mel
(ResNets), or windowing, the frozen embedder and the head (conformer family).

One servable may combine several trained models, each answering the tasks it was trained for, with
the naive prediction for tasks no model covers: the paper's submission (section 3.3) is a
single-task emotion ResNet34, a single-task country ResNet34 and the median training age.

Exports use TF Serving's layout, `<export root>/<integer version>/`, and appear whole or not at all:
a version is written and checked in a scratch directory beside it (named so that TF Serving, which
only loads integer names, never sees it) and renamed into place only after a fresh Python process has
reloaded it, through Python's TF2 loader and through the session-based loader that TF Serving uses,
and reproduced the Keras models' outputs on sample audio.
"""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import tensorflow as tf

from vb_keras.keys import CLASS_NAME, NUM_SAMPLES, SIGNATURE, WAVEFORM
from vb_keras.data.pipeline import padded_batch
from vb_keras.evaluation import ensemble
from vb_keras.families import registry
from vb_keras.serving import export_check
# Runs a SavedModel as TF Serving does (also for the tests and tools that check exports).
from vb_keras.serving.session_loader import run_with_session_loader  # noqa: F401
from vb_keras.utils import atomic
from vb_keras.utils.atomic import atomic_directory
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema

EMOTIONS_ASSET, CLASSES_ASSET = "emotions.txt", "classes.txt"
EXPORT_INFO = "vb_keras_export.json"
# Outputs of the reloaded SavedModel must match the Keras models' to this (float32 arithmetic in
# another graph order; the embedders' FFTs dominate).
VERIFY_TOLERANCE = 1e-3


class Member:
    """One trained model inside a servable: the model, the tasks it answers, and what its family
    puts in front of it (`ModelFamily.preprocessor`: for heads on a frozen embedder, the embedder
    and windows)."""

    def __init__(self, model, params: TrainingParams, tasks=None):
        self.model = model
        self.params = params
        self.tasks = tuple(tasks or params.tasks)
        self.audio_inputs = registry.preprocessor(params)

    @property
    def name(self) -> str:
        return f"{self.params.model} ({'+'.join(self.params.tasks)})"


class Servable:
    """The exported graph (see the module docstring).

    Args:
      members: `Member`s; each task comes from the first member trained for it.
      schema: the label schema (emotion names and classes become assets).
      naive: `baseline.fit_naive(...)` of the training split, for tasks no member covers.
    """

    def __init__(self, members, schema: LabelSchema, naive: dict):
        self.members = list(members)
        self.owners = ensemble.task_owners(member.tasks for member in self.members)
        self.schema = schema
        self.naive = naive
        self.naive_rows = naive_rows(naive, schema)

    def serve(self, waveform, num_samples):
        """The `serving_default` function: see the module docstring."""
        batch = tf.shape(waveform)[0]
        # Whatever a client put beyond a row's true length is ignored: it becomes zero padding.
        waveform *= tf.sequence_mask(num_samples, tf.shape(waveform)[1], dtype=waveform.dtype)
        outputs = {}
        for index, member in enumerate(self.members):
            tasks = [task for task, owner in self.owners.items() if owner == index]
            if not tasks:
                continue
            features = member.audio_inputs.in_graph(waveform, num_samples)
            result = member.model(features, training=False)
            outputs.update({task: tf.cast(result[task], tf.float32) for task in tasks})
        # Only the tasks the data has labels for (`schema.tasks`) are outputs of the signature.
        for task in self.schema.tasks:
            if task not in outputs:
                outputs[task] = tf.tile(tf.constant(self.naive_rows[task])[tf.newaxis], [batch, 1])
        served = {task: outputs[task] for task in self.schema.tasks}
        if COUNTRY in served:
            served[CLASS_NAME] = tf.gather(tf.constant(self.schema.classes),
                                           tf.argmax(served[COUNTRY], axis=-1))
        return served

    def archive(self) -> keras.export.ExportArchive:
        """The servable as a Keras `ExportArchive`, Keras 3's path to a SavedModel that TF
        Serving's C++ loader can run.

        A Keras 3 model saved inside a plain `tf.Module` by `tf.saved_model.save` reloads in
        Python, but its variables are missing from the graph the session-based loader restores
        ("Could not find variable emotion/bias" on the first request); the archive records every
        variable the endpoint reads, the frozen embedders' included.
        """
        archive = keras.export.ExportArchive()
        for member in self.members:
            archive.track(member.model)
            for trackable in member.audio_inputs.trackables:
                archive.track(trackable)
        archive.add_endpoint(SIGNATURE, self.serve, input_signature=[
            tf.TensorSpec([None, None], tf.float32, name=WAVEFORM),
            tf.TensorSpec([None], tf.int32, name=NUM_SAMPLES)])
        return archive


def reference_outputs(members, schema: LabelSchema, naive: dict, clips) -> dict:
    """The Keras models' own outputs for a list of float32 clips, computed the way training and
    evaluation compute them (not through the servable), for checking an export."""
    owners = ensemble.task_owners(member.tasks for member in members)
    outputs = {}
    for index, member in enumerate(members):
        tasks = [task for task, owner in owners.items() if owner == index]
        if not tasks:
            continue
        result = member.model(member.audio_inputs.on_host(clips), training=False)
        outputs.update({task: np.asarray(result[task], np.float32) for task in tasks})
    rows = naive_rows(naive, schema)
    return {task: outputs[task] if task in outputs else np.tile(rows[task], (len(clips), 1))
            for task in schema.tasks}


def naive_rows(naive: dict, schema: LabelSchema) -> dict:
    """One output row per task of the naive prediction (`baseline.fit_naive`): the training-mean
    emotions, the majority class as probability 1, the median training age (of the tasks `naive`
    has)."""
    rows = {}
    if EMOTION in naive:
        rows[EMOTION] = np.asarray(naive[EMOTION], np.float32)
    if COUNTRY in naive:
        rows[COUNTRY] = np.eye(schema.num_classes, dtype=np.float32)[int(naive[COUNTRY])]
    if AGE in naive:
        rows[AGE] = np.asarray([naive[AGE]], np.float32)
    return rows


def sample_clips(seed: int = 0):
    """Deterministic sample audio for checking an export: clips of 1.3, 2.7 and 5.6 s (a short
    clip, one with a tail window and one with several windows), tones in noise."""
    rng = np.random.default_rng(seed)
    clips = []
    for seconds, frequency in ((1.3, 220.0), (2.7, 440.0), (5.6, 330.0)):
        t = np.arange(int(seconds * 16000)) / 16000
        clip = 0.3 * np.sin(2 * np.pi * frequency * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        clips.append((clip + rng.normal(0, 0.02, len(t))).astype(np.float32))
    return clips


def next_version(export_root) -> int:
    """1 + the highest integer version under `export_root` (1 for a new one)."""
    if not os.path.isdir(export_root):
        return 1
    versions = [int(name) for name in os.listdir(export_root) if name.isdigit()]
    return max(versions, default=0) + 1


def latest_version(model_path, flag: str = "--saved_model") -> str:
    """`model_path` if it is a SavedModel, else its highest integer version directory; errors
    name `flag`."""
    if os.path.isfile(os.path.join(model_path, "saved_model.pb")):
        return model_path
    versions = sorted((int(name) for name in os.listdir(model_path) if name.isdigit()),
                      reverse=True) if os.path.isdir(model_path) else []
    for version in versions:
        candidate = os.path.join(model_path, str(version))
        if os.path.isfile(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise UserInputError(f"{flag}: {model_path} is neither a SavedModel nor a directory of "
                         "integer versions holding one (TF Serving's layout)")


def export(servable: Servable, export_root, version: int | None = None,
           description: str = "", verify: bool = True, data_dir: str | None = None) -> str:
    """Writes `servable` to `export_root/<version>` (default: the next version); returns the path.

    `data_dir`, the data the models were trained on, is recorded in the export's info, so that
    bin/predict can read it when no data is named.

    Raises:
      UserInputError: the version exists already.
      RuntimeError: the reloaded SavedModel does not reproduce the Keras models (nothing is left).
    """
    version = next_version(export_root) if version is None else int(version)
    target = os.path.join(export_root, str(version))
    if os.path.exists(target):
        raise UserInputError(f"--version: {target} exists already; TF Serving versions are "
                             "immutable, pick another")
    clips = sample_clips()
    expected = reference_outputs(servable.members, servable.schema, servable.naive, clips)
    with atomic_directory(target) as scratch:
        servable.archive().write_out(scratch, verbose=False)
        _write_assets(scratch, servable.schema)
        info = {"members": [member.name for member in servable.members],
                "tasks": {task: (servable.members[owner].name if owner is not None else "naive")
                          for task, owner in ((t, servable.owners.get(t))
                                              for t in servable.schema.tasks)},
                "schema": json.loads(servable.schema.to_json()),
                "description": description, "version": version,
                "data_dir": os.path.abspath(data_dir) if data_dir else None}
        atomic.write_json(os.path.join(scratch, EXPORT_INFO), info)
        if verify:
            _verify_in_fresh_process(scratch, clips, expected, servable.schema.classes)
    return target


def _write_assets(path, schema: LabelSchema):
    """The emotion and class names, one per line, in `path/assets/`: what a client needs to read
    the output vectors (`load_names`); none for a task the data has no labels for."""
    for name, values in ((EMOTIONS_ASSET, schema.emotion_columns), (CLASSES_ASSET, schema.classes)):
        if not values:
            continue
        atomic.write_text(os.path.join(path, "assets", name), "\n".join(values) + "\n")


def _verify_in_fresh_process(path, clips, expected, classes=()):
    """Reloads `path` in a fresh Python process through both of TensorFlow's loaders (the TF2
    `tf.saved_model.load`, and the session-based loader that TF Serving and `saved_model_cli run`
    use) and compares each one's outputs on `clips` with `expected`.

    The sample goes to the child on its stdin and the outputs come back on its stdout, so a kill
    at any moment leaves no temporary files; the child exits when this process dies.
    """
    sample = io.BytesIO()
    np.savez(sample, **padded_batch(clips))
    # The fresh process imports this very vb_keras, installed or not.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, "-m", "vb_keras.serving.export_check", path, str(os.getpid())],
        input=sample.getvalue(), capture_output=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": python_path})
    if process.returncode != 0:
        raise RuntimeError(f"the exported SavedModel did not reload in a fresh process:\n"
                           f"{process.stderr.decode(errors='replace')[-2000:]}")
    check_reloaded(dict(np.load(io.BytesIO(process.stdout))), expected, classes)


def check_reloaded(reloaded: dict, expected: dict, classes=()):
    """Raises RuntimeError unless the reloaded SavedModel's outputs under each loader
    (`reloaded["<loader>/<output>"]`) match the Keras models' (`expected`) and its class names
    name the most probable of its own class probabilities."""
    for loader in export_check.LOADERS:
        for task in expected:
            error = float(np.max(np.abs(reloaded[f"{loader}/{task}"] - expected[task])))
            if not error <= VERIFY_TOLERANCE:
                raise RuntimeError(f"the exported SavedModel's {task} output under the {loader} "
                                   f"loader differs from the Keras model's by {error:.2e} on "
                                   "sample audio")
        if COUNTRY in expected and not np.array_equal(
                np.char.decode(reloaded[f"{loader}/{CLASS_NAME}"], "utf-8"),
                class_names(classes, reloaded[f"{loader}/{COUNTRY}"])):
            raise RuntimeError(f"the exported SavedModel's {CLASS_NAME} output under the {loader} "
                               "loader does not name its most probable class")


def class_names(classes, probabilities) -> np.ndarray:
    """The names of the most probable classes of [batch, n_classes] `probabilities`, as the
    servable's `country_name` output gives them (str here, bytes from TensorFlow)."""
    return np.asarray(classes, dtype=str)[np.argmax(probabilities, axis=-1)]


def load_names(path) -> tuple:
    """(emotion names, class names) from an export's assets; () for a task the export lacks."""
    def read(name):
        if not os.path.isfile(os.path.join(path, "assets", name)):
            return ()
        with open(os.path.join(path, "assets", name)) as stream:
            return tuple(line.rstrip("\n") for line in stream if line.strip())
    return read(EMOTIONS_ASSET), read(CLASSES_ASSET)
