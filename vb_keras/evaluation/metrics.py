"""The ExVo MultiTask challenge metrics (Baird et al., 2022; Belanich et al., 2022, section 3).

NumPy reference functions, and Keras metrics that stream over a whole evaluation set exactly: they
accumulate sums of moments (CCC) or a confusion matrix (UAR) in float64 across batches, so the result
equals the reference function on the concatenated set, never an average of per-batch values.
"""

import keras
import numpy as np
import tensorflow as tf


# ---------------------------------------------------------------- NumPy reference functions


def concordance_cc(y_true, y_pred):
    """Lin's concordance correlation coefficient, 2 cov / (var_t + var_p + (mean_t - mean_p)^2).

    Population (biased) moments, as the ExVo baseline computes them. 1-D inputs give a float; 2-D
    inputs [clips, outputs] give one CCC per column. A column where both sides are constant and
    equal gives 1; where the denominator is otherwise 0 it gives 0.
    """
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: y_true {y_true.shape}, y_pred {y_pred.shape}")
    mean_t, mean_p = y_true.mean(axis=0), y_pred.mean(axis=0)
    # A constant side has exactly zero spread; its float mean may not equal it to the last bit (the
    # variance of np.full(3, 0.1) is 1.9e-34), so spread and covariance are set to zero exactly.
    constant_t, constant_p = np.ptp(y_true, axis=0) == 0, np.ptp(y_pred, axis=0) == 0
    var_t = np.where(constant_t, 0.0, y_true.var(axis=0))
    var_p = np.where(constant_p, 0.0, y_pred.var(axis=0))
    cov = ((y_true - mean_t) * (y_pred - mean_p)).mean(axis=0)
    cov = np.where(constant_t | constant_p, 0.0, cov)
    denominator = var_t + var_p + (mean_t - mean_p) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        ccc = np.where(denominator > 0, 2 * cov / np.where(denominator > 0, denominator, 1), 1.0)
    return float(ccc) if ccc.ndim == 0 else ccc


def mean_ccc(y_true, y_pred):
    """Mean over emotion columns of `concordance_cc`: the challenge's emotion score."""
    return float(np.mean(concordance_cc(np.atleast_2d(y_true), np.atleast_2d(y_pred))))


def unweighted_average_recall(y_true, y_pred):
    """Mean per-class recall over the classes present in `y_true` (balanced accuracy).

    Each argument is either integer class labels [clips] or scores / one-hot rows [clips, classes]
    (then the argmax is taken).
    """
    y_true, y_pred = class_indices(y_true), class_indices(y_pred)
    classes = np.unique(y_true)
    recalls = [np.mean(y_pred[y_true == c] == c) for c in classes]
    return float(np.mean(recalls))


def mean_absolute_error(y_true, y_pred):
    return float(np.mean(np.abs(np.asarray(y_true, np.float64).ravel()
                                - np.asarray(y_pred, np.float64).ravel())))


def challenge_score(mean_ccc_value, uar, mae):
    """3 / (1/mean CCC + 1/UAR + MAE): the harmonic mean of mean CCC, UAR and 1/MAE.

    As the ExVo MultiTask baseline computes it ("Harmonic mean" in Table 1); 0 where mean CCC or UAR
    is not positive, since the harmonic mean is undefined there.

    A figure passed as None (a task the data has no labels for) is left out: the harmonic mean is
    taken over the k figures present, k / (sum of their reciprocals), e.g. 2 / (1/mean CCC + 1/UAR)
    without age labels, and 1/MAE for age alone. With all three it is the challenge's formula.
    """
    if all(value is None for value in (mean_ccc_value, uar, mae)):
        raise ValueError("the harmonic mean needs at least one of mean CCC, UAR and MAE")
    if any(value is not None and value <= 0 for value in (mean_ccc_value, uar)):
        return 0.0
    reciprocals = [1.0 / value for value in (mean_ccc_value, uar) if value is not None]
    if mae is not None:
        reciprocals.append(mae)
    total = sum(reciprocals)
    if total <= 0:   # (a perfect age prediction alone: 1/MAE is infinite)
        return float("inf")
    return float(len(reciprocals) / total)


def class_indices(values) -> np.ndarray:
    """Class indices from indices [N] or from score / one-hot rows [N, C] (their argmax)."""
    values = np.asarray(values)
    return values.argmax(axis=-1) if values.ndim == 2 else values.astype(np.int64)


def challenge_figures(emotion_true, emotion_pred, class_true, class_pred, age_true,
                      age_pred) -> dict:
    """Per-emotion CCCs and the challenge's four figures (mean CCC, UAR, MAE and their harmonic
    mean) of one set of predictions of the three tasks; classes as indices or score rows.

    A task whose truth is None (the data has no labels for it) gets None for its figure (and no
    per-emotion CCCs), and the harmonic mean is taken over the others (see `challenge_score`)."""
    per_emotion, mean_ccc, uar, mae = np.zeros([0]), None, None, None
    if emotion_true is not None:
        per_emotion = np.atleast_1d(concordance_cc(emotion_true, emotion_pred))
        mean_ccc = float(np.mean(per_emotion))
    if class_true is not None:
        uar = unweighted_average_recall(class_true, class_pred)
    if age_true is not None:
        mae = mean_absolute_error(age_true, age_pred)
    return {"ccc_per_emotion": per_emotion, "mean_ccc": mean_ccc, "uar": uar, "mae": mae,
            "hmean": challenge_score(mean_ccc, uar, mae)}


