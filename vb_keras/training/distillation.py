"""Distillation of a frozen teacher embedder into the section 2.2 Conformer (TRILLsson's recipe).

Shor & Venugopalan (2022, "TRILLsson: Distilled Universal Paralinguistic Speech Representations")
distil CAP12 into small students by training each student to reproduce the teacher's embedding of
fixed-length audio chunks. Here:
  chunks: each clip cut into the windows the conformer heads read (`data/windows.py`: non-overlapping,
    2.5 s by default, the last one zero-padded and kept if it holds at least 0.5 s), so the student
    learns the teacher's embedding of exactly what it will be given at extraction time;
  targets: the teacher's embedding of each chunk, computed once per run and kept in the run
    directory, so a resumed run does not embed the audio again;
  student: the Conformer's embedding (the mean over the valid steps of its embedding layer, as the
    exported embedder computes it), through a linear projection to the teacher's width;
  loss: the mean square error of the projection against the teacher's embedding standardised per
    dimension (mean 0, variance 1 over the training chunks): the share of the teacher's variance the
    student leaves unexplained, 1.0 for a student that predicts the mean. (The standardised square
    error is this project's choice: it is scale-free, so it can be added to wav2vec 2.0's loss.)
    The export folds the standardisation back into the projection, so the exported student embeds
    in the teacher's own space.
"""

import json
import logging
import os

import numpy as np
import tensorflow as tf

from vb_keras.data import pipeline
from vb_keras.utils import windows
from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.params import WindowParams
from vb_keras.utils import atomic
from vb_keras.utils import progress as progress_bars

TARGETS_FILE = "teacher_targets.npz"
TEACHER = "teacher"      # the batches' key of the standardised teacher embedding
# Chunks per teacher call, as the embedding cache's windows per embedder call.
CHUNKS_PER_CALL = 64


def chunks(waveforms: list, window: WindowParams = WindowParams()) -> np.ndarray:
    """int16 [chunks, window samples]: the windows of `waveforms` (`windows.clip_windows`), clip by
    clip, in order."""
    if not waveforms:
        return np.zeros([0, window.window_samples], np.int16)
    return np.concatenate([windows.clip_windows(tf.constant(waveform), window).numpy()
                           for waveform in waveforms])


def teacher_embeddings(teacher, pieces: np.ndarray, progress: bool = True) -> np.ndarray:
    """float32 [chunks, D]: the teacher's embedding of each int16 chunk."""
    starts = range(0, len(pieces), CHUNKS_PER_CALL)
    items = progress_bars.track(starts, len(pieces), unit="chunk", label="teacher embedding",
                                size=lambda start: min(CHUNKS_PER_CALL, len(pieces) - start)
                                ) if progress else starts
    result = [teacher(pieces[start:start + CHUNKS_PER_CALL].astype(np.float32) / 32768.0).numpy()
              for start in items]
    return np.concatenate(result) if result else np.zeros([0, teacher.dimension], np.float32)


def load_or_compute_targets(run_dir, teacher, pieces: np.ndarray, identity: dict,
                            progress: bool = True, store: bool = True) -> np.ndarray:
    """The teacher's embeddings of `pieces`, read from `run_dir/teacher_targets.npz` when it holds
    those of the same teacher and chunks (`identity`), else computed and (if `store`: the chief of
    a multi-worker run alone writes) written there."""
    path = os.path.join(run_dir, TARGETS_FILE)
    key = json.dumps(identity, sort_keys=True)
    if os.path.isfile(path):
        with np.load(path) as stored:
            if str(stored["identity"]) == key and len(stored["targets"]) == len(pieces):
                logging.info("reusing the teacher's embeddings in %s", path)
                return stored["targets"]
    logging.info("embedding %d chunks with the teacher (%s)", len(pieces), teacher.description)
    targets = teacher_embeddings(teacher, pieces, progress)
    if store:
        atomic.write_file(path, lambda stream: np.savez(stream, targets=targets, identity=key),
                          binary=True)
    return targets


def standardization(targets: np.ndarray) -> tuple:
    """(mean, scale) per dimension of the training targets; a constant dimension gets scale 1."""
    mean = targets.mean(axis=0)
    scale = targets.std(axis=0)
    return mean.astype(np.float32), np.where(scale > 1e-6, scale, 1.0).astype(np.float32)


def batches(pieces: np.ndarray, targets: np.ndarray, batch_size: int, seed: int = 0,
            training: bool = True, steps_per_epoch: int | None = None,
            first_epoch: int = 0) -> tf.data.Dataset:
    """{waveform, num_samples, teacher} batches of the chunks, every sample valid (as the embedder
    sees a window); training batches are shuffled (reproducibly from the seed) and full, with
    `steps_per_epoch` an endless stream of epochs from `first_epoch` on, each a pure function of
    (seed, epoch) (`pipeline.epochs_of`)."""
    samples = pieces.shape[1]
    dataset = tf.data.Dataset.from_tensor_slices((pieces, targets.astype(np.float32)))
    if training:
        dataset = pipeline.epochs_of(dataset, seed, batch_size, steps_per_epoch,
                                     first_epoch).map(lambda piece, draw: piece)
    dataset = dataset.map(lambda audio, target: {
        WAVEFORM: tf.cast(audio, tf.float32) / 32768.0, NUM_SAMPLES: tf.constant(samples, tf.int32),
        TEACHER: target})
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def distillation_loss(predicted, targets):
    """The mean square error of the student's projection against the standardised targets."""
    return tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - tf.cast(targets, tf.float32)))


def unstandardized_projection(kernel: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                              scale: np.ndarray) -> tuple:
    """(kernel, bias) of the projection that embeds in the teacher's own space: x W s + (b s + m)."""
    return kernel * scale[np.newaxis], bias * scale + mean
