"""What a servable puts in front of each model family: a padded waveform batch -> the model's inputs.

  WaveformInputs (ResNets): the waveform and its lengths, passed through (the front end is in the
                            model);
  EmbedderInputs (conformer heads): windows and the frozen embedder, as the embedding cache
                            computes them (`windows.clip_windows`).
Each does it in the serving graph (`in_graph`) and on the host, the way training and evaluation see
a clip (`on_host`, for checking an export against the Keras model).
"""

import numpy as np
import tensorflow as tf

from vb_keras.data import windows
from vb_keras.keys import EMBEDDINGS, NUM_SAMPLES, NUM_WINDOWS, WAVEFORM
from vb_keras.models import readers
from vb_keras.params import TrainingParams


def padded_batch(clips) -> dict:
    """The signature's inputs for a list of float32 clips: {WAVEFORM: [batch, longest] zero-padded,
    NUM_SAMPLES: [batch] true lengths}."""
    lengths = np.array([len(clip) for clip in clips], np.int32)
    waveform = np.zeros([len(clips), max(lengths.max(), 1)], np.float32)
    for row, clip in enumerate(clips):
        waveform[row, :len(clip)] = clip
    return {WAVEFORM: waveform, NUM_SAMPLES: lengths}


class WaveformInputs:
    """The ResNets read the servable's inputs as they are."""

    # What an export must track besides the model (nothing: the front end is in the model).
    trackables = ()

    @classmethod
    def from_params(cls, params: TrainingParams) -> "WaveformInputs":
        del params
        return cls()

    def in_graph(self, waveform, num_samples) -> dict:
        return {WAVEFORM: waveform, NUM_SAMPLES: num_samples}

    def on_host(self, clips) -> dict:
        return padded_batch(clips)


class EmbedderInputs:
    """The conformer heads read window embeddings of the frozen embedder they were trained on."""

    def __init__(self, embedder, window):
        self.embedder = embedder
        self.window = window
        self.trackables = (embedder.saved_model,)   # its variables, for the session loader

    @classmethod
    def from_params(cls, params: TrainingParams) -> "EmbedderInputs":
        return cls(readers.load_embedder(params.embedder), params.window())

    def in_graph(self, waveform, num_samples) -> dict:
        """Padded batch (zero beyond each row's length) -> {EMBEDDINGS: [batch, max windows, D],
        NUM_WINDOWS: [batch]}, windowed exactly as the embedding cache windows one clip."""
        size = self.window.window_samples
        batch = tf.shape(waveform)[0]
        counts = windows.num_windows(num_samples, self.window)
        most = tf.reduce_max(counts)
        total = most * size
        # The waveform is zero beyond each row's length: the last window's padding.
        audio = tf.pad(waveform, [[0, 0], [0, tf.maximum(total - tf.shape(waveform)[1], 0)]])[
            :, :total]
        embedded = self.embedder(tf.reshape(audio, [batch * most, size]))
        return {EMBEDDINGS: tf.reshape(embedded, [batch, most, self.embedder.dimension]),
                NUM_WINDOWS: counts}

    def on_host(self, clips) -> dict:
        """The clips' sequences as the embedding cache computes them, padded into one batch."""
        sequences = [np.asarray(self.embedder(windows.clip_windows(clip, self.window)))
                     for clip in clips]
        most = max(len(s) for s in sequences)
        return {EMBEDDINGS: np.stack([np.pad(s, ((0, most - len(s)), (0, 0)))
                                      for s in sequences]),
                NUM_WINDOWS: np.array([len(s) for s in sequences], np.int32)}
