"""Audio files to 16 kHz float32 mono waveforms in [-1, 1] (section 2: "we downsample ... to 16kHz").

Decoding: WAV (8/16/24/32-bit PCM, 32/64-bit float, any channel count; channels are averaged to mono)
through libsndfile (`soundfile`), which also reads FLAC, OGG/Vorbis and MP3. Where tensorflow-io's
kernels load (the TF 2.16 line, see docs/data.md), it decodes the compressed formats and resamples
instead. Resampling otherwise uses `resample`, libsoxr's very-high-quality filter (`soxr`) on the host:
the output is NumPy, and nothing resamples in-graph (exports take 16 kHz input).

Which path is used is decided once per process and logged (`backend()`).

Every problem with a file raises `BadAudioError` with a one-line reason: missing, empty, truncated,
not audio, non-finite or silent. A clip louder than full scale (a float WAV can hold any value) is
kept, with one warning naming the file and its peak: storing it as 16-bit PCM clips it to [-1, 1].
"""

import functools
import logging
import math
import os
import struct
import threading

import numpy as np
import soundfile
import soxr
import tensorflow as tf

from vb_keras.errors import BadAudioError
from vb_keras.params import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
_COMPRESSED = (".flac", ".ogg", ".mp3")
# A clip whose peak stays below one 16-bit step carries no usable signal.
SILENCE_PEAK = 1.0 / 32768.0
# Peaks above these are warned about (the samples beyond 1.0 are clipped when stored as int16).
# Lossy decoders overshoot full scale on loud but sane clips (EmoGator MP3s: 4% of them, by up to
# 1.22), so compressed formats are warned only past +6 dB; an uncompressed file past 1.0 is mis-scaled.
CLIPPING_PEAK = 1.0
CLIPPING_PEAK_COMPRESSED = 2.0

# libsoxr's "VHQ" over "HQ": on a 10 s 1 kHz tone its error is 2e-8 against 3e-7 for 1.3-1.8x the
# time, still over 1,000 s of audio a second and 2-3x scipy's resample_poly (benchmarks/resample.py);
# the hand-written TensorFlow filter it replaced erred by 1e-5 and took 5-15x as long.
SOXR_QUALITY = "VHQ"


_BACKEND_LOCK = threading.Lock()


def backend() -> str:
    """Returns "tensorflow-io" when tensorflow-io's kernels load here, else "native"; logs it once
    per process."""
    with _BACKEND_LOCK:   # decoding threads ask at once: detect (and log) once, not once each
        return _detect_backend()


@functools.lru_cache(maxsize=None)
def _detect_backend() -> str:
    try:
        import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel
        # Importing succeeds even when the kernels do not load (TF >= 2.17): call one to find out.
        tfio.audio.resample(tf.zeros([16], tf.float32), rate_in=8000, rate_out=16000)
    except Exception as error:  # ImportError, NotImplementedError, or a symbol error from the .so
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        logging.info("audio backend: native (libsndfile decoding, libsoxr resampling at %s); "
                     "tensorflow-io unavailable: %s", SOXR_QUALITY, reason)
        return "native"
    logging.info("audio backend: tensorflow-io %s for compressed audio and resampling",
                 tfio.__version__)
    return "tensorflow-io"


