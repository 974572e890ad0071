import dataclasses

import pytest

from conftest import run_main
from vb_keras import params


def test_resnet_frontend_matches_section_2_1():
    p = params.RESNET_FRONTEND
    assert (p.window_length_samples, p.hop_length_samples, p.fft_length) == (1024, 384, 1024)
    assert (p.num_mel_bins, p.lower_edge_hz, p.upper_edge_hz) == (128, 0.0, 8000.0)
    assert p.normalization == "minmax"


def test_conformer_frontend_has_80_bands_and_int16_scale():
    p = params.CONFORMER_FRONTEND
    assert p.num_mel_bins == 80 and p.normalization == "int16"
    assert (p.window_length_samples, p.hop_length_samples, p.fft_length) == (400, 160, 512)


def test_num_frames_counts_whole_windows_and_at_least_one():
    p = params.RESNET_FRONTEND
    assert p.num_frames(100) == 1
    assert p.num_frames(1024) == 1
    assert p.num_frames(1024 + 383) == 1
    assert p.num_frames(1024 + 384) == 2
    assert p.num_frames(3 * 16000) == 1 + (48000 - 1024) // 384


def test_params_are_frozen_and_validated():
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.RESNET_FRONTEND.num_mel_bins = 64
    with pytest.raises(ValueError, match="normalization"):
        params.FrontendParams(normalization="peak")
    with pytest.raises(ValueError, match="Nyquist"):
        params.FrontendParams(upper_edge_hz=9000)
    with pytest.raises(ValueError, match="batch_size"):
        params.PipelineParams(batch_size=0)
    assert params.PipelineParams(clip_seconds=2.5).clip_samples == 40000


def test_the_default_training_length_is_a_step_budget_that_fits_the_data():
    auto = params.TrainingParams()
    # HUME-VB: ~20,000 Train clips at batch 64 are 312 steps a pass: 10,000 steps are 33 passes,
    # stopping after 10 without a better Val score.
    assert auto.schedule(312) == params.Schedule(epochs=33, steps_per_epoch=312, patience=10)
    assert auto.schedule(1000) == params.Schedule(epochs=30, steps_per_epoch=1000, patience=10)
    # EmoDB under a head: 278 clips at batch 128 are 2 steps a pass. An epoch is then 50 steps
    # (25 passes), 10,000 steps at most, stopping after 500 steps without a better Val score.
    assert auto.schedule(2) == params.Schedule(epochs=200, steps_per_epoch=50, patience=10)
    assert auto.schedule(0) == params.Schedule(epochs=200, steps_per_epoch=50, patience=10)
    assert auto.schedule(64) == params.Schedule(epochs=157, steps_per_epoch=64, patience=10)
    # Given epochs are passes, run in full unless a patience is given too.
    assert params.TrainingParams(epochs=5).schedule(2) == params.Schedule(5, 2, 0)
    assert params.TrainingParams(epochs=5, early_stopping_patience=2).schedule(2) == \
        params.Schedule(5, 2, 2)
    assert params.TrainingParams(early_stopping_patience=0).schedule(312).patience == 0
    with pytest.raises(ValueError, match="early_stopping_patience"):
        params.TrainingParams(early_stopping_patience=-1)


if __name__ == "__main__":
    run_main()