# ---------------------------------------------------------------- streaming Keras metrics


@keras.saving.register_keras_serializable(package="vb_keras")
class ConcordanceCorrelation(keras.metrics.Metric):
    """Exact CCC over everything seen since the last reset (see `concordance_cc`).

    Args:
      num_outputs: columns of y (the number of emotions).
      column: report this column's CCC; None reports the mean over columns (the challenge's
        "mean CCC"). `per_column()` always gives every column.

    Sample weights (e.g. 0 for unlabelled clips) weight each clip's moments.
    """

    def __init__(self, num_outputs, column=None, name="mean_ccc", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.num_outputs = int(num_outputs)
        self.column = column
        self._moments = {
            key: self.add_variable(shape=() if key == "count" else (self.num_outputs,),
                                   initializer="zeros", dtype="float64", name=key)
            for key in ("count", "sum_t", "sum_p", "sum_tt", "sum_pp", "sum_tp")}

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.reshape(tf.cast(y_true, tf.float64), [-1, self.num_outputs])
        y_pred = tf.reshape(tf.cast(y_pred, tf.float64), [-1, self.num_outputs])
        weight = (tf.ones_like(y_true[:, :1]) if sample_weight is None
                  else tf.reshape(tf.cast(sample_weight, tf.float64), [-1, 1]))
        updates = {"count": tf.reduce_sum(weight), "sum_t": y_true, "sum_p": y_pred,
                   "sum_tt": y_true * y_true, "sum_pp": y_pred * y_pred, "sum_tp": y_true * y_pred}
        for key, value in updates.items():
            if key != "count":
                value = tf.reduce_sum(weight * value, axis=0)
            self._moments[key].assign_add(value)

    def per_column(self):
        m = {key: tf.convert_to_tensor(var) for key, var in self._moments.items()}
        n = tf.maximum(m["count"], 1e-12)
        mean_t, mean_p = m["sum_t"] / n, m["sum_p"] / n
        var_t = m["sum_tt"] / n - mean_t ** 2
        var_p = m["sum_pp"] / n - mean_p ** 2
        cov = m["sum_tp"] / n - mean_t * mean_p
        denominator = var_t + var_p + (mean_t - mean_p) ** 2
        # Cancellation in E[x^2] - E[x]^2 can leave a tiny residue for constant columns.
        constant = denominator <= 1e-12 * (1.0 + m["sum_tt"] / n + m["sum_pp"] / n)
        # ones_like, not 1.0: inside a tf.function (compile/fit) a Python 1.0 becomes float32.
        safe = tf.where(constant, tf.ones_like(denominator), denominator)
        return tf.where(constant, tf.ones_like(cov), 2.0 * cov / safe)

    def result(self):
        ccc = self.per_column()
        value = tf.reduce_mean(ccc) if self.column is None else ccc[self.column]
        return tf.cast(value, self.dtype)

    def reset_state(self):
        for var in self._moments.values():
            var.assign(tf.zeros_like(var))

    def get_config(self):
        return {**super().get_config(), "num_outputs": self.num_outputs, "column": self.column}


@keras.saving.register_keras_serializable(package="vb_keras")
class UnweightedAverageRecall(keras.metrics.Metric):
    """Exact UAR over everything seen since the last reset, from a streaming confusion matrix.

    y_true: integer labels [batch] (or [batch, 1]) or one-hot rows [batch, classes].
    y_pred: class scores [batch, classes]. Classes absent from y_true do not count, as in
    `unweighted_average_recall`.
    """

    def __init__(self, num_classes, name="uar", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.num_classes = int(num_classes)
        self.confusion = self.add_variable(shape=(self.num_classes, self.num_classes),
                                           initializer="zeros", dtype="float64", name="confusion")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = tf.argmax(tf.reshape(y_pred, [-1, self.num_classes]), axis=-1)
        y_true = tf.convert_to_tensor(y_true)
        if y_true.shape.rank == 2 and y_true.shape[-1] == self.num_classes and self.num_classes > 1:
            y_true = tf.argmax(y_true, axis=-1)
        y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        weights = None if sample_weight is None else tf.reshape(sample_weight, [-1])
        self.confusion.assign_add(tf.math.confusion_matrix(
            y_true, y_pred, num_classes=self.num_classes, weights=weights, dtype=tf.float64))

    def result(self):
        confusion = tf.convert_to_tensor(self.confusion)
        support = tf.reduce_sum(confusion, axis=1)
        recall = tf.linalg.diag_part(confusion) / tf.maximum(support, 1e-12)
        present = tf.cast(support > 0, tf.float64)
        uar = tf.reduce_sum(recall * present) / tf.maximum(tf.reduce_sum(present), 1.0)
        return tf.cast(uar, self.dtype)

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="vb_keras")
class MeanAbsoluteError(keras.metrics.Metric):
    """Exact MAE over everything seen since the last reset, accumulated in float64."""

    def __init__(self, name="mae", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        error = tf.abs(tf.reshape(tf.cast(y_true, tf.float64), [-1])
                       - tf.reshape(tf.cast(y_pred, tf.float64), [-1]))
        weight = (tf.ones_like(error) if sample_weight is None
                  else tf.reshape(tf.cast(sample_weight, tf.float64), [-1]))
        self.total.assign_add(tf.reduce_sum(weight * error))
        self.count.assign_add(tf.reduce_sum(weight))

    def result(self):
        return tf.cast(self.total / tf.maximum(self.count, 1e-12), self.dtype)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)
