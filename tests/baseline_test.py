import numpy as np
import pandas as pd
import pytest

from conftest import run_main
from vb_keras.evaluation import baseline, scoring
from vb_keras.schema import LabelSchema

SCHEMA = LabelSchema(emotion_columns=("A", "B"), class_column="C").with_classes(["x", "y", "z"])


def train_table():
    return pd.DataFrame({"A": [0.1, 0.3, 0.5, 0.9], "B": [0.0, 0.2, 0.2, 0.2],
                         "C": ["y", "z", "y", "x"], "Age": [20.0, 22.0, 30.0, 50.0],
                         "labelled": [True] * 4})


def test_naive_fits_majority_median_and_means():
    naive = baseline.fit_naive(train_table(), SCHEMA)
    assert naive["country"] == 1 and naive["age"] == 26.0
    np.testing.assert_allclose(naive["emotion"], [0.45, 0.15])


def test_naive_scores_zero_ccc_chance_uar():
    naive = baseline.fit_naive(train_table(), SCHEMA)
    predictions = baseline.naive_predictions(naive, 3)
    y_true = {"emotion": np.array([[0.1, 0.2], [0.5, 0.1], [0.9, 0.4]]),
              "country": np.array([0, 1, 2]), "age": np.array([24.0, 26.0, 30.0])}
    result = scoring.evaluate(y_true, predictions, SCHEMA, "Val")
    assert result.mean_ccc == 0.0 and result.hmean == 0.0
    assert result.uar == pytest.approx(1 / 3) and result.mae == pytest.approx(2.0)


def test_missing_tasks_take_the_naive_prediction():
    naive = baseline.fit_naive(train_table(), SCHEMA)
    emotion = np.array([[0.2, 0.3], [0.4, 0.1]])
    filled, tasks = baseline.fill_missing_tasks({"emotion": emotion}, naive, 2)
    assert tasks == ("country", "age")
    np.testing.assert_array_equal(filled["emotion"], emotion)
    np.testing.assert_array_equal(filled["country"], [1, 1])
    np.testing.assert_array_equal(filled["age"], [26.0, 26.0])


def test_ties_go_to_the_first_class_in_schema_order():
    table = train_table().assign(C=["z", "x", "z", "x"])
    assert baseline.fit_naive(table, SCHEMA)["country"] == 0


def test_naive_fits_only_the_tasks_the_schema_has():
    no_age = LabelSchema(emotion_columns=("A", "B"), class_column="C",
                         age_column="").with_classes(["x", "y", "z"])
    naive = baseline.fit_naive(train_table().drop(columns="Age"), no_age)
    assert set(naive) == {"emotion", "country"}
    assert set(baseline.naive_predictions(naive, 2)) == {"emotion", "country"}
    filled, tasks = baseline.fill_missing_tasks({"emotion": np.zeros((2, 2))}, naive, 2)
    assert set(filled) == {"emotion", "country"} and tasks == ("country",)
    age_only = LabelSchema(emotion_columns=(), class_column="", age_column="Age")
    assert baseline.fit_naive(train_table()[["Age", "labelled"]], age_only) == {"age": 26.0}


if __name__ == "__main__":
    run_main()
