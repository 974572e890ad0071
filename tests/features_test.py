"""The front end against an independent NumPy log-mel, and its padding and serialisation behaviour."""

import keras
import numpy as np
import pytest

from conftest import run_main
from vb_keras import params
from vb_keras.models import features


def numpy_log_mel(waveform, p: params.FrontendParams):
    """Log-mel from the definitions: periodic Hann frames, |rFFT|, HTK-mel triangles, log(x + offset)."""
    n_window, hop, n_fft = p.window_length_samples, p.hop_length_samples, p.fft_length
    waveform = np.pad(waveform.astype(np.float64), (0, max(0, n_window - len(waveform))))
    count = 1 + (len(waveform) - n_window) // hop
    frames = np.stack([waveform[i * hop:i * hop + n_window] for i in range(count)])
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_window) / n_window)
    magnitude = np.abs(np.fft.rfft(frames * hann, n=n_fft))          # [frames, n_fft / 2 + 1]

    def hz_to_mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz) / 700.0)

    bin_mels = hz_to_mel(np.linspace(0, p.sample_rate / 2, n_fft // 2 + 1))
    edges = np.linspace(hz_to_mel(p.lower_edge_hz), hz_to_mel(p.upper_edge_hz), p.num_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mels[:, None] - lower) / (centre - lower)
    falling = (upper - bin_mels[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0] = 0.0                                                   # no DC in any band
    return np.log(magnitude @ weights + p.log_offset)


@pytest.mark.parametrize("frontend", [params.RESNET_FRONTEND, params.CONFORMER_FRONTEND],
                         ids=["resnet_128", "conformer_80"])
def test_log_mel_matches_numpy_reference_to_1e_4(frontend):
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 16000
    waveform = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t)))
    got = features.log_mel_spectrogram(waveform[None].astype(np.float32), frontend).numpy()[0]
    expected = numpy_log_mel(waveform.astype(np.float32), frontend)
    assert got.shape == (frontend.num_frames(len(waveform)), frontend.num_mel_bins)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_short_clip_gets_one_frame():
    out = features.log_mel_spectrogram(np.zeros([1, 100], np.float32), params.RESNET_FRONTEND)
    assert out.shape == (1, 1, 128)
    np.testing.assert_allclose(out, np.log(params.RESNET_FRONTEND.log_offset), atol=1e-6)


def test_num_frames_matches_params():
    counts = features.num_frames(np.array([100, 1024, 48000], np.int32), params.RESNET_FRONTEND)
    assert counts.numpy().tolist() == [params.RESNET_FRONTEND.num_frames(n) for n in (100, 1024, 48000)]


def test_minmax_maps_each_clip_to_unit_range_ignoring_padding():
    batch = np.zeros([2, 8], np.float32)
    batch[0, :4] = [0.1, 0.3, 0.2, 0.5]
    batch[1, :] = [-0.2, 0.0, 0.2, 0.1, 0.0, 0.0, 0.0, 0.0]
    out = features.normalize_minmax(batch, np.array([4, 8])).numpy()
    np.testing.assert_allclose(out[0], [-1.0, 0.0, -0.5, 1.0, 0, 0, 0, 0], atol=1e-6)
    assert out[1].min() == -1.0 and out[1].max() == 1.0
    # A clip normalises the same whatever it is padded to.
    alone = features.normalize_minmax(batch[:1, :4], np.array([4])).numpy()
    np.testing.assert_allclose(alone[0], out[0, :4], atol=1e-7)


def test_minmax_of_a_constant_clip_is_zero_not_nan():
    out = features.normalize_minmax(np.full([1, 5], 0.25, np.float32), np.array([5])).numpy()
    assert np.all(out == 0.0)


def test_int16_scale():
    out = features.normalize_int16(np.array([[0.5, -1.0, 0.25]], np.float32), np.array([2])).numpy()
    np.testing.assert_allclose(out, [[16384.0, -32768.0, 0.0]])


def test_layers_round_trip_through_config_and_keras_file(tmp_path):
    waveform = keras.Input((None,), name="waveform")
    num_samples = keras.Input((), dtype="int32", name="num_samples")
    normalized = features.WaveformNormalization("minmax")(waveform, num_samples)
    log_mel = features.LogMelSpectrogram.from_params(params.CONFORMER_FRONTEND)(normalized)
    model = keras.Model([waveform, num_samples], log_mel)
    clips = np.random.default_rng(1).uniform(-0.5, 0.5, [2, 4000]).astype(np.float32)
    lengths = np.array([4000, 2500], np.int32)
    expected = model([clips, lengths]).numpy()

    layer = model.layers[-1]
    clone = features.LogMelSpectrogram.from_config(layer.get_config())
    assert clone.params == params.CONFORMER_FRONTEND
    path = str(tmp_path / "frontend.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path)([clips, lengths]), expected, atol=1e-6)


def test_bad_normalization_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        features.WaveformNormalization("peak")


if __name__ == "__main__":
    run_main()
