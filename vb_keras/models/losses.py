"""Negative mean CCC, the emotion loss of section 2.1 ("a negative mean concordance correlation
coefficient (meanCCC) loss").

CCC is a statistic of a whole batch, so the loss is one value per batch; larger batches make it
steadier (the paper's remark on batch size 64).
"""

import keras
import numpy as np
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


# ---------------------------------------------------------------- task weighting that adapts


@keras.saving.register_keras_serializable(package="vb_keras")
class UncertaintyWeighting(keras.layers.Layer):
    """The learnt task weights of homoscedastic uncertainty weighting (Kendall, Gal & Cipolla,
    "Multi-task learning using uncertainty to weigh losses", CVPR 2018): one log-variance
    s_t = log sigma_t^2 per task, as weights of the model, so the optimiser learns them with the
    rest and backups, best weights and model.keras keep them.

    It is an identity on the output it is called on (`with_uncertainty_weighting` puts it on the
    model's first output): it only holds the weights that `UncertaintyWeightedLoss` reads.

    Args:
      tasks: the task names, in the model's output order.
      initial_log_variances: {task: s_t at the start}; 0 where missing.
    """

    def __init__(self, tasks, initial_log_variances=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.tasks = tuple(tasks)
        initial = initial_log_variances or {}
        self.initial_log_variances = {task: float(initial.get(task, 0.0)) for task in self.tasks}

    def build(self, input_shape):
        self.log_variances = self.add_weight(
            shape=(len(self.tasks),), name="log_variances",
            initializer=keras.initializers.Constant(
                [self.initial_log_variances[task] for task in self.tasks]))

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "tasks": list(self.tasks),
                "initial_log_variances": self.initial_log_variances}


@keras.saving.register_keras_serializable(package="vb_keras")
class UncertaintyWeightedLoss(keras.losses.Loss):
    """A task's loss L weighted by its learnt uncertainty s (Kendall et al., 2018, eq. 7 and 10):
    0.5 exp(-s) L + 0.5 s for a regression task (the emotions, the age), exp(-s) L + 0.5 s for
    the class. The emotion loss enters as 1 - mean CCC (>= 0; the negative mean CCC shifted by 1),
    since the weighting needs a loss that is not negative.

    Args:
      loss: the task's own loss.
      task: its name; `weighting`: the model's `UncertaintyWeighting` (None in a model read back
        from model.keras, which is not trained further: then the plain `loss`).
      classification: the class task's form of the weighting.
      offset: added to `loss` (1 for the negative mean CCC).
    """

    def __init__(self, loss, task, weighting=None, classification=False, offset=0.0,
                 name=None, **kwargs):
        super().__init__(name=name or f"uncertainty_weighted_{task}", **kwargs)
        if isinstance(loss, dict):
            loss = keras.losses.deserialize(loss)
        self.loss, self.task, self.weighting = loss, task, weighting
        self.classification, self.offset = bool(classification), float(offset)

    def call(self, y_true, y_pred):
        value = self.loss(y_true, y_pred) + self.offset
        if self.weighting is None:
            return value
        context = tf.distribute.get_replica_context()
        replicas = 1 if context is None else context.num_replicas_in_sync
        log_variance = self.weighting.log_variances[self.weighting.tasks.index(self.task)]
        precision = tf.exp(-log_variance) * (1.0 if self.classification else 0.5)
        # Keras sums the replicas' losses: the regulariser counts once over them.
        return precision * value + 0.5 * log_variance / replicas

    def get_config(self):
        return {**super().get_config(), "loss": keras.losses.serialize(self.loss),
                "task": self.task, "classification": self.classification, "offset": self.offset}


UNCERTAINTY_LAYER = "task_uncertainty"


def with_uncertainty_weighting(model: keras.Model, initial_losses: dict) -> keras.Model:
    """`model` (a functional model with a dict of task outputs) with an `UncertaintyWeighting`
    layer on its first output, each task's log-variance starting where the weighted loss of its
    `initial_losses` value (e.g. the naive prediction's) is lowest: s = log L for a regression
    task, log 2L for the class."""
    outputs = dict(model.output)
    tasks = tuple(outputs)
    initial = {task: float(np.log(max(initial_losses.get(task, 1.0), 1e-6)
                                  * (2.0 if task == "country" else 1.0)))
               for task in tasks}
    outputs[tasks[0]] = UncertaintyWeighting(tasks, initial, name=UNCERTAINTY_LAYER)(
        outputs[tasks[0]])
    return keras.Model(model.input, outputs, name=model.name)


def uncertainty_weighted(model: keras.Model, task_losses: dict) -> dict:
    """Each of `task_losses` weighted by the uncertainty that `model`'s `UncertaintyWeighting`
    learns (`with_uncertainty_weighting`)."""
    weighting = model.get_layer(UNCERTAINTY_LAYER)
    return {task: UncertaintyWeightedLoss(
                loss, task, weighting, classification=task == "country",
                offset=1.0 if isinstance(loss, NegativeMeanCCC) else 0.0)
            for task, loss in task_losses.items()}
