"""A linear task the model answers worse than the naive prediction on Val answers with it."""

import keras
import numpy as np

from conftest import run_main
from vb_keras.evaluation import naive_fallback
from vb_keras.schema import LabelSchema

SCHEMA = LabelSchema(emotion_columns=("a", "b"), class_column="c", age_column="age",
                     classes=("x", "y"))


def _val(seed=0, clips=40):
    rng = np.random.default_rng(seed)
    return {"emotion": rng.random((clips, 2)), "country": rng.integers(0, 2, clips),
            "age": rng.uniform(20, 40, clips)}


def test_only_the_tasks_worse_than_naive_are_replaced():
    y_true = _val()
    naive = {"emotion": y_true["emotion"].mean(0), "country": 0,
             "age": float(np.median(y_true["age"]))}
    good_emotion = y_true["emotion"] + np.random.default_rng(1).normal(0, 0.05, (40, 2))
    bad_age = np.random.default_rng(2).uniform(0, 80, 40)    # far worse than the median
    replaced = naive_fallback.tasks_to_replace(
        y_true, {"emotion": good_emotion, "country": y_true["country"], "age": bad_age},
        naive, SCHEMA)
    assert set(replaced) == {"age"}
    assert replaced["age"]["val_model"] > replaced["age"]["val_naive"]   # MAE: lower is better
    # An age model better than the median stays.
    assert naive_fallback.tasks_to_replace(
        y_true, {"emotion": good_emotion, "age": y_true["age"] + 0.5}, naive, SCHEMA) == {}


def test_folding_a_constant_makes_the_layer_answer_it_for_every_clip():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(1, name="age")
    model = keras.Model(inputs, dense(inputs))
    naive_fallback.fold_constant(dense, [31.0])
    x = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), np.full((5, 1), 31.0))


if __name__ == "__main__":
    run_main()
