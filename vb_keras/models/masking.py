"""Padding masks shared by every model: which time steps of a padded batch belong to each clip.

Every model here is padding-exact (a clip's outputs do not depend on its batch-mates), so each one
needs the same two facts: how many steps of a strided feature map a clip's valid frames cover, and a
mask of those steps.
"""

import tensorflow as tf


def valid_steps(num_frames, stride: int = 1):
    """ceil(num_frames / stride), at least 1: the steps of a map with `stride` input frames per step
    that hold any valid frame ("same" padding rounds up). A clip always keeps one step, so pooling
    never divides by zero or takes a softmax over nothing."""
    steps = (tf.cast(num_frames, tf.int32) + stride - 1) // stride
    return tf.maximum(steps, 1)


def step_mask(lengths, max_steps, dtype=tf.bool):
    """[batch, max_steps]: 1 (True) on the first lengths[b] steps of row b, else 0 (False)."""
    return tf.sequence_mask(tf.cast(lengths, tf.int32), maxlen=max_steps, dtype=dtype)
