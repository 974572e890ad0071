"""Decoding, resampling and bad-file detection. CI also runs this module in a TF 2.16 venv with
tensorflow-io (VB_KERAS_EXPECT_TFIO=1), where the tensorflow-io path must be the one in use."""

import concurrent.futures
import logging
import os

import numpy as np
import pytest

from conftest import EMODB, requires_emodb, run_main, tone, write_wav
from vb_keras.data import audio
from vb_keras.errors import BadAudioError

# tensorflow-io's resampler delays 44.1 and 22.05 kHz input by ~0.07 samples (a 1 kHz tone then
# differs by up to 0.014 from the undelayed one). soxr stays within 3e-8 of the tone; read from a
# 16-bit WAV, the file's quantisation (half a step is 1.5e-5) leaves up to 3.1e-5 after resampling.
TOLERANCE = 0.02 if audio.backend() == "tensorflow-io" else 5e-5


def sine_error(waveform, frequency=1000.0, amplitude=0.5, sample_rate=16000, edge=400):
    reference = amplitude * np.sin(2 * np.pi * frequency * np.arange(len(waveform)) / sample_rate)
    return np.max(np.abs(waveform[edge:-edge] - reference[edge:-edge]))


def test_backend_is_detected_once_and_matches_the_environment():
    assert audio.backend() in ("tensorflow-io", "native")
    if os.environ.get("VB_KERAS_EXPECT_TFIO") == "1":
        assert audio.backend() == "tensorflow-io"


def test_the_backend_is_logged_once_per_process_and_names_the_resampler(caplog):
    """Decoding threads ask for the backend at the same moment: one line, naming what resamples."""
    audio._detect_backend.cache_clear()   # pylint: disable=protected-access
    with caplog.at_level(logging.INFO):
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert len(set(pool.map(lambda _: audio.backend(), range(8)))) == 1
    lines = [record.getMessage() for record in caplog.records
             if record.getMessage().startswith("audio backend:")]
    assert len(lines) == 1, lines
    if audio.backend() == "native":
        assert "libsoxr resampling" in lines[0] and "TensorFlow" not in lines[0]


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 8000, 16000])
def test_resampling_any_rate_to_16k_keeps_a_tone(tmp_path, rate):
    path = write_wav(str(tmp_path / "tone.wav"), tone(2.0, rate, 1000.0), rate)
    waveform = audio.load(path)
    assert waveform.dtype == np.float32 and len(waveform) == 32000
    assert sine_error(waveform) < TOLERANCE


def test_soxr_resampler_is_band_limited_and_accurate():
    above_nyquist = tone(2.0, 48000, 10000.0)
    residue = audio.resample(above_nyquist, 48000, 16000)[400:-400]
    assert 20 * np.log10(np.max(np.abs(residue)) / 0.5) < -120     # aliasing suppressed (-165 dB)
    for rate in (48000, 44100, 22050, 8000):                        # 1.4e-8 to 2.4e-8 measured
        resampled = audio.resample(tone(2.0, rate, 1000.0), rate, 16000)
        assert resampled.dtype == np.float32 and sine_error(resampled) < 1e-6
    # soxr rounds the length; the clip keeps ceil(len * 16000 / rate), even a single sample.
    assert len(audio.resample(np.zeros(441, np.float32), 44100, 16000)) == 160
    assert len(audio.resample(np.zeros(444, np.float32), 44100, 16000)) == 162
    assert len(audio.resample(np.ones(1, np.float32), 48000, 16000)) == 1


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "PCM_U8"])
def test_wav_sample_formats(tmp_path, subtype):
    path = write_wav(str(tmp_path / f"{subtype}.wav"), tone(1.0, 16000, 1000.0), subtype=subtype)
    assert sine_error(audio.load(path)) < (1e-2 if subtype == "PCM_U8" else 1e-4)


def test_stereo_is_folded_to_mono(tmp_path):
    left, right = tone(1.0, frequency=1000.0, amplitude=0.8), np.zeros(16000, np.float32)
    path = write_wav(str(tmp_path / "stereo.wav"), np.stack([left, right], axis=1))
    assert sine_error(audio.load(path), amplitude=0.4) < 1e-4


@pytest.mark.parametrize("extension, subtype, tolerance", [
    ("flac", "PCM_16", 1e-4), ("ogg", "VORBIS", 0.05), ("mp3", "MPEG_LAYER_III", 0.05)])
def test_compressed_formats(tmp_path, extension, subtype, tolerance):
    path = write_wav(str(tmp_path / f"tone.{extension}"), tone(2.0, 44100, 1000.0), 44100, subtype)
    waveform = audio.load(path)
    assert abs(len(waveform) - 32000) <= 1200   # MP3 and Vorbis may add encoder padding
    assert sine_error(waveform[:30000], edge=2000) < max(tolerance, TOLERANCE)


def _write(path, data: bytes):
    path.write_bytes(data)
    return str(path)


def _truncated_wav(tmp_path):
    path = write_wav(str(tmp_path / "full.wav"), tone(1.0))
    data = open(path, "rb").read()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:len(data) // 2])
    return str(cut)


@pytest.mark.parametrize("make, reason", [
    (lambda d: str(d / "missing.wav"), "file not found"),
    (lambda d: _write(d / "empty.wav", b""), "empty file"),
    (lambda d: _write(d / "text.wav", b"not audio at all"), "not a WAV file"),
    (lambda d: _write(d / "text.flac", b"not audio at all"), "not a readable audio file"),
    (_truncated_wav, "truncated"),
    (lambda d: write_wav(str(d / "silent.wav"), np.zeros(16000, np.float32)), "silent"),
])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(BadAudioError) as caught:
        audio.load(path)
    assert reason in str(caught.value) and str(caught.value).startswith(path)
    assert "\n" not in str(caught.value)


def test_a_float_wav_beyond_full_scale_is_kept_with_one_warning_naming_it(tmp_path, caplog):
    loud = write_wav(str(tmp_path / "loud.wav"), tone(1.0, amplitude=20.0), subtype="FLOAT")
    normal = write_wav(str(tmp_path / "normal.wav"), tone(1.0, amplitude=0.9), subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        assert np.max(np.abs(audio.load(loud))) == pytest.approx(20.0, rel=1e-3)
        audio.load(normal)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{loud}: peak 20 exceeds full scale")


def test_to_int16_round_trip():
    from vb_keras.data.loading import to_int16
    waveform = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5], np.float32)
    assert to_int16(waveform).tolist() == [-32768, -16384, 0, 16384, 32767, 32767]


@requires_emodb
def test_real_emodb_clip_resamples_from_22050():
    waveform, rate = audio.decode(os.path.join(EMODB, "wav", "03a01Fa.wav"))
    assert rate == 22050 and len(waveform) == 44100
    resampled = audio.load(os.path.join(EMODB, "wav", "03a01Fa.wav"))
    assert len(resampled) == 32000
    # Speech energy survives resampling: RMS agrees within 5%.
    assert np.sqrt(np.mean(resampled ** 2)) == pytest.approx(np.sqrt(np.mean(waveform ** 2)), rel=0.05)


if __name__ == "__main__":
    run_main()
