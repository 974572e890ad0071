"""wav2vec 2.0 pre-training runs (vb_keras.training.pretraining, bin/pretrain) and their export
as an embedder (bin/export_embedder --weights=<run>)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, YAMNET, requires_yamnet, run_local_workers, run_main
from vb_keras.errors import UserInputError
from vb_keras.models import conformer, embedders
from vb_keras.training import callbacks as vb_callbacks
from vb_keras.training import pretraining, wav2vec2

TINY_OBJECTIVE = wav2vec2.Wav2Vec2Params(num_entries=16, num_distractors=8, final_dim=16)


def _program(name, *args):
    return subprocess.run([sys.executable, os.path.join(REPO_ROOT, "bin", f"{name}.py"), *args],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})


def _params(**kwargs):
    return pretraining.PretrainingParams(objective=TINY_OBJECTIVE, batch_size=16,
                                         clip_seconds=0.5, **kwargs)


@pytest.fixture
def tiny_conformer(monkeypatch):
    """A 2-block, 32-wide Conformer configuration named "tiny", for tests of what the run does
    around the model (stopping, resuming, reading back), where tracing the small Conformer's
    train step (20 to 70 s here) would be most of the cost."""
    monkeypatch.setitem(conformer.CONFORMER_CONFIGS, "tiny", conformer.ConformerConfig(
        name="tiny", num_layers=2, model_dim=32, num_heads=2, feed_forward_multiplier=2,
        conv_kernel_size=5, feature_encoder_channels=32, feature_encoder_kernel=3,
        embedding_layer=2, dropout=0.1))
    return "tiny"


@pytest.fixture(autouse=True)
def short_epochs(monkeypatch):
    """Epochs of a pass (3 updates of 16 of the 57 training clips), not of at least 50 updates."""
    monkeypatch.setattr(pretraining, "MIN_EPOCH_STEPS", 3)


@pytest.fixture(scope="module")
def finished_run(tiny_demo, tmp_path_factory):
    """A bin/pretrain run of 2 updates on the tiny demo's 60 clips (all splits, labels unused)."""
    run_dir = str(tmp_path_factory.mktemp("pretrain") / "run")
    result = _program("pretrain", f"--data_dir={tiny_demo}", f"--output_dir={run_dir}",
                      "--steps=2", "--batch_size=16", "--clip_seconds=0.5",
                      "--codebook_entries=16", "--num_distractors=8")
    assert result.returncode == 0, result.stderr
    assert "pre-trained: " in result.stdout and "accuracy" in result.stdout
    return run_dir


def test_a_finished_run_holds_its_outputs_and_exports_an_embedder(finished_run, tmp_path):
    history = pd.read_csv(os.path.join(finished_run, "history.csv"))
    for name in ("accuracy", "perplexity", "temperature", "val_contrastive_loss"):
        assert name in history.columns
    for name in ("pretrained.weights.h5", "config.json", "training_curves.png"):
        assert os.path.isfile(os.path.join(finished_run, name)), name
    assert not os.path.exists(os.path.join(finished_run, "backup"))
    config = json.load(open(os.path.join(finished_run, "config.json")))
    assert config["clips"] == 60 and config["held_out_clips"] == 3
    assert config["objective"]["anneal_steps"] == 1   # 69% of the 2 updates, as the paper's
    export_dir = str(tmp_path / "embedder")
    result = _program("export_embedder", f"--weights={finished_run}", "--layer=3",
                      f"--output_dir={export_dir}")
    assert result.returncode == 0, result.stderr
    embedder = embedders.SavedModelEmbedder(export_dir)
    assert embedder.dimension == 144 and "wav2vec 2.0" in embedder.description
    # The export is the pre-trained encoder up to block 3, mean-pooled.
    pretrainer, run = pretraining.load_pretrained(finished_run)
    assert run.finished and run.state == "finished"
    model = pretraining.embedder_from_pretraining(finished_run, output_layer=3)
    encoder = model.get_layer(embedders.encoder_name("small", 3))
    np.testing.assert_array_equal(encoder.get_layer("block3").get_weights()[0],
                                  pretrainer.get_layer("block3").get_weights()[0])
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    np.testing.assert_allclose(embedder(audio).numpy(), model(audio).numpy(), atol=1e-4)


