"""SavedModel export for TF Serving: layout, assets, signature, atomicity, fresh-process check."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import (EFFICIENTAT, REPO_ROOT, YAMNET, requires_efficientat, requires_yamnet,
                      run_main)
from serving_loaders import assert_serves_like
from vb_keras.serving import export
from vb_keras.training import trainer
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.models import heads, multitask
from vb_keras.families.frozen_embedder import FrozenEmbedderConfig
from vb_keras.families.resnets import ResNetConfig
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB

SCHEMA = HUME_VB.with_classes(["China", "South Africa", "United States", "Venezuela"])
NAIVE = {"emotion": np.linspace(0.1, 0.5, 10), "country": 2, "age": 26.0}


def resnet_member(tasks=("emotion", "country", "age")):
    model = multitask.build_model("resnet18", SCHEMA, tasks)
    return export.Member(model, TrainingParams(model="resnet18", tasks=tasks))


@pytest.fixture(scope="module")
def exported_servable(tmp_path_factory):
    """(servable, path of its export)."""
    root = str(tmp_path_factory.mktemp("saved_models") / "resnet18")
    servable = export.Servable([resnet_member()], SCHEMA, NAIVE)
    return servable, export.export(servable, root, description="test")


@pytest.fixture(scope="module")
def exported(exported_servable):
    return exported_servable[1]


def test_tf_serving_layout_with_names_as_assets(exported):
    root = os.path.dirname(exported)
    assert os.path.basename(exported) == "1" and os.listdir(root) == ["1"]
    assert os.path.isfile(os.path.join(exported, "saved_model.pb"))
    emotions, classes = export.load_names(exported)
    assert emotions == HUME_VB.emotion_columns and classes == SCHEMA.classes
    assert export.next_version(root) == 2
    assert export.latest_version(root) == exported
    with pytest.raises(UserInputError, match="exists already"):
        export.export(export.Servable([resnet_member()], SCHEMA, NAIVE), root, version=1)


def test_saved_model_cli_lists_the_signature(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    process = subprocess.run([cli, "show", "--dir", exported, "--all"], capture_output=True,
                             text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert process.returncode == 0, process.stderr
    text = process.stdout
    signature = text[text.index("signature_def['serving_default']"):]
    for fragment in ("inputs['waveform']", "inputs['num_samples']", "outputs['emotion']",
                     "outputs['country']", "outputs['country_name']", "outputs['age']",
                     "DT_FLOAT", "DT_INT32", "DT_STRING"):
        assert fragment in signature, fragment


def test_a_tf_serving_predict_request_built_from_the_signature_runs(exported):
    predict_pb2 = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    from tensorflow.python.tools import saved_model_utils
    signature = saved_model_utils.get_meta_graph_def(exported, "serve").signature_def[
        "serving_default"]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "resnet18"
    request.model_spec.signature_name = "serving_default"
    values = {"waveform": np.zeros([2, 16000], np.float32),
              "num_samples": np.array([16000, 8000], np.int32)}
    for name, info in signature.inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values[name], dtype=info.dtype))
    assert set(request.inputs) == set(signature.inputs) == {"waveform", "num_samples"}
    # What TF Serving does with it: the request's tensors, by name, into the signature.
    served = tf.saved_model.load(exported).signatures["serving_default"]
    outputs = served(**{name: tf.constant(tf.make_ndarray(tensor))
                        for name, tensor in request.inputs.items()})
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "emotion": (2, 10), "country": (2, 4), "country_name": (2,), "age": (2, 1)}
    # TF Serving clients read the class by name: the most probable one's.
    assert [name.decode() for name in outputs["country_name"].numpy()] == [
        SCHEMA.classes[i] for i in np.argmax(outputs["country"], axis=-1)]
    assert set(outputs) == set(signature.outputs)


def sample_batch():
    """The export check's clips (1.3, 2.7 and 5.6 s) as one zero-padded batch."""
    return export.padded_batch(export.sample_clips())


def keras_outputs(servable):
    """What the servable must answer: the Keras models' outputs, and the name of the most
    probable class."""
    outputs = export.reference_outputs(servable.members, servable.schema, servable.naive,
                                       export.sample_clips())
    return {**outputs, "country_name": export.class_names(servable.schema.classes,
                                                          outputs["country"])}


def test_tf_serving_loaders_run_the_resnet_export_like_the_keras_model(
        exported_servable, load_saved_model_binary):
    servable, path = exported_servable
    assert_serves_like(path, sample_batch(), keras_outputs(servable), load_saved_model_binary)


@pytest.mark.parametrize("embedder", [
    "builtin", pytest.param("yamnet", marks=requires_yamnet),
    pytest.param("efficientat", marks=requires_efficientat)])
def test_tf_serving_loaders_run_a_head_with_its_frozen_embedder(
        tmp_path, load_saved_model_binary, embedder):
    params = TrainingParams(model="conformer_autopool", family=FrozenEmbedderConfig(
        embedder={"yamnet": YAMNET, "efficientat": EFFICIENTAT}.get(embedder, ""),
        window_seconds=1.0, min_tail_seconds=0.5))
    member = export.Member(None, params)
    member.model = heads.build_head_model("conformer_autopool",
                                          member.audio_inputs.embedder.dimension, SCHEMA)
    servable = export.Servable([member], SCHEMA, NAIVE)
    # export() itself checks the SavedModel against the Keras head on embeddings computed as the
    # cache computes them (clips of 1.3, 2.7 and 5.6 s: dropped and kept tail windows).
    path = export.export(servable, str(tmp_path / embedder))
    assert export.load_names(path)[1] == SCHEMA.classes
    assert_serves_like(path, sample_batch(), keras_outputs(servable), load_saved_model_binary)


