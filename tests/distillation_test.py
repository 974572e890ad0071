"""Distillation from a teacher embedder (vb_keras.training.distillation; Shor & Venugopalan, 2022):
chunks, the teacher's targets and their reuse, standardisation, and the batches."""

import json
import os

import numpy as np
import pytest

from conftest import run_main
from vb_keras.params import WindowParams
from vb_keras.training import distillation

TWO_SECONDS = WindowParams(window_seconds=2.0)


class _Teacher:
    """A teacher stand-in with the embedder interface: per chunk (mean, RMS, index of the last
    non-zero sample), so a mix-up of chunks shows in its output."""
    dimension = 3
    identity = "test-teacher"
    description = "a stand-in teacher"

    def __init__(self):
        self.calls = []

    def __call__(self, audio):
        import tensorflow as tf
        self.calls.append(audio.shape)
        audio = np.asarray(audio)
        last = [np.flatnonzero(row)[-1] if row.any() else -1 for row in audio]
        return tf.constant(np.stack([audio.mean(1), np.sqrt((audio ** 2).mean(1)), last], 1),
                           tf.float32)


def _waveforms():
    rng = np.random.default_rng(0)
    return [(rng.normal(0, 3000, n)).astype(np.int16) for n in (16000 * 5 + 4000, 6000, 16000 * 2)]


def test_clips_are_cut_into_the_windows_the_heads_read():
    first, second, third = _waveforms()
    pieces = distillation.chunks([first, second, third], TWO_SECONDS)
    # 84,000 samples: two whole windows and a 20,000-sample tail (kept: over half a second, padded);
    # 6,000 samples: one window though shorter than half a second; 32,000: exactly one.
    assert pieces.shape == (5, 32000) and pieces.dtype == np.int16
    np.testing.assert_array_equal(pieces[2, :20000], first[64000:])
    assert not pieces[2, 20000:].any() and not pieces[3, 6000:].any()
    np.testing.assert_array_equal(pieces[4], third)
    assert len(distillation.chunks([first], WindowParams(window_seconds=2.5))) == 2   # 4,000 dropped


def test_the_teachers_targets_are_each_chunks_own_and_are_reused_by_a_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(distillation, "CHUNKS_PER_CALL", 2)
    pieces = distillation.chunks(_waveforms(), TWO_SECONDS)
    teacher = _Teacher()
    identity = {"teacher": teacher.identity, "window": 2.0}
    targets = distillation.load_or_compute_targets(str(tmp_path), teacher, pieces, identity,
                                                   progress=False)
    for piece, target in zip(pieces, targets):
        audio = piece.astype(np.float32) / 32768.0
        np.testing.assert_allclose(target, [audio.mean(), np.sqrt((audio ** 2).mean()),
                                            np.flatnonzero(audio)[-1]], rtol=1e-5, atol=1e-7)
    assert teacher.calls == [(2, 32000), (2, 32000), (1, 32000)]
    again = distillation.load_or_compute_targets(str(tmp_path), teacher, pieces, identity)
    np.testing.assert_array_equal(again, targets)
    assert len(teacher.calls) == 3                                        # read back, not run
    distillation.load_or_compute_targets(str(tmp_path), teacher, pieces,
                                         {**identity, "teacher": "another"}, progress=False)
    assert len(teacher.calls) == 6                                        # another teacher: run
    assert os.listdir(tmp_path) == [distillation.TARGETS_FILE]            # no scratch left
    with np.load(tmp_path / distillation.TARGETS_FILE) as stored:
        assert json.loads(str(stored["identity"]))["teacher"] == "another"


def test_the_export_projection_undoes_the_standardisation():
    rng = np.random.default_rng(1)
    targets = rng.normal([5.0, -2.0, 0.0], [3.0, 0.5, 0.0], (50, 3)).astype(np.float32)
    mean, scale = distillation.standardization(targets)
    assert scale[2] == 1.0                               # a constant dimension is left unscaled
    standardized = (targets - mean) / scale
    np.testing.assert_allclose(standardized[:, :2].std(0), 1.0, rtol=1e-5)
    kernel, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    x = rng.normal(size=(6, 4))
    folded_kernel, folded_bias = distillation.unstandardized_projection(kernel, bias, mean, scale)
    np.testing.assert_allclose(x @ folded_kernel + folded_bias, (x @ kernel + bias) * scale + mean,
                               rtol=1e-5, atol=1e-6)
    assert float(distillation.distillation_loss(np.zeros((50, 3)), standardized)) == \
        pytest.approx(float(np.mean(standardized ** 2)), rel=1e-6)


def test_batches_carry_each_chunk_with_its_target_every_sample_valid():
    pieces = distillation.chunks(_waveforms(), TWO_SECONDS)
    targets = np.arange(len(pieces) * 2, dtype=np.float32).reshape(-1, 2)
    batch = next(iter(distillation.batches(pieces, targets, 5, training=False)))
    np.testing.assert_array_equal(batch["num_samples"], [32000] * 5)   # as the embedder sees them
    np.testing.assert_array_equal(batch["teacher"], targets)
    np.testing.assert_allclose(batch["waveform"], pieces / 32768.0)
    shuffled = list(distillation.batches(pieces, targets, 2, seed=3))
    assert len(shuffled) == 2                                              # full batches only
    for batch in shuffled:   # each chunk still with its own target
        for audio, target in zip(batch["waveform"], batch["teacher"]):
            np.testing.assert_allclose(audio, pieces[int(target[0]) // 2] / 32768.0)


if __name__ == "__main__":
    run_main()
