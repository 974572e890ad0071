import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.evaluation import metrics
from vb_keras.training import callbacks
from vb_keras.schema import HUME_VB

SCHEMA = HUME_VB.with_classes(["0", "1"])


def emotion_only_model():
    """A tiny model with the package's input names: emotion = mean |waveform| in every column."""
    waveform = keras.Input((None,), name="waveform")
    num_samples = keras.Input((), dtype="int32", name="num_samples")
    level = keras.layers.Lambda(lambda w: tf.reduce_mean(tf.abs(w), axis=1, keepdims=True))(waveform)
    emotion = keras.layers.Dense(10, name="emotion", kernel_initializer="ones")(level)
    return keras.Model({"waveform": waveform, "num_samples": num_samples}, {"emotion": emotion})


def batches():
    rng = np.random.default_rng(0)
    levels = rng.uniform(0.1, 0.9, 24).astype(np.float32)
    waveform = levels[:, None] * np.sign(rng.standard_normal((24, 400))).astype(np.float32)
    labels = {"emotion": np.repeat(levels[:, None], 10, axis=1),
              "country": np.eye(2, dtype=np.float32)[rng.integers(0, 2, 24)],
              "age": rng.uniform(20, 40, (24, 1)).astype(np.float32)}
    features = {"waveform": waveform, "num_samples": np.full(24, 400, np.int32)}
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(5), labels


def test_validation_score_is_exact_and_fills_missing_tasks_with_naive():
    data, labels = batches()
    naive = {"emotion": np.full(10, 0.5), "country": 1, "age": 30.0}
    callback = callbacks.ValidationScore(data, SCHEMA, naive)
    callback.set_model(emotion_only_model())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_mean_ccc"] == pytest.approx(1.0, abs=1e-5)      # prediction equals the label
    truth = labels["country"].argmax(axis=1)
    assert logs["val_uar"] == pytest.approx(metrics.unweighted_average_recall(truth, np.ones(24)))
    assert logs["val_mae"] == pytest.approx(np.abs(labels["age"] - 30.0).mean(), rel=1e-5)
    assert logs["val_ccc_Awe"] == pytest.approx(1.0, abs=1e-5) and "val_hmean" in logs


def test_validation_score_shows_its_progress_over_the_clips_on_stderr(capsys):
    data, _ = batches()
    callback = callbacks.ValidationScore(data, SCHEMA, {"country": 1, "age": 30.0}, clips=24)
    callback.set_model(emotion_only_model())
    callback.on_epoch_end(0, {})
    shown = capsys.readouterr()
    assert "24/24" in shown.err and "24/24" not in shown.out and "Val after epoch 1" in shown.out


