"""Negative mean CCC, the emotion loss of section 2.1 ("a negative mean concordance correlation
coefficient (meanCCC) loss").

CCC is a statistic of a whole batch, so the loss is one value per batch; larger batches make it
steadier (the paper's remark on batch size 64).
"""

import keras
import tensorflow as tf

# Keeps the ratio finite when a batch's labels and predictions are both constant and equal.
_EPSILON = 1e-6


@keras.saving.register_keras_serializable(package="vb_keras")
class NegativeMeanCCC(keras.losses.Loss):
    """-mean over columns of 2 cov / (var_t + var_p + (mean_t - mean_p)^2), over the batch.

    With constant predictions the covariance is 0 but its gradient, (y_true - mean_t) / n, is not, so
    training starts from any initialisation. Ranges over [-1, 1]; -1 is perfect concordance.
    """

    def __init__(self, name="negative_mean_ccc", **kwargs):
        kwargs.setdefault("reduction", "sum_over_batch_size")
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        sums = [tf.cast(tf.shape(y_true)[0], tf.float32),
                tf.reduce_sum(y_true, axis=0), tf.reduce_sum(y_pred, axis=0),
                tf.reduce_sum(y_true * y_true, axis=0), tf.reduce_sum(y_pred * y_pred, axis=0),
                tf.reduce_sum(y_true * y_pred, axis=0)]
        # Under tf.distribute each replica holds a slice of the global batch: sum the moments over
        # replicas so every replica computes the global batch's CCC. Keras sums the replicas'
        # losses (and gradients) and, for a loss that is already a batch statistic, does not divide
        # by the replica count: do it here. The gradient of a SUM all-reduce is all-reduced, so the
        # summed gradients equal one device's on the whole batch (checked in distribute_test).
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        if replicas > 1:
            sums = context.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        count, sum_t, sum_p, sum_tt, sum_pp, sum_tp = sums
        mean_t, mean_p = sum_t / count, sum_p / count
        var_t = sum_tt / count - mean_t * mean_t
        var_p = sum_pp / count - mean_p * mean_p
        cov = sum_tp / count - mean_t * mean_p
        ccc = 2.0 * cov / (var_t + var_p + tf.square(mean_t - mean_p) + _EPSILON)
        return -tf.reduce_mean(ccc) / replicas


@keras.saving.register_keras_serializable(package="vb_keras")
class BalancedCategoricalCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy with each clip weighted by its class's `class_weights` entry.

    With `balanced_class_weights` every class carries the same total weight over the training
    split, so the loss tracks the class task's score, UAR (the mean of per-class recalls), rather
    than accuracy: unweighted, a class layer on a skewed split drifts to the majority class (on
    EmoDB, Train 177 male / 101 female, Val UAR fell from 0.72 to 0.00 within 12 epochs).
    """

    def __init__(self, class_weights, name="balanced_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.class_weights = [float(weight) for weight in class_weights]

    def call(self, y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        weights = tf.reduce_sum(y_true * tf.constant(self.class_weights, tf.float32), axis=-1)
        return weights * keras.losses.categorical_crossentropy(y_true, tf.cast(y_pred, tf.float32))

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}


def balanced_class_weights(counts) -> list:
    """n / (K n_k) for each class k with n_k training clips (scikit-learn's "balanced"): the weights
    average 1 over the training clips; a class with no training clip gets 0."""
    counts = [float(count) for count in counts]
    present = [count for count in counts if count > 0]
    total = sum(present)
    return [total / (len(present) * count) if count > 0 else 0.0 for count in counts]