def test_bad_requests_are_one_line_errors(finished_run, tiny_demo, tmp_path):
    result = _program("export_embedder", f"--weights={finished_run}", "--layer=9",
                      f"--output_dir={tmp_path / 'bad'}")
    assert result.returncode == 1 and "--layer: the small Conformer has layers 1 to 4" in result.stderr
    result = _program("pretrain", f"--data_dir={tiny_demo}", "--method=both",
                      f"--output_dir={tmp_path / 'both'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: --method: both needs a teacher embedder" in result.stderr
    with pytest.raises(UserInputError, match="already holds a finished pre-training run"):
        pretraining.pretrain(finished_run, _params(steps=2), data_dir=tiny_demo)
    with pytest.raises(UserInputError, match="name the audio"):
        pretraining.pretrain(str(tmp_path / "none"), _params())
    with pytest.raises(UserInputError, match="holds no pre-training run that finished an epoch"):
        pretraining.load_pretrained(str(tmp_path))


def test_a_stopped_run_resumes_only_with_its_own_settings_and_ends_as_an_uninterrupted_one(
        tiny_demo, tiny_conformer, tmp_path):
    # The reference: the same run, never stopped.
    whole_dir = str(tmp_path / "whole")
    pretraining.pretrain(whole_dir, _params(config=tiny_conformer, steps=9), data_dir=tiny_demo)
    run_dir = str(tmp_path / "pretrain")
    # Stopped after two of its three epochs (as by --max_minutes or a kill), then run to the end.
    with pytest.raises(RuntimeError, match="stop here"):
        pretraining.pretrain(run_dir, _params(config=tiny_conformer, steps=9),
                             data_dir=tiny_demo, callbacks=[_StopAfterEpochs(2)])
    assert list(pd.read_csv(os.path.join(run_dir, "history.csv"))["epoch"]) == [1, 2]
    # What it has learnt so far can be exported already (its last finished epoch).
    _, run = pretraining.load_pretrained(run_dir)
    assert run.state == "stopped after epoch 2 of 3" and not run.finished
    assert run.method == "wav2vec 2.0"
    early = pretraining.embedder_from_pretraining(run_dir)
    # A backup being rewritten by a run going on beside the reader: the epoch before is read.
    copy = shutil.copytree(run_dir, str(tmp_path / "copy"))
    latest = os.path.join(copy, "backup", vb_callbacks.BACKUP_WEIGHTS)
    with open(latest, "r+b") as stream:
        stream.truncate(os.path.getsize(latest) // 2)
    assert pretraining.load_pretrained(copy)[1].state == "stopped after epoch 1 of 3"
    os.remove(latest + vb_callbacks.PREVIOUS_SUFFIX)
    with pytest.raises(UserInputError, match=r"no weights file could be read \(.*latest"):
        pretraining.load_pretrained(copy)
    with pytest.raises(UserInputError, match=r"other settings \(pretraining\)"):
        pretraining.pretrain(run_dir, _params(config=tiny_conformer, steps=8), data_dir=tiny_demo)
    # A time budget is not a setting: a run stopped by --max_minutes goes on under another.
    pretraining.pretrain(run_dir, _params(config=tiny_conformer, steps=9, max_minutes=30),
                         data_dir=tiny_demo)
    assert list(pd.read_csv(os.path.join(run_dir, "history.csv"))["epoch"]) == [1, 2, 3]
    # Resumed at epoch 3 with the backup's weights, optimizer, dropout generators and the
    # epoch's own data, it ends where the uninterrupted run ends (issue 26: it did not).
    np.testing.assert_allclose(pd.read_csv(os.path.join(run_dir, "history.csv")).to_numpy(),
                               pd.read_csv(os.path.join(whole_dir, "history.csv")).to_numpy(),
                               rtol=1e-5, atol=1e-6)
    for weights, again in zip(pretraining.load_pretrained(whole_dir)[0].get_weights(),
                              pretraining.load_pretrained(run_dir)[0].get_weights()):
        np.testing.assert_allclose(weights, again, rtol=1e-5, atol=1e-6)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["steps_per_epoch"] == 3 and config["train_batch_size"] == 16
    assert os.path.isfile(os.path.join(run_dir, "pretrained.weights.h5"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))
    assert pretraining.load_pretrained(run_dir)[1].state == "finished"
    audio = np.random.default_rng(0).normal(0, 0.1, (1, 8000)).astype(np.float32)
    final = pretraining.embedder_from_pretraining(run_dir)
    assert not np.allclose(early(audio).numpy(), final(audio).numpy())   # epoch 3 trained on


def test_two_local_workers_pretrain_into_one_directory_and_the_chief_alone_writes(tiny_demo,
                                                                                  tmp_path):
    """--strategy=multi_worker: two workers on localhost, given one output directory (as on a
    shared file system), train together; only the chief writes there, and nothing is left over."""
    run_dir = tmp_path / "run"
    results = run_local_workers(lambda index: [
        sys.executable, os.path.join(REPO_ROOT, "bin", "pretrain.py"), "--strategy=multi_worker",
        f"--data_dir={tiny_demo}", f"--output_dir={run_dir}", "--steps=2", "--batch_size=16",
        "--clip_seconds=0.5", "--codebook_entries=16", "--num_distractors=8"], str(tmp_path))
    for returncode, _, stderr in results:
        assert returncode == 0, stderr[-3000:]
    assert "pre-trained: " in results[0][1]
    assert "2 replica(s)" in results[0][2]
    assert sorted(os.listdir(run_dir)) == sorted(
        [".vb_keras_output", "config.json", "history.csv", "pretrained.weights.h5", "tensorboard",
         "training_curves.png"])
    assert len(pd.read_csv(run_dir / "history.csv")) == 1
    assert pretraining.embedder_from_pretraining(str(run_dir)) is not None


@requires_yamnet
def test_a_distilled_run_exports_a_student_that_embeds_in_the_teachers_space(tiny_demo, tmp_path):
    """bin/pretrain --teacher: the small Conformer learns YAMNet's 1024-d embeddings of 1 s chunks;
    its export reproduces the student and says what it was distilled from."""
    run_dir = str(tmp_path / "distil")
    result = _program("pretrain", f"--data_dir={tiny_demo}", f"--teacher={YAMNET}",
                      f"--output_dir={run_dir}", "--steps=2", "--batch_size=16",
                      "--clip_seconds=1")
    assert result.returncode == 0, result.stderr
    assert "distillation_loss" in result.stdout
    config = json.load(open(os.path.join(run_dir, "config.json")))
    assert config["teacher_dim"] == 1024 and config["pretraining"]["teacher"] == YAMNET
    assert config["train_examples"] > config["clips"] - config["held_out_clips"]   # chunks
    history = pd.read_csv(os.path.join(run_dir, "history.csv"))
    assert {"distillation_loss", "val_distillation_loss"} <= set(history.columns)
    assert "contrastive_loss" not in history.columns
    assert os.path.isfile(os.path.join(run_dir, "teacher_targets.npz"))
    export_dir = str(tmp_path / "student")
    result = _program("export_embedder", f"--weights={run_dir}", f"--output_dir={export_dir}")
    assert result.returncode == 0, result.stderr
    student = embedders.SavedModelEmbedder(export_dir)
    assert student.dimension == 1024 and f"distillation from {YAMNET}" in student.description
    model = pretraining.embedder_from_pretraining(run_dir)
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    np.testing.assert_allclose(student(audio).numpy(), model(audio).numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="method: distillation needs a teacher"):
        _params(method="distillation")


class _StopAfterEpochs(__import__("keras").callbacks.Callback):
    """Fails the run after `epochs` epochs (a stand-in for a kill at an epoch boundary)."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 >= self.epochs:
            raise RuntimeError("stop here")


if __name__ == "__main__":
    run_main()