def test_best_weights_saves_improvements_survives_restart_and_restores(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    path = str(tmp_path / "best.weights.h5")
    best = callbacks.BestWeights(path, monitor="val_mae", mode="min")
    best.set_model(model)
    best.on_epoch_end(0, {"val_mae": 5.0})
    saved = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1 for w in saved])
    best.on_epoch_end(1, {"val_mae": 6.0})                          # worse: not saved
    again = callbacks.BestWeights(path, monitor="val_mae", mode="min")   # a resumed run
    assert (again.best, again.best_epoch) == (5.0, 1)
    again.set_model(model)
    again.on_train_end()
    for restored, expected in zip(model.get_weights(), saved):
        np.testing.assert_array_equal(restored, expected)
    assert json.load(open(path + ".json"))["epoch"] == 1
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_ties_of_a_degenerate_harmonic_mean_are_broken_by_mean_ccc(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    best = callbacks.BestWeights(str(tmp_path / "best.weights.h5"))   # val_hmean, ties: val_mean_ccc
    best.set_model(model)
    for epoch, ccc in enumerate([0.01, 0.30, 0.20]):
        best.on_epoch_end(epoch, {"val_hmean": 0.0, "val_mean_ccc": ccc})   # UAR 0: hmean is 0
    assert best.best_epoch == 2 and best.best_tie == 0.30


def dropout_model(patience=5):
    """A compiled model with a dropout layer (a Keras SeedGenerator), its early stopping, and a
    backup in `backup_dir` keeping both, for `fit` on `regression_data`."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dropout(0.5),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), loss="mse")
    return model, callbacks.ResumableEarlyStopping("loss", patience=patience)


def regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(8).repeat()


class StopAfter(keras.callbacks.Callback):
    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            raise RuntimeError("killed")


def test_a_restored_backup_goes_on_exactly_as_an_uninterrupted_run(tmp_path):
    """The random generators' states (dropout's masks) and the early stopping's count are in the
    backup: without them the resumed epochs drew the first epochs' masks again (issue 26)."""
    def fit(backup_dir, epochs, extra=()):
        model, stopping = dropout_model()
        backup = callbacks.ResumableBackup(str(backup_dir), delete_checkpoint=False,
                                           companions=[stopping])
        history = model.fit(regression_data(), epochs=epochs, steps_per_epoch=4, verbose=0,
                            callbacks=[stopping, backup, *extra])
        return model, stopping, history.history["loss"]

    model, stopping, losses = fit(tmp_path / "whole", 4)
    with pytest.raises(RuntimeError, match="killed"):
        fit(tmp_path / "resumed", 4, [StopAfter(2)])
    assert callbacks.backup_epoch(str(tmp_path / "resumed")) == 2
    resumed, resumed_stopping, resumed_losses = fit(tmp_path / "resumed", 4)
    assert resumed_losses == losses[2:]
    for weight, again in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(weight, again)
    assert [v.numpy().tolist() for v in callbacks.random_states(model)] == [
        v.numpy().tolist() for v in callbacks.random_states(resumed)]
    assert resumed_stopping.get_state() == stopping.get_state()
    assert not [name for name in os.listdir(tmp_path / "resumed") if "tmp" in name]


def test_a_damaged_latest_backup_falls_back_to_the_one_before(tmp_path):
    model, stopping = dropout_model()
    backup = callbacks.ResumableBackup(str(tmp_path), delete_checkpoint=False)
    model.fit(regression_data(), epochs=2, steps_per_epoch=4, verbose=0, callbacks=[backup])
    latest = tmp_path / callbacks.BACKUP_WEIGHTS
    assert callbacks.backup_epoch(str(tmp_path), callbacks.PREVIOUS_SUFFIX) == 1
    latest.write_bytes(latest.read_bytes()[:1000])   # (a file damaged after its rename)
    again, _ = dropout_model()
    restorer = callbacks.ResumableBackup(str(tmp_path), delete_checkpoint=False)
    restorer.set_model(again)
    assert restorer.restore() == 1


def test_history_keeps_one_row_per_epoch_when_a_resumed_run_repeats_one(tmp_path):
    """Killed after epoch 1's row but before its backup: the rerun repeats epoch 1 (and a cut row
    from the kill goes too)."""
    def run(path, epochs):
        logger = callbacks.HistoryLogger(path)
        logger.on_train_begin()
        for epoch in epochs:
            logger.on_epoch_end(epoch, {"loss": epoch / 10, "val_loss": epoch / 100})
        logger.on_train_end()
        with open(path) as stream:
            return stream.read().replace("\r\n", "\n")

    path = str(tmp_path / "history.csv")
    with open(path, "w") as stream:
        stream.write("epoch,loss,val_loss\n1,0.0,0.0\n2,9,9\n3,0.")
    # Keras's epochs 1 and 2 (0-based) are the log's epochs 2 and 3, as history.csv numbers them.
    assert run(path, [1, 2]) == "epoch,loss,val_loss\n1,0.0,0.0\n2,0.1,0.01\n3,0.2,0.02\n"
    # A fresh history and an uninterrupted resume are left as they are.
    fresh = str(tmp_path / "fresh.csv")
    run(fresh, [0])
    assert run(fresh, [1]) == "epoch,loss,val_loss\n1,0.0,0.0\n2,0.1,0.01\n"


if __name__ == "__main__":
    run_main()
