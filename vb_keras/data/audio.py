"""Audio files to 16 kHz float32 mono waveforms in [-1, 1] (section 2: "we downsample ... to 16kHz").

Decoding: WAV (8/16/24/32-bit PCM, 32/64-bit float, any channel count; channels are averaged to mono)
through libsndfile (`soundfile`), which also reads FLAC, OGG/Vorbis and MP3. Where tensorflow-io's
kernels load (the TF 2.16 line, see README), it decodes the compressed formats and resamples instead.
Resampling otherwise uses `resample`, a Kaiser-windowed sinc polyphase filter built from TensorFlow ops.

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

import numpy as np
import soundfile
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

# Resampler design: 16 zero crossings of the sinc on each side, Kaiser beta 8 (about 80 dB stop band),
# pass band to 95% of the lower Nyquist frequency, as resampy and libsamplerate do.
_ZERO_CROSSINGS = 16
_KAISER_BETA = 8.0
_ROLLOFF = 0.95


@functools.lru_cache(maxsize=None)
def backend() -> str:
    """Returns "tensorflow-io" when tensorflow-io's kernels load here, else "native"; logs it once."""
    try:
        import tensorflow_io as tfio  # pylint: disable=import-outside-toplevel
        # Importing succeeds even when the kernels do not load (TF >= 2.17): call one to find out.
        tfio.audio.resample(tf.zeros([16], tf.float32), rate_in=8000, rate_out=16000)
    except Exception as error:  # ImportError, NotImplementedError, or a symbol error from the .so
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        logging.info("audio backend: native (libsndfile decoding, TensorFlow resampling); "
                     "tensorflow-io unavailable: %s", reason)
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
    return resample(waveform, rate_in, rate_out).numpy()


def resample(waveform, rate_in: int, rate_out: int) -> tf.Tensor:
    """Band-limited resampling of a 1-D float waveform with TensorFlow ops.

    A rational-ratio polyphase filter: with up = rate_out / g and down = rate_in / g (g their gcd),
    output n reads input time n * down / up through a Kaiser-windowed sinc. Outputs n = q * up + r
    share their filter phase for each r, so all of them come from one strided `conv1d` with `up`
    output channels: the work is proportional to the output length, and the filter bank is built
    once per rate pair.

    Returns:
      float32 [ceil(len(waveform) * rate_out / rate_in)].
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError(f"sample rates must be positive, got {rate_in} and {rate_out}")
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if rate_in == rate_out:
        return waveform
    filters, up, down, left_pad = _polyphase_filters(int(rate_in), int(rate_out))
    num_in = tf.shape(waveform)[0]
    num_out = (num_in * up + down - 1) // down
    num_blocks = (num_out + up - 1) // up
    # Enough zeros after the clip for the last block's full filter span.
    right_pad = num_blocks * down + filters.shape[0] - num_in - left_pad
    padded = tf.pad(waveform, [[left_pad, tf.maximum(right_pad, 0)]])
    blocks = tf.nn.conv1d(padded[tf.newaxis, :, tf.newaxis], filters[:, tf.newaxis, :],
                          stride=down, padding="VALID")               # [1, >= num_blocks, up]
    return tf.reshape(blocks[0, :num_blocks], [-1])[:num_out]


@functools.lru_cache(maxsize=32)
def _polyphase_filters(rate_in: int, rate_out: int):
    """Filter bank [span, up] for `resample`, its ratio, and the left padding it expects."""
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    cutoff = min(1.0, up / down) * _ROLLOFF          # in units of the input Nyquist frequency
    half_width = int(math.ceil(_ZERO_CROSSINGS / cutoff))  # input samples on each side
    taps = np.arange(-(half_width - 1), half_width + 1)    # 2 * half_width taps around floor(t)
    r = np.arange(up)
    base = (r * down) // up                                # input offset of output r in its block
    phase = (r * down) % up / up                           # fractional position of output r
    tau = taps[np.newaxis, :] - phase[:, np.newaxis]       # [up, taps], input samples from t
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (tau / half_width) ** 2, 0, None)))
    window /= np.i0(_KAISER_BETA)
    kernels = cutoff * np.sinc(cutoff * tau) * window
    filters = np.zeros([int(base.max()) + len(taps), up], np.float32)
    for channel in range(up):
        filters[base[channel]:base[channel] + len(taps), channel] = kernels[channel]
    return tf.constant(filters), up, down, half_width - 1
