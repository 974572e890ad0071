import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import pytest
import soundfile

from conftest import EMODB, EMODB_EMOTIONS, REPO_ROOT, YAMNET, requires_emodb, requires_yamnet, run_main
from vb_keras.evaluation import baseline, scoring
from vb_keras.families import registry
from vb_keras.families.base import DataSource
from vb_keras.families.frozen_embedder import FrozenEmbedderConfig
from vb_keras.families.resnets import ResNetConfig
from vb_keras.training import runs, trainer
from vb_keras.utils import run_directory
from vb_keras.evaluation.inference import predict_batches
from vb_keras.data import exvo, pipeline
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB, LabelSchema

TINY = dict(batch_size=8, family=ResNetConfig(clip_seconds=0.5))


class RecordScores(keras.callbacks.Callback):
    """A user callback: sees the package's validation logs."""

    def __init__(self):
        super().__init__()
        self.scores = []

    def on_epoch_end(self, epoch, logs=None):
        self.scores.append((logs["val_hmean"], logs["val_ccc_Awe"]))


def test_train_writes_a_complete_model_dir(tiny_demo, tmp_path, recwarn):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    recorder = RecordScores()
    result = trainer.train(tiny_demo, model_dir, table, schema, TrainingParams(epochs=2, **TINY),
                            callbacks=[recorder])
    assert len(recorder.scores) == 2
    # Nothing a user could not act on (Keras once warned that fit's shuffle=True was ignored).
    assert not [str(warning.message) for warning in recwarn if "shuffle" in str(warning.message)]
    for name in ("model.keras", "config.json", "history.csv", "eval_Val.json", "best.weights.h5"):
        assert os.path.isfile(os.path.join(model_dir, name)), name
    assert not os.path.exists(os.path.join(model_dir, "backup"))     # removed once finished
    with open(os.path.join(model_dir, "history.csv")) as stream:
        rows = list(csv.DictReader(stream))
    assert [row["epoch"] for row in rows] == ["1", "2"] and "val_hmean" in rows[0]
    # The log, history.csv and best.weights.h5.json number the epochs alike, from 1.
    best = json.load(open(os.path.join(model_dir, "best.weights.h5.json")))
    best_row = max(rows, key=lambda row: (float(row["val_hmean"]), float(row["val_mean_ccc"])))
    assert best["epoch"] == int(best_row["epoch"])
    # TensorBoard shows the challenge figures under its own names (as the user guide says).
    assert {"epoch_mean_ccc", "epoch_uar", "epoch_mae", "epoch_hmean", "epoch_ccc_Awe"} <= (
        _tensorboard_tags(os.path.join(model_dir, "tensorboard", "validation")))
    assert {"epoch_loss", "epoch_emotion_loss"} <= _tensorboard_tags(
        os.path.join(model_dir, "tensorboard", "train"))
    run = runs.TrainedRun.finished(model_dir)
    config = run.config
    assert run.schema == schema and config["training"]["tasks"] == ["emotion", "country", "age"]
    assert config["best_epoch"] in (1, 2)
    saved = json.load(open(os.path.join(model_dir, "eval_Val.json")))
    assert saved["hmean"] == pytest.approx(result.validation.hmean)
    with pytest.raises(UserInputError, match="already holds a trained model"):
        trainer.train(tiny_demo, model_dir, table, schema, TrainingParams(epochs=1, **TINY))


def _tensorboard_tags(directory) -> set:
    """The scalar tags of the TensorBoard event files in `directory`."""
    import glob
    import tensorflow as tf
    tags = set()
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def without_columns(data_dir, directory, columns):
    """A copy of a HUME-VB data directory without `columns` in data_info.csv (audio linked)."""
    import pandas as pd
    os.makedirs(directory)
    table = pd.read_csv(os.path.join(data_dir, "data_info.csv"), dtype=str, keep_default_na=False)
    table.drop(columns=list(columns)).to_csv(os.path.join(directory, "data_info.csv"), index=False)
    os.symlink(os.path.join(data_dir, "wav"), os.path.join(directory, "wav"))
    return directory


