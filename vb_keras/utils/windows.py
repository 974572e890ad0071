"""Clips -> non-overlapping windows for the frozen embedders (section 2.2: "one embedding per
approximately 2.5 s non-overlapping window"). In TensorFlow, so the same arithmetic runs in the
tf.data extraction and inside an exported serving graph.
"""

import tensorflow as tf

from vb_keras.params import WindowParams


def num_windows(num_samples, window: WindowParams):
    """Windows of a clip of `num_samples` samples (any shape of int tensor); see WindowParams."""
    num_samples = tf.convert_to_tensor(num_samples, tf.int32)
    full = num_samples // window.window_samples
    tail = num_samples - full * window.window_samples
    keep_tail = (tail > 0) & (tail >= window.min_tail_samples)
    return tf.maximum(full + tf.cast(keep_tail, tf.int32), 1)


def clip_windows(audio, window: WindowParams):
    """float32 [samples] -> float32 [num_windows, window_samples]; the last window zero-padded."""
    count = num_windows(tf.shape(audio)[0], window)
    total = count * window.window_samples
    audio = tf.pad(audio[:total], [[0, total - tf.minimum(tf.shape(audio)[0], total)]])
    return tf.reshape(audio, [count, window.window_samples])


def embed_windows(embed, waveform, num_samples, window: WindowParams):
    """A padded batch's windows, embedded: (float32 [batch, most windows, D], int32 [batch] each
    clip's windows), windowed as `clip_windows` windows one clip. Every window of the batch goes
    through `embed` ([n, window_samples] -> [n, D]) in one call.

    The waveform must be zero beyond each row's `num_samples`: that is the last window's padding.
    Rows with fewer windows than the most are padded with embedded silence, which the heads mask.
    """
    size = window.window_samples
    batch = tf.shape(waveform)[0]
    counts = num_windows(num_samples, window)
    most = tf.reduce_max(counts)
    total = most * size
    audio = tf.pad(waveform, [[0, 0], [0, tf.maximum(total - tf.shape(waveform)[1], 0)]])[
        :, :total]
    embedded = embed(tf.reshape(audio, [batch * most, size]))
    dimension = embedded.shape[-1] if embedded.shape[-1] is not None else -1
    return tf.reshape(embedded, [batch, most, dimension]), counts