def test_an_export_tf_serving_cannot_load_is_refused(tmp_path, monkeypatch):
    """What bin/export wrote before Keras's ExportArchive: the servable in a plain tf.Module. It
    reloads in Python, but TF Serving's session-based loader cannot find its Keras 3 variables;
    the fresh-process check must catch that."""
    class PlainModule:
        def __init__(self, servable):
            self.module = tf.Module()
            self.module.models = [member.model for member in servable.members]
            self.module.serve = tf.function(servable.serve, input_signature=[
                tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None], tf.int32)])

        def write_out(self, path, verbose=False):
            del verbose
            tf.saved_model.save(self.module, path, signatures={"serving_default": self.module.serve})

    monkeypatch.setattr(export.Servable, "archive", lambda self: PlainModule(self))
    root = str(tmp_path / "plain")
    with pytest.raises(RuntimeError, match="Could not find variable"):
        export.export(export.Servable([resnet_member()], SCHEMA, NAIVE), root)
    assert os.listdir(root) == []


def test_what_a_client_puts_beyond_num_samples_is_ignored(exported):
    served = tf.saved_model.load(exported).signatures["serving_default"]
    clip = export.sample_clips()[1]
    length = np.array([len(clip)], np.int32)
    zeros = served(waveform=np.pad(clip, (0, 8000))[None], num_samples=length)
    junk = served(waveform=np.concatenate([clip, np.full(8000, 0.7, np.float32)])[None],
                  num_samples=length)
    for task in ("emotion", "country", "age"):
        np.testing.assert_allclose(junk[task], zeros[task], atol=1e-6)


def test_the_submission_ensemble_answers_each_task_from_its_model(
        tmp_path, load_saved_model_binary):
    emotion, country = resnet_member(("emotion",)), resnet_member(("country",))
    servable = export.Servable([emotion, country], SCHEMA, NAIVE)
    path = export.export(servable, str(tmp_path / "exvo"))
    served = tf.saved_model.load(path).signatures["serving_default"]
    features = sample_batch()
    outputs = served(**features)
    np.testing.assert_allclose(outputs["emotion"], emotion.model(features)["emotion"], atol=1e-4)
    np.testing.assert_allclose(outputs["country"], country.model(features)["country"], atol=1e-4)
    np.testing.assert_array_equal(outputs["age"], np.full((3, 1), 26.0, np.float32))
    assert [name.decode() for name in outputs["country_name"].numpy()] == list(
        export.class_names(SCHEMA.classes, outputs["country"]))
    # TF Serving's loaders answer the same.
    assert_serves_like(path, features, {task: np.asarray(value) for task, value in outputs.items()},
                       load_saved_model_binary)


def test_a_mismatching_export_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    real = export.reference_outputs
    monkeypatch.setattr(export, "reference_outputs", lambda *args: {
        task: value + 1.0 for task, value in real(*args).items()})
    root = str(tmp_path / "bad")
    with pytest.raises(RuntimeError, match="differs from the Keras model's"):
        export.export(export.Servable([resnet_member()], SCHEMA, NAIVE), root)
    assert os.listdir(root) == []


def test_a_killed_export_leaves_no_version_tf_serving_would_load(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    trainer.train(tiny_demo, model_dir, table, schema,
                   TrainingParams(epochs=1, batch_size=8, family=ResNetConfig(clip_seconds=0.5)))
    root = tmp_path / "saved_models" / "run"
    command = [sys.executable, os.path.join(REPO_ROOT, "bin", "export.py"),
               f"--model_dir={model_dir}", f"--output_dir={root}"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=env)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if root.is_dir() and any(name.startswith(".1.partial") for name in os.listdir(root)):
            break
        time.sleep(0.05)
    assert process.poll() is None, "the export finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not [name for name in os.listdir(root) if name.isdigit()]   # nothing TF Serving loads
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "exported and verified in a fresh process" in finished.stdout
    assert export.latest_version(str(root)) == str(root / "1")
    shutil.rmtree(root)


def test_class_names_that_miss_the_most_probable_class_are_refused():
    """The check the fresh process's outputs go through (each export above passes it)."""
    probabilities = np.array([[0.1, 0.6, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1]], np.float32)
    expected = {"country": probabilities}
    right = np.array([b"South Africa", b"China"])
    reloaded = {f"{loader}/{key}": value for loader in ("tf2", "session")
                for key, value in (("country", probabilities), ("country_name", right))}
    export.check_reloaded(reloaded, expected, SCHEMA.classes)
    reloaded["session/country_name"] = np.array([b"South Africa", b"Venezuela"])
    with pytest.raises(RuntimeError, match="country_name output under the session loader does "
                                           "not name its most probable class"):
        export.check_reloaded(reloaded, expected, SCHEMA.classes)


if __name__ == "__main__":
    run_main()