@pytest.mark.parametrize("schema_kwargs, dropped, tasks", [
    (dict(age_column=""), ["Age"], ("emotion", "country")),
    (dict(emotion_columns=()), list(HUME_VB.emotion_columns), ("country", "age")),
])
def test_a_data_set_without_a_task_trains_only_the_outputs_it_can_teach(tiny_demo, tmp_path,
                                                                        schema_kwargs, dropped,
                                                                        tasks):
    data_dir = without_columns(tiny_demo, str(tmp_path / "data"), dropped)
    schema = LabelSchema(**schema_kwargs)
    assert schema.tasks == tasks
    table, schema = exvo.read_and_split(data_dir, schema)
    with pytest.raises(UserInputError, match="--tasks: the data has no"):
        trainer.train(data_dir, str(tmp_path / "refused"), table, schema,
                       TrainingParams(epochs=1, **TINY))   # (the default asks for all three)
    model_dir = str(tmp_path / "run")
    result = trainer.train(data_dir, model_dir, table, schema,
                            TrainingParams(epochs=1, tasks=tasks, **TINY))
    assert set(result.model.output_names) == set(tasks)
    saved = json.load(open(os.path.join(model_dir, "eval_Val.json")))
    absent = {"emotion": "mean_ccc", "country": "uar", "age": "mae"}
    for task, key in absent.items():
        assert (saved[key] is None) == (task not in tasks), key
    assert saved["hmean"] == pytest.approx(result.validation.hmean)
    with open(os.path.join(model_dir, "history.csv")) as stream:
        assert "val_hmean" in next(csv.DictReader(stream))
    run = runs.TrainedRun.finished(model_dir)
    assert run.schema.tasks == tasks and run.config["training"]["tasks"] == list(tasks)


def test_a_conformer_head_trains_from_the_embedding_cache(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "head")
    cache_root = str(tmp_path / "embeddings")
    params = TrainingParams(model="conformer_autopool", epochs=3, batch_size=8,
                            family=FrozenEmbedderConfig(embedding_cache=cache_root))
    result = trainer.train(tiny_demo, model_dir, table, schema, params)
    run = runs.TrainedRun.finished(model_dir)
    model, config = run.model, run.config
    assert set(model.input) == {"embeddings", "num_windows"}
    assert model.get_layer("autopool") is not None
    cache = config["embedding_cache"]
    assert cache["directory"].startswith(cache_root) and cache["dimension"] == 144
    assert "RANDOM weights" in cache["embedder_description"]
    assert len(result.history["loss"]) == 3
    # A second model on the same embedder, window and data reuses the cache.
    stamp = os.path.getmtime(os.path.join(cache["directory"], "cache_info.json"))
    trainer.train(tiny_demo, str(tmp_path / "head2"), table, schema,
                   TrainingParams(model="conformer", tasks=("emotion",), epochs=1, batch_size=8,
                                  family=FrozenEmbedderConfig(embedding_cache=cache_root)))
    assert os.path.getmtime(os.path.join(cache["directory"], "cache_info.json")) == stamp


@requires_emodb
@requires_yamnet
def test_real_emodb_autopool_on_the_pretrained_embedder_beats_naive_on_test(tmp_path):
    """Real audio, real pre-trained embedder (YAMNet, AudioSet): section 2.2's recipe end to end."""
    schema = LabelSchema.from_flags(EMODB_EMOTIONS, "Sex", "Age")
    table, schema = exvo.read_and_split(EMODB, schema)
    params = TrainingParams(model="conformer_autopool", epochs=150, batch_size=128,
                            family=FrozenEmbedderConfig(
                                embedder=YAMNET, embedding_cache=str(tmp_path / "embeddings")))
    result = trainer.train(EMODB, str(tmp_path / "run"), table, schema, params)
    reader = registry.split_reader(params, DataSource(EMODB, table, schema))
    y_true, y_pred, _ = predict_batches(result.model, reader.batches("Test", training=False))
    test = scoring.evaluate(y_true, y_pred, schema, "Test")
    naive = baseline.naive_predictions(
        baseline.fit_naive(exvo.select_split(table, schema, "Train"), schema), len(y_true["age"]))
    naive_test = scoring.evaluate(y_true, naive, schema, "Test")
    assert test.mean_ccc > 0.2 > naive_test.mean_ccc          # naive: 0
    assert test.uar > naive_test.uar                           # naive: 0.5
    assert test.hmean > naive_test.hmean