def load(path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decodes `path`, folds it to mono and resamples it: float32 [samples] in [-1, 1].

    Raises:
      BadAudioError: the file is missing, empty, truncated, not audio, non-finite or silent.
    """
    waveform, rate = decode(path)
    if rate != sample_rate:
        waveform = resample_audio(waveform, rate, sample_rate)
    return waveform


def decode(path):
    """Returns (float32 mono waveform, sample rate) at the file's own rate. See `load`."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BadAudioError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise BadAudioError(path, "empty file (0 bytes)")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".wav":
        _check_wav_not_truncated(path)
    if extension in _COMPRESSED and backend() == "tensorflow-io":
        waveform, rate = _decode_tfio(path)
    else:
        waveform, rate = _decode_soundfile(path)
    if waveform.size == 0:
        raise BadAudioError(path, "no audio samples")
    if not np.all(np.isfinite(waveform)):
        raise BadAudioError(path, "audio holds NaN or infinite samples")
    peak = float(np.max(np.abs(waveform)))
    if peak < SILENCE_PEAK:
        raise BadAudioError(path, "silent (peak below one 16-bit step)")
    if peak > (CLIPPING_PEAK_COMPRESSED if extension in _COMPRESSED else CLIPPING_PEAK):
        logging.warning("%s: peak %.3g exceeds full scale (1.0); samples beyond it will be clipped "
                        "to [-1, 1] (16-bit storage)", path, peak)
    return waveform, rate


def _decode_soundfile(path):
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BadAudioError(path, f"not a readable audio file ({reason})") from None
    return samples.mean(axis=1, dtype=np.float32), int(rate)


def _decode_tfio(path):
    import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel
    try:
        audio = tfio.audio.AudioIOTensor(path)
        samples = audio.to_tensor().numpy()
        rate = int(audio.rate.numpy())
    except Exception as error:  # tfio raises assorted tf.errors for undecodable files
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise BadAudioError(path, f"not a readable audio file ({reason})") from None
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(np.float32) / float(-np.iinfo(samples.dtype).min)
    return samples.astype(np.float32).mean(axis=1), rate


def _check_wav_not_truncated(path):
    """Raises if the WAV header promises more audio than the file holds.

    libsndfile quietly reads what is there, so a copy cut short would otherwise train as a shorter clip.
    """
    file_size = os.path.getsize(path)
    with open(path, "rb") as stream:
        header = stream.read(12)
        if len(header) < 12 or header[:4] not in (b"RIFF", b"RF64") or header[8:12] != b"WAVE":
            raise BadAudioError(path, "not a WAV file (no RIFF/WAVE header)")
        if header[:4] == b"RF64":  # 64-bit sizes live in a ds64 chunk; libsndfile checks those.
            return
        position = 12
        while position + 8 <= file_size:
            stream.seek(position)
            chunk_id, chunk_size = struct.unpack("<4sI", stream.read(8))
            if chunk_id == b"data":
                available = file_size - position - 8
                if chunk_size > available and chunk_size != 0xFFFFFFFF:
                    raise BadAudioError(
                        path, f"truncated: header declares {chunk_size} bytes of audio, "
                              f"file holds {available}")
                return
            position += 8 + chunk_size + (chunk_size & 1)
    raise BadAudioError(path, "truncated: WAV file has no data chunk")


def resample_audio(waveform, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Resamples a 1-D waveform with tensorflow-io where it works, else with `resample`."""
    waveform = np.asarray(waveform, np.float32)
    if rate_in == rate_out:
        return waveform
    if backend() == "tensorflow-io":
        import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel
        return tfio.audio.resample(tf.constant(waveform), rate_in=rate_in, rate_out=rate_out).numpy()
    return resample(waveform, rate_in, rate_out)


def resample(waveform, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D float waveform with libsoxr (`soxr.resample`, `SOXR_QUALITY`).

    soxr rounds the output length; this keeps ceil(len * rate_out / rate_in), reading zeros beyond the
    clip for the last samples, so a clip of any length keeps at least one sample.

    Returns:
      float32 [ceil(len(waveform) * rate_out / rate_in)].
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    waveform = np.asarray(waveform, np.float32)
    if rate_in == rate_out:
        return waveform
    g = math.gcd(int(rate_in), int(rate_out))
    up, down = int(rate_out) // g, int(rate_in) // g
    num_out = (len(waveform) * up + down - 1) // down
    # Two input samples more than one output step covers, so soxr's rounding never falls short.
    padded = np.pad(waveform, (0, -(-down // up) + 2))
    return soxr.resample(padded, rate_in, rate_out, quality=SOXR_QUALITY)[:num_out].astype(np.float32)
