"""One trial of the permutation test: a fresh emotion-only head trained with the condition's class
and age, scored on Val with the true ones."""

import time

import keras
import numpy as np
import tensorflow as tf

from vb_keras.analysis.permutation.arrays import PermutationData, SplitArrays
from vb_keras.analysis.permutation.conditions import training_labels
from vb_keras.evaluation import metrics
from vb_keras.keys import EMBEDDINGS, EXTRA, NUM_WINDOWS
from vb_keras.models import heads
from vb_keras.params import TrainingParams
from vb_keras.schema import EMOTION
from vb_keras.training import compiling

# Section 2.2's Adam epsilon (TrainingParams' default).
ADAM_EPSILON = TrainingParams.epsilon


def _features(split: SplitArrays, extra: np.ndarray) -> dict:
    return {EMBEDDINGS: split.embeddings, NUM_WINDOWS: split.num_windows, EXTRA: extra}


def _predict_emotion(model, data: PermutationData, chunk: int = 1024) -> np.ndarray:
    """The model's Val emotions, by eager calls: a fresh model per trial would make
    `model.predict` trace (and warn about retracing) every time, for a single pass."""
    features = _features(data.val, data.extra(data.val.classes, data.val.ages))
    parts = [model({name: value[start:start + chunk] for name, value in features.items()},
                   training=False)[EMOTION].numpy()
             for start in range(0, len(data.val), chunk)]
    return np.concatenate(parts)


def train_and_score(data: PermutationData, condition: str, seed: int, head: str = "conformer",
                    epochs: int = 30, batch_size: int = 128,
                    learning_rate: float = 3e-4) -> dict:
    """One trial: a fresh emotion-only head trained on Train (class and age altered as `condition`
    says) for `epochs` epochs, scored on Val with the true class and age.

    The score is the Val mean CCC after the FINAL epoch. Picking the best epoch on Val would be
    optimistic, and since the same Val set scores all three conditions it could also blur their
    difference; a fixed number of epochs treats every trial alike.

    Returns:
      {"condition", "seed", "val_mean_ccc", "share_class_correct", "share_age_correct", "seconds"}.
    """
    started = time.monotonic()
    classes, ages, share_class, share_age = training_labels(data, condition, seed)
    keras.utils.clear_session()   # no graph or layer-name growth over 150 trials
    keras.utils.set_random_seed(seed)
    model = heads.build_head_model(head, data.embedding_dim, data.schema, tasks=(EMOTION,),
                                   initial_biases={EMOTION: data.train.emotion.mean(axis=0)},
                                   extra_dim=data.extra_dim)
    compiling.compile_for_tasks(model, (EMOTION,),
                                keras.optimizers.Adam(learning_rate, epsilon=ADAM_EPSILON))
    # CCC is a batch statistic: full batches only, as the trainer's (a Train split smaller than a
    # batch is one batch).
    batch = min(batch_size, len(data.train))
    train_batches = (tf.data.Dataset.from_tensor_slices(
        (_features(data.train, data.extra(classes, ages)), {EMOTION: data.train.emotion}))
        .shuffle(len(data.train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    model.fit(train_batches, epochs=epochs, shuffle=False, verbose=0)   # shuffled above
    score = metrics.mean_ccc(data.val.emotion, _predict_emotion(model, data))
    return {"condition": condition, "seed": seed, "val_mean_ccc": score,
            "share_class_correct": share_class, "share_age_correct": share_age,
            "seconds": round(time.monotonic() - started, 3)}
