"""Distillation of a frozen teacher embedder into the section 2.2 Conformer (TRILLsson's recipe).

Shor & Venugopalan (2022, "TRILLsson: Distilled Universal Paralinguistic Speech Representations")
distil CAP12 into small students by training each student to reproduce the teacher's embedding of
fixed-length audio chunks. Here:
  chunks: each clip cut into non-overlapping chunks of the crop length (a shorter last chunk is kept
    if it holds at least `MIN_CHUNK_SECONDS`; a clip shorter than that is one chunk);
  targets: the teacher's embedding of each chunk (its valid samples only), computed once per run and
    kept in the run directory, so a resumed run does not embed the audio again;
  student: the Conformer's embedding (the mean over the valid steps of its embedding layer, as the
    exported embedder computes it), through a linear projection to the teacher's width;
  loss: the mean square error of the projection against the teacher's embedding standardised per
    dimension (mean 0, variance 1 over the training chunks): the share of the teacher's variance the
    student leaves unexplained, 1.0 for a student that predicts the mean. (TRILLsson compares L1,
    L2 and other losses; the standardised L2 is chosen here so that the loss is scale-free and can be
    added to wav2vec 2.0's.) The export folds the standardisation back into the projection, so the
    exported student embeds in the teacher's own space.
"""

import json
import logging
import os

import numpy as np
import tensorflow as tf

from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.utils import atomic
from vb_keras.utils import progress as progress_bars

TARGETS_FILE = "teacher_targets.npz"
TEACHER = "teacher"      # the batches' key of the standardised teacher embedding
MIN_CHUNK_SECONDS = 0.5
SAMPLE_RATE = 16000
# Chunks per teacher call: batches of equal-length chunks, small enough for a CPU's memory.
CHUNKS_PER_CALL = 32


def chunks(waveforms: list, chunk_samples: int,
           min_samples: int = int(MIN_CHUNK_SECONDS * SAMPLE_RATE)) -> list:
    """The int16 chunks of `waveforms` (see the module docstring), clip by clip, in order."""
    result = []
    for waveform in waveforms:
        starts = range(0, max(len(waveform), 1), chunk_samples)
        pieces = [waveform[start:start + chunk_samples] for start in starts]
        if len(pieces) > 1 and len(pieces[-1]) < min_samples:
            pieces = pieces[:-1]
        result.extend(pieces)
    return result


def teacher_embeddings(teacher, pieces: list, progress: bool = True) -> np.ndarray:
    """float32 [chunks, D]: the teacher's embedding of each int16 chunk (its own samples, no
    padding; chunks of equal length share a call)."""
    order = sorted(range(len(pieces)), key=lambda index: len(pieces[index]))
    groups, current = [], []
    for index in order:
        if current and (len(pieces[current[0]]) != len(pieces[index])
                        or len(current) == CHUNKS_PER_CALL):
            groups.append(current)
            current = []
        current.append(index)
    if current:
        groups.append(current)
    result = np.zeros([len(pieces), teacher.dimension], np.float32)
    items = progress_bars.track(groups, len(pieces), size=len, unit="chunk") if progress else groups
    for group in items:
        audio = np.stack([pieces[index] for index in group]).astype(np.float32) / 32768.0
        result[group] = teacher(audio).numpy()
    return result


def load_or_compute_targets(run_dir, teacher, pieces: list, identity: dict,
                            progress: bool = True) -> np.ndarray:
    """The teacher's embeddings of `pieces`, read from `run_dir/teacher_targets.npz` when it holds
    those of the same teacher and chunks (`identity`), else computed and written there."""
    path = os.path.join(run_dir, TARGETS_FILE)
    key = json.dumps(identity, sort_keys=True)
    if os.path.isfile(path):
        with np.load(path) as stored:
            if str(stored["identity"]) == key and len(stored["targets"]) == len(pieces):
                logging.info("reusing the teacher's embeddings in %s", path)
                return stored["targets"]
    logging.info("embedding %d chunks with the teacher %s", len(pieces), identity["teacher"])
    targets = teacher_embeddings(teacher, pieces, progress)
    atomic.write_file(path, lambda stream: np.savez(stream, targets=targets, identity=key),
                      binary=True)
    return targets


def standardization(targets: np.ndarray) -> tuple:
    """(mean, scale) per dimension of the training targets; a constant dimension gets scale 1."""
    mean = targets.mean(axis=0)
    scale = targets.std(axis=0)
    return mean.astype(np.float32), np.where(scale > 1e-6, scale, 1.0).astype(np.float32)


def batches(pieces: list, targets: np.ndarray, batch_size: int, chunk_samples: int,
            seed: int = 0, training: bool = True) -> tf.data.Dataset:
    """{waveform, num_samples, teacher} batches of the chunks, zero-padded to `chunk_samples`;
    training batches are shuffled (reproducibly from the seed) and full."""
    lengths = np.array([len(piece) for piece in pieces], np.int32)
    padded = np.zeros([len(pieces), chunk_samples], np.int16)
    for row, piece in enumerate(pieces):
        padded[row, :len(piece)] = piece
    dataset = tf.data.Dataset.from_tensor_slices((padded, lengths, targets.astype(np.float32)))
    if training:
        dataset = dataset.shuffle(len(pieces), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.map(lambda audio, length, target: {
        WAVEFORM: tf.cast(audio, tf.float32) / 32768.0, NUM_SAMPLES: length, TEACHER: target})
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def distillation_loss(predicted, targets):
    """The mean square error of the student's projection against the standardised targets."""
    return tf.reduce_mean(tf.square(tf.cast(predicted, tf.float32) - tf.cast(targets, tf.float32)))


def unstandardized_projection(kernel: np.ndarray, bias: np.ndarray, mean: np.ndarray,
                              scale: np.ndarray) -> tuple:
    """(kernel, bias) of the projection that embeds in the teacher's own space: x W s + (b s + m)."""
    return kernel * scale[np.newaxis], bias * scale + mean