def test_monitored_metric_follows_the_tasks():
    assert trainer.monitored_metric(("emotion", "country", "age")) == ("val_hmean", "max")
    assert trainer.monitored_metric(("emotion",)) == ("val_mean_ccc", "max")
    assert trainer.monitored_metric(("country",)) == ("val_uar", "max")
    assert trainer.monitored_metric(("age",)) == ("val_mae", "min")


def test_load_callback_by_name():
    assert isinstance(trainer.load_callback("keras.callbacks.TerminateOnNaN"),
                      keras.callbacks.TerminateOnNaN)
    with pytest.raises(UserInputError, match="--callbacks: cannot import 'nowhere.Thing'"):
        trainer.load_callback("nowhere.Thing")
    with pytest.raises(UserInputError, match="is not a keras.callbacks.Callback"):
        trainer.load_callback("collections.OrderedDict")


def test_a_model_file_with_foreign_code_is_refused_in_one_line_naming_it(tmp_path):
    inputs_ = keras.Input([3])
    model = keras.Model(inputs_, keras.layers.Lambda(lambda x: x * 2)(inputs_))
    model.save(tmp_path / run_directory.MODEL_FILE)
    (tmp_path / run_directory.CONFIG_FILE).write_text(json.dumps({"schema": json.loads(
        HUME_VB.to_json())}))
    with pytest.raises(UserInputError) as error:   # safe_mode holds: the lambda never runs
        runs.TrainedRun.finished(str(tmp_path)).model
    message = str(error.value)
    assert message.startswith(f"{tmp_path / run_directory.MODEL_FILE}: cannot be loaded (")
    assert "Lambda" in message and "\n" not in message


class Unregistered(keras.layers.Layer):
    """A custom layer no one registered with Keras."""

    def call(self, inputs):
        return inputs * 2


def test_a_model_file_with_an_unknown_layer_is_refused_in_one_line_naming_the_class(tmp_path):
    inputs_ = keras.Input([3])
    keras.Model(inputs_, Unregistered()(inputs_)).save(tmp_path / run_directory.MODEL_FILE)
    (tmp_path / run_directory.CONFIG_FILE).write_text(json.dumps({"schema": json.loads(
        HUME_VB.to_json())}))
    with pytest.raises(UserInputError) as error:
        runs.TrainedRun.finished(str(tmp_path)).model
    message = str(error.value)
    assert message.startswith(f"{tmp_path / run_directory.MODEL_FILE}: cannot be loaded (Keras could not "
                              "locate class 'Unregistered': ")
    assert "import vb_keras.models" in message and "\n" not in message


def test_plain_keras_fails_as_python_api_md_says_without_the_package_import(tmp_path):
    """docs/python_api.md quotes the error of loading a model.keras without
    `import vb_keras.models`: the opening of Keras's TypeError and the class it could not locate."""
    from vb_keras.models import features   # pylint: disable=import-outside-toplevel
    waveform, num_samples = keras.Input([800]), keras.Input([], dtype="int32")
    path = str(tmp_path / run_directory.MODEL_FILE)
    keras.Model([waveform, num_samples],
                features.WaveformNormalization()(waveform, num_samples)).save(path)
    script = ("import keras\n"
              f"try:\n    keras.saving.load_model({path!r})\n"
              "except TypeError as error:\n    print(error)\n")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).stdout
    docs = open(os.path.join(REPO_ROOT, "docs", "python_api.md"), encoding="utf-8").read()
    for quoted in ("Functional'> could not be deserialized properly",
                   "Could not locate class 'WaveformNormalization'"):
        assert quoted in output and quoted in docs, quoted


