"""Strategies by name; mirrored over two logical CPUs trains like one device; two local workers."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT, run_local_workers, run_main
from vb_keras.training import distribute
from vb_keras.errors import UserInputError

# One training step of a small multitask ResNet18 on a fixed batch, on one device or mirrored over two
# logical CPUs; prints the loss and a checksum of the updated weights as JSON.
_ONE_STEP = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from vb_keras.models import losses
    from vb_keras.models import multitask
    from vb_keras.schema import HUME_VB
    name = sys.argv[1]
    strategy = (tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]) if name == "mirrored"
                else tf.distribute.OneDeviceStrategy("/cpu:0"))
    keras.utils.set_random_seed(0)
    schema = HUME_VB.with_classes(["0", "1", "2", "3"])
    with strategy.scope():
        model = multitask.build_model("resnet18", schema, dropout=0.0)
        model.compile(keras.optimizers.Adam(1e-3),
                      loss={"emotion": losses.NegativeMeanCCC(),
                            "country": keras.losses.CategoricalCrossentropy(),
                            "age": keras.losses.MeanSquaredError()},
                      loss_weights={"emotion": 5.0, "country": 0.05, "age": 0.05})
    rng = np.random.default_rng(1)
    x = {"waveform": rng.uniform(-0.5, 0.5, (16, 8000)).astype("float32"),
         "num_samples": np.full(16, 8000, "int32")}
    y = {"emotion": rng.random((16, 10)).astype("float32"),
         "country": np.eye(4, dtype="float32")[rng.integers(0, 4, 16)],
         "age": rng.uniform(20, 40, (16, 1)).astype("float32")}
    data = tf.data.Dataset.from_tensors((x, y))
    history = model.fit(data, epochs=1, verbose=0)
    checksum = float(sum(np.abs(w).sum() for w in model.get_weights()))
    print(json.dumps({"loss": history.history["loss"][0], "checksum": checksum,
                      "replicas": strategy.num_replicas_in_sync}))
""")


def _env(**extra):
    return {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def test_strategies_by_name():
    assert distribute.make_strategy("one_device").num_replicas_in_sync == 1
    assert distribute.make_strategy("auto").num_replicas_in_sync == 1      # no GPU here
    with pytest.raises(UserInputError, match="--strategy: 'ring' is not one of"):
        distribute.make_strategy("ring")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserInputError, match="set TF_CONFIG"):
        distribute.make_strategy("multi_worker")


def test_chief_is_worker_zero_without_a_chief_task(monkeypatch):
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                             "index": 1}}))
    assert not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                             "index": 0}}))
    assert distribute.is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert distribute.is_chief()


def test_mirrored_over_two_cpus_matches_one_device():
    # Both processes run at once: each spends most of its time importing and tracing on one core.
    processes = [subprocess.Popen([sys.executable, "-c", _ONE_STEP, name], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=_env())
                 for name in ("one_device", "mirrored")]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    one, two = (json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs)
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-3, abs=1e-3)
    assert two["checksum"] == pytest.approx(one["checksum"], rel=1e-5)   # same updated weights


def test_two_local_workers_train_an_epoch_into_one_directory_and_the_chief_alone_writes(
        tiny_demo, tmp_path):
    # One model directory for both, as on a file system the workers share.
    model_dir = tmp_path / "run"
    results = run_local_workers(lambda index: [
        sys.executable, os.path.join(REPO_ROOT, "bin", "train.py"), "--strategy=multi_worker",
        f"--data_dir={tiny_demo}", f"--model_dir={model_dir}", "--epochs=1", "--batch_size=8",
        "--clip_seconds=0.5"], str(tmp_path))
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    assert "model saved in" in results[0][1] and "model saved in" not in results[1][1]
    assert os.path.isfile(model_dir / "model.keras")
    assert not os.path.exists(model_dir / "backup")   # nor any worker's scratch


if __name__ == "__main__":
    run_main()
