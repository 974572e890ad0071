"""Heads on frozen Conformer window embeddings (Belanich et al., 2022, section 2.2).

A clip is a sequence of window embeddings (one per ~2.5 s window; 1024-d from the 12th Conformer
layer of Shor et al., 2022) [batch, windows, D] with `num_windows` int32 [batch]: row i holds
`num_windows[i]` valid windows, then batch padding. Every head reads only the valid windows, so a
clip's outputs do not depend on what it is batched with. The five heads of section 2.2:

  conformer           masked mean over windows -> task layers
  conformer_fc        masked mean -> shared 128-unit Dense (relu) -> task layers
  conformer_lstm      one 128-unit LSTM over the valid windows (its last output) -> task layers
  conformer_netvlad   NetVLAD, 5 clusters (Arandjelovic et al., 2016) -> task layers
  conformer_autopool  AutoPool (McFee, Salamon & Bello, 2018) -> task layers

The task layers are `multitask.task_outputs`, the ones of the ResNet models.
"""

from typing import Sequence

import keras
import tensorflow as tf

from vb_keras.keys import EMBEDDINGS, EXTRA, NUM_WINDOWS
from vb_keras import tasks as vb_tasks
from vb_keras.models import masking, multitask
from vb_keras.schema import TASKS, LabelSchema

# Section 2.2: 128 units for the shared FC layer and the LSTM, 5 NetVLAD clusters.
HIDDEN_UNITS = 128
NETVLAD_CLUSTERS = 5

# The heads are small and read frozen float32 embeddings, so they stay float32 under a mixed
# precision policy: the softmaxes of AutoPool and NetVLAD and the L2 norms need the range.
_FLOAT32 = "float32"


def window_mask(num_windows, max_windows):
    """[batch, max_windows] bool: True on the valid windows of each clip.

    A clip has at least one window: `num_windows` < 1 counts as 1 (as `MaskedGlobalAveragePooling`
    keeps one time step), so no pooling divides by zero or takes a softmax over nothing.
    """
    return masking.step_mask(masking.valid_steps(num_windows), max_windows)


def _valid(embeddings, num_windows):
    """The mask and the embeddings with padding set to 0.

    Zeroing (rather than multiplying by the mask) keeps non-finite padding from reaching outputs or
    gradients: 0 * inf is NaN, and tf.where's unselected branch still feeds the backward pass.
    """
    mask = window_mask(num_windows, tf.shape(embeddings)[1])                 # [B, T]
    return mask, tf.where(mask[:, :, None], embeddings, tf.zeros_like(embeddings))


@keras.saving.register_keras_serializable(package="vb_keras")
class WindowMask(keras.layers.Layer):
    """The boolean window mask [batch, windows] from `num_windows`, for Keras' own masking (the LSTM
    head passes it as `mask=`, so the LSTM skips padded windows and returns its last valid output).

    Call arguments:
      embeddings: [batch, windows, D] (only its shape is read).
      num_windows: int [batch], valid windows of each clip.
    """

    def call(self, embeddings, num_windows):
        return window_mask(num_windows, tf.shape(embeddings)[1])

    def compute_output_shape(self, embeddings_shape, num_windows_shape=None):
        return tuple(embeddings_shape[:2])

    def compute_output_spec(self, embeddings, num_windows):
        return keras.KerasTensor(tuple(embeddings.shape[:2]), dtype="bool")


@keras.saving.register_keras_serializable(package="vb_keras")
class MaskedMean(keras.layers.Layer):
    """Mean of the valid windows: the clip average of section 2.2's Conformer and Conformer+FC.

    Call arguments:
      embeddings: [batch, windows, D].
      num_windows: int [batch], valid windows of each clip.

    Returns:
      [batch, D].
    """

    def call(self, embeddings, num_windows):
        mask, embeddings = _valid(embeddings, num_windows)
        count = tf.reduce_sum(tf.cast(mask, embeddings.dtype), axis=1, keepdims=True)   # [B, 1]
        return tf.reduce_sum(embeddings, axis=1) / count

    def compute_output_shape(self, embeddings_shape, num_windows_shape=None):
        return (embeddings_shape[0], embeddings_shape[-1])