def test_a_killed_run_resumes_and_ends_with_the_requested_epochs(tiny_demo, tmp_path):
    model_dir = tmp_path / "run"
    command = [sys.executable, os.path.join(REPO_ROOT, "bin", "train.py"), f"--data_dir={tiny_demo}",
               f"--model_dir={model_dir}", "--epochs=3", "--batch_size=8", "--clip_seconds=0.5"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    history = model_dir / "history.csv"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2 and (
                model_dir / "backup").exists():
            break
        time.sleep(0.2)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (model_dir / "model.keras").exists()
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    epochs = [int(row["epoch"]) for row in csv.DictReader(open(history))]
    assert epochs[0] == 1 and epochs[-1] == 3 and set(epochs) == {1, 2, 3}   # numbered from 1
    assert len(epochs) <= 4          # at most the epoch that was cut short is logged twice
    assert (model_dir / "model.keras").exists()


def test_a_run_resumes_and_is_reused_only_on_its_split(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    moved, _ = exvo.read_and_split(tiny_demo, HUME_VB, split_scheme="paper", moved_val_speakers=1)
    digest = trainer.split_digest(table, schema)
    assert trainer.split_digest(moved, schema) != digest
    assert trainer.split_digest(table.sample(frac=1, random_state=0), schema) == digest
    model_dir, params = str(tmp_path / "run"), TrainingParams(epochs=1, batch_size=8)
    os.makedirs(model_dir)
    # a run started (its settings recorded as train records them: family defaults resolved)
    trainer._write_config(model_dir, trainer.resolved_params(params), schema, tiny_demo, table)
    os.makedirs(os.path.join(model_dir, "backup"))                             # and ended an epoch
    open(os.path.join(model_dir, "backup", "training_metadata.json"), "w").write('{"epoch": 1}')
    assert trainer.differing_settings(model_dir, params, schema, table, tiny_demo) == []
    assert trainer.differing_settings(model_dir, dataclasses.replace(params, epochs=2), schema,
                                       moved) == ["epochs", "splits"]
    assert trainer.differing_settings(model_dir, params, schema, table, str(tmp_path)) == [
        "data_dir"]
    with pytest.raises(UserInputError, match=r"unfinished run with other settings \(splits\)"):
        trainer.train(tiny_demo, model_dir, moved, schema, params)


class KilledAtTheEnd(keras.callbacks.Callback):
    """Stands in for a kill as training ends (after the best weights were restored)."""

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt("killed")


def _history_epochs(model_dir):
    return [int(row["epoch"]) for row in csv.DictReader(open(os.path.join(model_dir,
                                                                           "history.csv")))]


def test_a_kill_after_the_last_epoch_finishes_the_run_without_training_again(tiny_demo, tmp_path,
                                                                             monkeypatch):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    params = TrainingParams(epochs=2, **TINY)
    # Killed as fit ends: the rerun resumes after the last epoch and trains none.
    model_dir = str(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        trainer.train(tiny_demo, model_dir, table, schema, params, callbacks=[KilledAtTheEnd()])
    assert not os.path.exists(os.path.join(model_dir, "model.keras"))
    result = trainer.train(tiny_demo, model_dir, table, schema, params)
    assert _history_epochs(model_dir) == [1, 2] and result.history == {}
    assert os.path.isfile(os.path.join(model_dir, "eval_Val.json"))
    assert not os.path.exists(os.path.join(model_dir, "backup"))
    # Killed after training, before model.keras: the rerun writes the outputs from the final weights.
    model_dir = str(tmp_path / "run2")

    def killed(*args):
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "_save_model", killed)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(tiny_demo, model_dir, table, schema, params)
    first = json.load(open(os.path.join(model_dir, "eval_Val.json")))
    os.remove(os.path.join(model_dir, "eval_Val.json"))
    result = trainer.train(tiny_demo, model_dir, table, schema, params)
    assert _history_epochs(model_dir) == [1, 2] and result.history == {}
    assert json.load(open(os.path.join(model_dir, "eval_Val.json")))["hmean"] == pytest.approx(
        first["hmean"], abs=1e-6)
    assert os.path.isfile(os.path.join(model_dir, "model.keras"))
    assert not os.path.exists(os.path.join(model_dir, "backup"))
    # One rule for model.keras: never the optimizer's state, whether the run that writes it has
    # just trained (an optimizer with its moments) or only finishes one (issue 26: 134 MB against
    # 45 MB for ResNet18).
    resumed, finished_only = (_stored_weights(os.path.join(tmp_path, name, "model.keras"))
                              for name in ("run", "run2"))
    assert resumed == finished_only
    assert len([name for name in resumed if name.startswith("optimizer/")]) <= 2   # step, rate


def _stored_weights(model_file) -> set:
    """The names of the arrays a model.keras file stores."""
    import io
    import zipfile
    import h5py
    with zipfile.ZipFile(model_file) as archive:
        stored = io.BytesIO(archive.read("model.weights.h5"))
    names = set()
    with h5py.File(stored, "r") as weights:
        weights.visititems(lambda name, item: names.add(name)
                           if isinstance(item, h5py.Dataset) else None)
    return names


def test_a_model_dir_another_process_writes_is_refused(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from vb_keras.utils import atomic\n"
         f"with atomic.owned_directory({model_dir!r}):\n print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserInputError, match=rf"^--model_dir: {model_dir} is being written by "
                                                 rf"another process \(pid {holder.pid}\)"):
            trainer.train(tiny_demo, model_dir, table, schema, TrainingParams(epochs=1, **TINY))
    finally:
        holder.kill()
        holder.wait()
    assert os.listdir(model_dir) == [".vb_keras.lock"]   # nothing written; the lock is free again


def test_a_non_empty_directory_vb_keras_did_not_make_is_refused_untouched(tiny_demo, tmp_path):
    """Issue 26: a foreign --model_dir had its config.json replaced and its history.csv appended
    to, then a traceback."""
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "history.csv").write_text("precious,1\n")
    (foreign / "config.json").write_text('{"mine": 1}')
    with pytest.raises(UserInputError, match=rf"^--model_dir: {foreign} is not empty \(it holds "
                                             r"config.json, history.csv\) and was not made by "
                                             r"vb_keras; pass a new or empty directory$"):
        trainer.train(tiny_demo, str(foreign), table, schema, TrainingParams(epochs=1, **TINY))
    assert sorted(os.listdir(foreign)) == ["config.json", "history.csv"]
    assert (foreign / "history.csv").read_text() == "precious,1\n"
    assert (foreign / "config.json").read_text() == '{"mine": 1}'


def test_a_failed_start_leaves_no_trap_and_a_large_batch_trains(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    model_dir = str(tmp_path / "run")
    bad = TrainingParams(model="conformer_autopool", epochs=1, batch_size=8,
                         family=FrozenEmbedderConfig(embedder=str(tmp_path / "nonexistent")))
    with pytest.raises(UserInputError, match="--embedder: .* is not a directory"):
        trainer.train(tiny_demo, model_dir, table, schema, bad)
    assert not os.path.exists(os.path.join(model_dir, "config.json"))
    # A config.json of a run that never finished an epoch (killed in its first) binds nothing.
    trainer._write_config(model_dir, dataclasses.replace(bad, batch_size=4), schema, tiny_demo,
                          table)
    # A batch larger than the Train split (30 clips) trains on the whole split, and without a
    # clip_seconds the crop is fitted to the Train clips and recorded.
    result = trainer.train(tiny_demo, model_dir, table, schema,
                            TrainingParams(epochs=1, batch_size=64))
    assert len(result.history["loss"]) == 1
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["training"]["batch_size"] == 64 and config["train_batch_size"] == 30
    train_paths = exvo.select_split(table, schema, "Train").path
    fitted = pipeline.fitted_clip_seconds([soundfile.info(path).frames for path in train_paths])
    assert config["training"]["family"] == {"type": "resnet", "clip_seconds": None}
    assert config["train_clip_seconds"] == fitted


if __name__ == "__main__":
    run_main()
