import json

import numpy as np
import pytest

from conftest import run_main
from vb_keras.evaluation import metrics, scoring
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema


def test_evaluate_scores_all_three_tasks_and_writes_the_json_keys(tmp_path):
    schema = LabelSchema(emotion_columns=("A", "B"), class_column="C").with_classes(["x", "y"])
    rng = np.random.default_rng(0)
    y_true = {"emotion": rng.random((20, 2)), "country": rng.integers(0, 2, 20),
              "age": rng.uniform(20, 40, 20)}
    y_pred = {"emotion": y_true["emotion"] * 0.8 + 0.1, "country": np.eye(2)[y_true["country"]],
              "age": (y_true["age"] + 2.0)[:, None]}
    result = scoring.evaluate(y_true, y_pred, schema, "Val")
    assert result.uar == 1.0 and result.mae == pytest.approx(2.0)
    assert result.mean_ccc == pytest.approx(metrics.mean_ccc(y_true["emotion"], y_pred["emotion"]))
    assert result.hmean == pytest.approx(metrics.challenge_score(result.mean_ccc, 1.0, 2.0))
    path = tmp_path / "sub" / "eval_Val.json"
    scoring.write_json(result, str(path))
    saved = json.loads(path.read_text())
    assert set(saved) == {"mean_ccc", "uar", "mae", "hmean", "ccc_per_emotion", "n_clips", "split"}
    assert list(saved["ccc_per_emotion"]) == ["A", "B"] and saved["n_clips"] == 20
    row = scoring.table_row("ResNet18", "YES", result)
    assert row.startswith("| ResNet18 | YES | ") and row.count("|") == scoring.table_header(
        schema).split("\n")[0].count("|")


def test_the_table_header_names_the_schema_columns():
    from vb_keras.schema import HUME_VB
    assert scoring.table_header(HUME_VB) == (
        "| Model | MTL? | Emotions (CCC) ↑ | Country (UAR) ↑ | Age (MAE) ↓ | Harmonic mean ↑ |\n"
        "|---|---|---|---|---|---|")
    emodb = LabelSchema(emotion_columns=("Anger",), class_column="Sex", age_column="Age")
    assert scoring.table_header(emodb).splitlines()[0] == (
        "| Model | MTL? | Emotions (CCC) ↑ | Sex (UAR) ↑ | Age (MAE) ↓ | Harmonic mean ↑ |")
    # A column the data lacks keeps HUME-VB's name over its '—' cells.
    emogator = LabelSchema(emotion_columns=("Joy",), class_column="Category", age_column="")
    assert scoring.table_titles(emogator)[1:3] == ["Category (UAR) ↑", "Age (MAE) ↓"]


def test_labels_from_table_refuses_unlabelled_clips(tiny_demo):
    from vb_keras.data import exvo
    from vb_keras.schema import HUME_VB
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    labels = scoring.labels_from_table(exvo.select_split(table, schema, "Val"), schema)
    assert labels["emotion"].shape[1] == 10 and labels["country"].dtype == np.int64
    with pytest.raises(UserInputError, match="Test labels are withheld"):
        scoring.labels_from_table(exvo.select_split(table, schema, "Test"), schema)


def test_a_task_the_data_lacks_is_null_in_the_json_and_a_dash_in_the_row(tmp_path):
    schema = LabelSchema(emotion_columns=("A", "B"), class_column="C",
                         age_column="").with_classes(["x", "y"])
    rng = np.random.default_rng(0)
    y_true = {"emotion": rng.random((20, 2)), "country": rng.integers(0, 2, 20)}
    y_pred = {"emotion": y_true["emotion"] * 0.8 + 0.1, "country": np.eye(2)[y_true["country"]]}
    result = scoring.evaluate(y_true, y_pred, schema, "Val")
    assert result.mae is None and result.uar == 1.0 and result.n_clips == 20
    # The harmonic mean of the two figures present.
    assert result.hmean == pytest.approx(2 / (1 / result.mean_ccc + 1 / 1.0))
    path = tmp_path / "eval_Val.json"
    scoring.write_json(result, str(path))
    assert json.loads(path.read_text())["mae"] is None
    row = scoring.table_row("ResNet18", "YES", result)
    assert row.endswith(f"| 1.000 | — | {result.hmean:.3f} |")
    # Age alone: only MAE, and the harmonic mean is 1/MAE.
    age_only = LabelSchema(emotion_columns=(), class_column="", age_column="Age")
    result = scoring.evaluate({"age": np.array([20.0, 30.0])}, {"age": np.array([22.0, 34.0])},
                                 age_only, "Val")
    assert (result.mean_ccc, result.uar, result.mae) == (None, None, 3.0)
    assert result.hmean == pytest.approx(1 / 3) and result.ccc_per_emotion == {}
    assert scoring.table_row("m", "NO", result) == "| m | NO | — | — | 3.000 | 0.333 |"


def test_labels_from_table_gives_only_the_tasks_the_schema_has(tiny_demo):
    from vb_keras.data import exvo
    no_age = LabelSchema(age_column="")
    table, schema = exvo.read_and_split(tiny_demo, no_age)
    labels = scoring.labels_from_table(exvo.select_split(table, schema, "Val"), schema)
    assert set(labels) == {"emotion", "country"}


if __name__ == "__main__":
    run_main()