@keras.saving.register_keras_serializable(package="vb_keras")
class AutoPool(keras.layers.Layer):
    """Adaptive pooling over the valid windows (McFee, Salamon & Bello, 2018, "Adaptive pooling
    operators for weakly labeled sound event detection"), section 2.2's Conformer+Autopool.

    For each feature dimension d, with a learned alpha_d: w_t = softmax_t(alpha_d * x_td) over the
    valid windows t, and the output is sum_t w_t * x_td. alpha = 0 is the mean, alpha -> +inf the
    max and alpha -> -inf the min, so training picks a pooling operator per dimension. McFee et al.
    learn one alpha per class on top of per-frame predictions; here the pooled features go to the
    task layers, so there is one alpha per embedding dimension. Adds D parameters.

    Args:
      initial_alpha: the starting alpha of every dimension (0: start as the mean).

    Call arguments:
      embeddings: [batch, windows, D].
      num_windows: int [batch], valid windows of each clip.

    Returns:
      [batch, D].
    """

    def __init__(self, initial_alpha=0.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_alpha = float(initial_alpha)

    def build(self, embeddings_shape, num_windows_shape=None):
        self.alpha = self.add_weight(
            shape=(embeddings_shape[-1],), name="alpha",
            initializer=keras.initializers.Constant(self.initial_alpha))

    def call(self, embeddings, num_windows):
        mask, embeddings = _valid(embeddings, num_windows)
        logits = tf.where(mask[:, :, None], self.alpha * embeddings,
                          tf.constant(-float("inf"), embeddings.dtype))
        weights = tf.nn.softmax(logits, axis=1)               # 0 on padding; >= 1 valid window
        return tf.reduce_sum(weights * embeddings, axis=1)

    def compute_output_shape(self, embeddings_shape, num_windows_shape=None):
        return (embeddings_shape[0], embeddings_shape[-1])

    def get_config(self):
        return {**super().get_config(), "initial_alpha": self.initial_alpha}


@keras.saving.register_keras_serializable(package="vb_keras")
class NetVLAD(keras.layers.Layer):
    """NetVLAD aggregation of the valid windows (Arandjelovic et al., 2016), section 2.2's
    Conformer+NetVlad with 5 clusters.

    Soft assignment a_tk = softmax_k(x_t W + b)_k of each valid window t to K clusters; per cluster
    the assignment-weighted residuals to a learned centroid, V_k = sum_t a_tk (x_t - c_k), summed
    over the valid windows only; each V_k is L2-normalised ("intra-normalisation"), then the
    flattened vector is L2-normalised as a whole. So every non-empty cluster block has norm
    1 / sqrt(K) and the output norm 1. W, b and c are decoupled, as in the paper (its
    centroid-derived initialisation needs k-means, so they start random here). Adds 2 * K * D + K
    parameters.

    Args:
      num_clusters: K.

    Call arguments:
      embeddings: [batch, windows, D].
      num_windows: int [batch], valid windows of each clip.

    Returns:
      [batch, K * D], cluster-major: block k is `output[:, k * D:(k + 1) * D]`.
    """

    def __init__(self, num_clusters=NETVLAD_CLUSTERS, **kwargs):
        super().__init__(**kwargs)
        self.num_clusters = int(num_clusters)

    def build(self, embeddings_shape, num_windows_shape=None):
        dim = embeddings_shape[-1]
        self.kernel = self.add_weight(shape=(dim, self.num_clusters), name="kernel",
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(shape=(self.num_clusters,), name="bias", initializer="zeros")
        # Centroids on the scale of unit-variance features' projections, as in YouTube-8M's NetVLAD.
        self.centroids = self.add_weight(
            shape=(self.num_clusters, dim), name="centroids",
            initializer=keras.initializers.RandomNormal(stddev=dim ** -0.5))

    def call(self, embeddings, num_windows):
        mask, embeddings = _valid(embeddings, num_windows)
        assignment = tf.nn.softmax(tf.einsum("btd,dk->btk", embeddings, self.kernel) + self.bias)
        assignment = tf.where(mask[:, :, None], assignment, tf.zeros_like(assignment))
        # sum_t a_tk (x_t - c_k) = sum_t a_tk x_t - (sum_t a_tk) c_k
        vlad = (tf.einsum("btk,btd->bkd", assignment, embeddings)
                - tf.reduce_sum(assignment, axis=1)[:, :, None] * self.centroids)   # [B, K, D]
        vlad = tf.math.l2_normalize(vlad, axis=-1)                                  # intra-norm
        vlad = tf.reshape(vlad, (-1, self.num_clusters * tf.shape(embeddings)[-1]))
        return tf.math.l2_normalize(vlad, axis=-1)

    def compute_output_shape(self, embeddings_shape, num_windows_shape=None):
        dim = embeddings_shape[-1]
        return (embeddings_shape[0], None if dim is None else self.num_clusters * dim)

    def get_config(self):
        return {**super().get_config(), "num_clusters": self.num_clusters}


def _mean(embeddings, num_windows):
    return MaskedMean(name="mean", dtype=_FLOAT32)(embeddings, num_windows)


def _lstm(embeddings, num_windows):
    mask = WindowMask(name="window_mask", dtype=_FLOAT32)(embeddings, num_windows)
    return keras.layers.LSTM(HIDDEN_UNITS, name="lstm", dtype=_FLOAT32)(embeddings, mask=mask)


def _netvlad(embeddings, num_windows):
    return NetVLAD(NETVLAD_CLUSTERS, name="netvlad", dtype=_FLOAT32)(embeddings, num_windows)


def _autopool(embeddings, num_windows):
    return AutoPool(name="autopool", dtype=_FLOAT32)(embeddings, num_windows)


# name -> (pooling(embeddings, num_windows) -> clip vector [batch, P], units of a shared Dense
# (relu) layer between the clip vector and the task layers, or 0 for none).
HEADS = {
    "conformer": (_mean, 0),
    "conformer_fc": (_mean, HIDDEN_UNITS),
    "conformer_lstm": (_lstm, 0),
    "conformer_netvlad": (_netvlad, 0),
    "conformer_autopool": (_autopool, 0),
}


def check_head_name(name: str) -> str:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {', '.join(sorted(HEADS))}")
    return name


def build_head_model(head: str, embedding_dim: int, schema: LabelSchema,
                     tasks: Sequence[str] = TASKS, initial_biases: dict | None = None,
                     extra_dim: int = 0, dropout: float = 0.0,
                     name: str | None = None) -> keras.Model:
    """Builds a section 2.2 head on window embeddings (inside `strategy.scope()` to distribute).

    The graph is: pooling -> dropout -> concatenation of the extra inputs -> [shared FC] -> task
    layers. So the extra inputs join the clip vector the head pools to: the masked mean (conformer,
    and conformer_fc *before* its FC layer, which then sees D + extra_dim inputs like the 1049-d
    input of section 3.1), the LSTM's last output (conformer_lstm), the normalised NetVLAD vector
    (conformer_netvlad; the extras are not rescaled by its L2 norm) or the AutoPool output
    (conformer_autopool). Dropout never drops the extra inputs.

    Args:
      head: a key of HEADS.
      embedding_dim: D, the size of one window embedding (1024 for the paper's Conformer).
      schema: the label schema, with classes.
      tasks: the outputs to build; all three is the multitask model.
      initial_biases: optional starting biases per task (see `multitask.build_model`).
      extra_dim: size of per-clip extra inputs (section 3.1 feeds one-hot country and age); 0: none.
      dropout: rate of the dropout on the pooled clip vector (section 2.2 gives none).
      name: the model's name (default: the head and its tasks).

    Returns:
      A functional model on {"embeddings": float32 [batch, windows, embedding_dim], "num_windows":
      int32 [batch]} and, when extra_dim > 0, "extra": float32 [batch, extra_dim], returning a dict
      keyed by task name.
    """
    pool, hidden_units = HEADS[check_head_name(head)]
    tasks = vb_tasks.canonical(tasks)
    if int(embedding_dim) < 1 or int(extra_dim) < 0:
        raise ValueError(f"need embedding_dim >= 1 and extra_dim >= 0, got {embedding_dim}, "
                         f"{extra_dim}")
    embeddings = keras.Input((None, int(embedding_dim)), name=EMBEDDINGS)
    num_windows = keras.Input((), dtype="int32", name=NUM_WINDOWS)
    inputs = {EMBEDDINGS: embeddings, NUM_WINDOWS: num_windows}
    clip = pool(embeddings, num_windows)
    clip = keras.layers.Dropout(dropout, name="dropout", dtype=_FLOAT32)(clip)
    if extra_dim:
        inputs[EXTRA] = keras.Input((int(extra_dim),), name=EXTRA)
        clip = keras.layers.Concatenate(name="with_extra", dtype=_FLOAT32)([clip, inputs[EXTRA]])
    if hidden_units:
        clip = keras.layers.Dense(hidden_units, activation="relu", name="fc",
                                  dtype=_FLOAT32)(clip)
    outputs = multitask.task_outputs(clip, schema, tasks, initial_biases)
    return keras.Model(inputs, outputs, name=name or f"{head}_{'_'.join(tasks)}")
