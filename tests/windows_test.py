"""Clips -> non-overlapping embedder windows (section 2.2)."""

import numpy as np
import pytest

from conftest import run_main
from vb_keras.utils import windows
from vb_keras.params import WindowParams

WINDOW = WindowParams(window_seconds=0.5, min_tail_seconds=0.1)   # 8000 samples, tail >= 1600


@pytest.mark.parametrize("num_samples, expected", [
    (1, 1), (1599, 1),           # shorter than the tail minimum: still its one window
    (8000, 1), (9599, 1),        # a full window plus a tail too short to keep
    (9600, 2), (16000, 2), (16001, 2), (17600, 3),
])
def test_window_count_keeps_tails_of_at_least_the_minimum(num_samples, expected):
    assert int(windows.num_windows(num_samples, WINDOW)) == expected
    assert WINDOW.num_windows(num_samples) == expected   # the Python arithmetic agrees


def test_windows_are_consecutive_and_the_last_is_zero_padded():
    audio = np.arange(1, 17601, dtype=np.float32)
    result = windows.clip_windows(audio, WINDOW).numpy()
    assert result.shape == (3, 8000)
    np.testing.assert_array_equal(result.reshape(-1)[:17600], audio)
    assert not result[2, 1600:].any()


def test_a_short_tail_is_dropped_and_a_short_clip_padded():
    audio = np.ones(9000, np.float32)
    assert windows.clip_windows(audio, WINDOW).shape == (1, 8000)
    short = windows.clip_windows(np.ones(100, np.float32), WINDOW).numpy()
    assert short.shape == (1, 8000) and short[0, :100].all() and not short[0, 100:].any()


def test_window_settings_are_validated():
    with pytest.raises(ValueError, match="min_tail_seconds"):
        WindowParams(window_seconds=1.0, min_tail_seconds=2.0)
    with pytest.raises(ValueError, match="window_seconds"):
        WindowParams(window_seconds=0.0)


if __name__ == "__main__":
    run_main()
