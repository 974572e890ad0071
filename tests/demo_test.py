import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import soundfile

from conftest import run_main
from vb_keras import params
from vb_keras.evaluation import metrics
from vb_keras.models import features
from vb_keras.data import demo, exvo
from vb_keras.schema import HUME_VB, HUME_VB_EMOTIONS


@pytest.fixture(scope="module")
def probe_set(tmp_path_factory):
    return demo.write_demo_data(str(tmp_path_factory.mktemp("probe")), num_clips=480, seed=5)


def test_layout_is_exactly_hume_vb(tiny_demo):
    frame = pd.read_csv(os.path.join(tiny_demo, "data_info.csv"), dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["File_ID", "Split", "Subject_ID", "Country", "Country_string",
                                   "Age", *HUME_VB_EMOTIONS]
    assert frame.File_ID.str.fullmatch(r"\[\d{5}\]").all()
    test = frame[frame.Split == "Test"]
    assert len(test) and (test[["Country", "Age", "Awe"]] == "").all().all()   # withheld labels
    table = exvo.read_clip_table(tiny_demo, HUME_VB)                          # and it validates
    durations = [soundfile.info(p).duration for p in table.path]
    assert min(durations) >= 0.5 and max(durations) <= 10.0
    assert exvo.speakers_in_several_splits(table, HUME_VB) == {}


def test_deterministic_given_the_seed_and_48k_option(tmp_path):
    a = demo.write_demo_data(str(tmp_path / "a"), num_clips=6, seed=3)
    b = demo.write_demo_data(str(tmp_path / "b"), num_clips=6, seed=3)
    c = demo.write_demo_data(str(tmp_path / "c"), num_clips=6, seed=3, sample_rate=48000)

    def digest(directory):
        return hashlib.sha256(b"".join(open(os.path.join(directory, "wav", f), "rb").read()
                                       for f in sorted(os.listdir(os.path.join(directory, "wav"))))
                              ).hexdigest()

    assert digest(a) == digest(b)
    assert open(os.path.join(a, "data_info.csv")).read() == open(os.path.join(b, "data_info.csv")).read()
    path = os.path.join(c, "wav", sorted(os.listdir(os.path.join(c, "wav")))[0])
    assert soundfile.info(path).samplerate == 48000


def test_ensure_demo_data_generates_once(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(demo, "write_demo_data",
                        lambda out: calls.append(out) or open(os.path.join(out, "data_info.csv"), "w"))
    target = str(tmp_path / "cache" / "demo")
    assert demo.ensure_demo_data(target) == target
    assert demo.ensure_demo_data(target) == target
    assert len(calls) == 1


def _ridge_probe(table, labels, shuffle_seed=None):
    """Validation predictions of a ridge regression on log-mel statistics, fit on Train."""
    def stats(path):
        x, _ = soundfile.read(path, dtype="float32")
        log_mel = features.log_mel_spectrogram(x[None], params.RESNET_FRONTEND).numpy()[0]
        return np.concatenate([log_mel.mean(0), log_mel.std(0), np.abs(np.diff(log_mel, axis=0)).mean(0)])

    x = np.stack([stats(p) for p in table.path])
    train = (table.Split == "Train").to_numpy()
    x = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
    x = np.c_[x, np.ones(len(x))]
    y = labels[train]
    if shuffle_seed is not None:
        y = y[np.random.default_rng(shuffle_seed).permutation(len(y))]
    weights = np.linalg.solve(x[train].T @ x[train] + 30 * np.eye(x.shape[1]), x[train].T @ y)
    return x[~train] @ weights, labels[~train]


def test_labels_are_learnable_from_the_sound_and_shuffled_labels_are_not(probe_set):
    table = exvo.read_clip_table(probe_set, HUME_VB)
    table = table[table.labelled].reset_index(drop=True)
    emotions = table[list(HUME_VB_EMOTIONS)].to_numpy(np.float64)
    predicted, truth = _ridge_probe(table, emotions)
    learned = metrics.mean_ccc(truth, predicted)
    shuffled = metrics.mean_ccc(*_ridge_probe(table, emotions, shuffle_seed=0))
    assert learned > 0.45, learned
    assert abs(shuffled) < 0.15, shuffled
    country = table.Country.astype(int).to_numpy()
    predicted, truth = _ridge_probe(table, np.eye(4)[country])
    assert metrics.unweighted_average_recall(truth, predicted) > 0.4   # chance is 0.25


def test_countries_are_balanced_and_have_typical_bursts(probe_set):
    table = exvo.read_clip_table(probe_set, HUME_VB)
    table = table[table.labelled].reset_index(drop=True)
    country = table.Country.astype(int).to_numpy()
    shares = np.bincount(country, minlength=4) / len(country)
    assert shares.min() > 0.1, shares                       # no majority class to collapse onto
    dominant = np.asarray(HUME_VB_EMOTIONS)[table[list(HUME_VB_EMOTIONS)].to_numpy().argmax(1)]
    typical = [d in demo.COUNTRY_TYPICAL_EMOTIONS[c] for d, c in zip(dominant, country)]
    assert np.mean(typical) > 0.6     # chance would be about 0.25


if __name__ == "__main__":
    run_main()
