import json

import numpy as np
import pytest

from conftest import run_main
from vb_keras import evaluation, metrics
from vb_keras.errors import UserInputError
from vb_keras.schema import LabelSchema


def test_evaluate_scores_all_three_tasks_and_writes_the_json_keys(tmp_path):
    schema = LabelSchema(emotion_columns=("A", "B"), class_column="C").with_classes(["x", "y"])
    rng = np.random.default_rng(0)
    y_true = {"emotion": rng.random((20, 2)), "country": rng.integers(0, 2, 20),
              "age": rng.uniform(20, 40, 20)}
    y_pred = {"emotion": y_true["emotion"] * 0.8 + 0.1, "country": np.eye(2)[y_true["country"]],
              "age": (y_true["age"] + 2.0)[:, None]}
    result = evaluation.evaluate(y_true, y_pred, schema, "Val")
    assert result.uar == 1.0 and result.mae == pytest.approx(2.0)
    assert result.mean_ccc == pytest.approx(metrics.mean_ccc(y_true["emotion"], y_pred["emotion"]))
    assert result.hmean == pytest.approx(metrics.challenge_score(result.mean_ccc, 1.0, 2.0))
    path = tmp_path / "sub" / "eval_Val.json"
    evaluation.write_json(result, str(path))
    saved = json.loads(path.read_text())
    assert set(saved) == {"mean_ccc", "uar", "mae", "hmean", "ccc_per_emotion", "n_clips", "split"}
    assert list(saved["ccc_per_emotion"]) == ["A", "B"] and saved["n_clips"] == 20
    row = evaluation.table_row("ResNet18", "YES", result)
    assert row.startswith("| ResNet18 | YES | ") and row.count("|") == evaluation.TABLE_HEADER.split(
        "\n")[0].count("|")


def test_labels_from_table_refuses_unlabelled_clips(tiny_demo):
    from vb_keras.data import exvo
    from vb_keras.schema import HUME_VB
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    labels = evaluation.labels_from_table(exvo.select_split(table, schema, "Val"), schema)
    assert labels["emotion"].shape[1] == 10 and labels["country"].dtype == np.int64
    with pytest.raises(UserInputError, match="Test labels are withheld"):
        evaluation.labels_from_table(exvo.select_split(table, schema, "Test"), schema)


if __name__ == "__main__":
    run_main()
