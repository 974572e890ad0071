"""Waveform normalisation and log-mel spectrograms: plain `tf.signal` functions and the Keras layers
that wrap them, so that training, evaluation and the exported SavedModel share one front end that runs
on the accelerator.

Section 2.1 (ResNets): min-max rescaling to [-1, 1], then log-mel with a 64 ms window, a 24 ms hop and
128 mel bands from 0 to 8 kHz. Section 2.2 (Conformer): +-32768 scaling and 80 mel bands.
"""

import dataclasses

import keras
import tensorflow as tf

from vb_keras.params import FrontendParams


def sample_mask(waveform, num_samples):
    """[batch, time] bool: True where a sample belongs to the clip, False on batch padding."""
    return tf.sequence_mask(num_samples, maxlen=tf.shape(waveform)[1])


def normalize_minmax(waveform, num_samples):
    """Rescales each clip from its own minimum and maximum to [-1, 1] (section 2.1).

    Only the first `num_samples[i]` samples of row i count, and padding stays 0, so a clip gives the
    same values whatever it is batched with. A constant clip (no range) maps to zeros.
    """
    mask = sample_mask(waveform, num_samples)                            # [B, T]
    big = tf.constant(3.0e38, waveform.dtype)
    low = tf.reduce_min(tf.where(mask, waveform, big), axis=1, keepdims=True)    # [B, 1]
    high = tf.reduce_max(tf.where(mask, waveform, -big), axis=1, keepdims=True)  # [B, 1]
    span = tf.maximum(high - low, 1e-12)
    scaled = 2.0 * (waveform - low) / span - 1.0
    return tf.where(mask & (high > low), scaled, tf.zeros_like(waveform))


def normalize_int16(waveform, num_samples):
    """Scales [-1, 1] audio to the +-32768 range of 16-bit PCM (section 2.2); padding stays 0."""
    return tf.where(sample_mask(waveform, num_samples), waveform * 32768.0, tf.zeros_like(waveform))


_NORMALIZERS = {"minmax": normalize_minmax, "int16": normalize_int16}


def mel_matrix(params: FrontendParams):
    """[fft_length // 2 + 1, num_mel_bins] HTK mel filter bank (tf.signal's construction)."""
    return tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=params.num_mel_bins,
        num_spectrogram_bins=params.fft_length // 2 + 1,
        sample_rate=params.sample_rate,
        lower_edge_hertz=params.lower_edge_hz,
        upper_edge_hertz=params.upper_edge_hz)


def log_mel_spectrogram(waveform, params: FrontendParams):
    """[batch, time] float waveform -> [batch, frames, num_mel_bins] log-mel magnitudes.

    A clip shorter than one window is zero-padded to one window, so every clip has a frame.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    short_by = params.window_length_samples - tf.shape(waveform)[-1]
    waveform = tf.pad(waveform, [[0, 0], [0, tf.maximum(short_by, 0)]])     # [B, T >= window]
    stft = tf.signal.stft(waveform,
                          frame_length=params.window_length_samples,
                          frame_step=params.hop_length_samples,
                          fft_length=params.fft_length,
                          window_fn=tf.signal.hann_window,
                          pad_end=False)                                   # [B, frames, fft/2 + 1]
    magnitude = tf.abs(stft)
    mel = tf.matmul(magnitude, mel_matrix(params))                         # [B, frames, mels]
    return tf.math.log(mel + params.log_offset)


def num_frames(num_samples, params: FrontendParams):
    """Frames of `log_mel_spectrogram` that hold clip audio, for clips of `num_samples` samples."""
    extra = tf.maximum(num_samples - params.window_length_samples, 0)
    return 1 + extra // params.hop_length_samples


@keras.saving.register_keras_serializable(package="vb_keras")
class WaveformNormalization(keras.layers.Layer):
    """Per-clip waveform normalisation of Belanich et al. (2022), padding-aware.

    Args:
      method: "minmax" (section 2.1, ResNets) or "int16" (section 2.2, Conformer).

    Call arguments:
      waveform: float32 [batch, time] in [-1, 1].
      num_samples: int32 [batch], true clip lengths within the padded batch.
    """

    def __init__(self, method="minmax", **kwargs):
        super().__init__(**kwargs)
        if method not in _NORMALIZERS:
            raise ValueError(f"method must be one of {sorted(_NORMALIZERS)}, got {method!r}")
        self.method = method

    def call(self, waveform, num_samples):
        return _NORMALIZERS[self.method](waveform, tf.cast(num_samples, tf.int32))

    def compute_output_shape(self, waveform_shape, num_samples_shape=None):
        return waveform_shape

    def get_config(self):
        return {**super().get_config(), "method": self.method}


class _FrontendLayer(keras.layers.Layer):
    """Base of the layers configured by a whole `FrontendParams` (stored flat in the config)."""

    def __init__(self, sample_rate=16000, window_seconds=0.064, hop_seconds=0.024, num_mel_bins=128,
                 lower_edge_hz=0.0, upper_edge_hz=8000.0, log_offset=0.001, normalization="minmax",
                 **kwargs):
        super().__init__(**kwargs)
        self.params = FrontendParams(
            sample_rate=sample_rate, window_seconds=window_seconds, hop_seconds=hop_seconds,
            num_mel_bins=num_mel_bins, lower_edge_hz=lower_edge_hz, upper_edge_hz=upper_edge_hz,
            log_offset=log_offset, normalization=normalization)

    @classmethod
    def from_params(cls, params: FrontendParams, **kwargs):
        return cls(**dataclasses.asdict(params), **kwargs)

    def get_config(self):
        return {**super().get_config(), **dataclasses.asdict(self.params)}


@keras.saving.register_keras_serializable(package="vb_keras")
class LogMelSpectrogram(_FrontendLayer):
    """Log-mel spectrogram as a Keras layer (section 2.1; YAMNet-style magnitude mel with a log offset).

    Args:
      **frontend: the fields of `FrontendParams` (sample_rate, window_seconds, hop_seconds,
        num_mel_bins, lower_edge_hz, upper_edge_hz, log_offset, normalization); `normalization` is
        kept only so the layer's config records the whole front end.

    Call arguments:
      waveform: float32 [batch, time] at `sample_rate`.

    Returns:
      float32 [batch, frames, num_mel_bins].
    """

    def call(self, waveform):
        return log_mel_spectrogram(waveform, self.params)

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        frames = None if time is None else self.params.num_frames(time)
        return (input_shape[0], frames, self.params.num_mel_bins)


@keras.saving.register_keras_serializable(package="vb_keras")
class FrameCounts(_FrontendLayer):
    """Valid log-mel frames of each clip from its true length (see `num_frames`).

    Args: as `LogMelSpectrogram`. Call argument: num_samples int [batch]. Returns int32 [batch].
    """

    def call(self, num_samples):
        return num_frames(tf.cast(num_samples, tf.int32), self.params)

    def compute_output_shape(self, input_shape):
        return input_shape
