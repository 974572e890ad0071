import numpy as np

from conftest import run_main
from vb_keras import evaluation, plots
from vb_keras.schema import LabelSchema


def test_writes_three_pngs(tmp_path):
    schema = LabelSchema(emotion_columns=("A", "B"), class_column="C").with_classes(["x", "y", "z"])
    rng = np.random.default_rng(0)
    y_true = {"emotion": rng.random((30, 2)), "country": rng.integers(0, 3, 30),
              "age": rng.uniform(20, 40, 30)}
    y_pred = {"emotion": rng.random((30, 2)), "country": rng.random((30, 3)),
              "age": rng.uniform(20, 40, 30)}
    result = evaluation.evaluate(y_true, y_pred, schema, "Val")
    paths = plots.write_evaluation_plots(result, y_true, y_pred, schema.classes, str(tmp_path), "test")
    assert [p.rsplit("/", 1)[1] for p in paths] == ["ccc_per_emotion_Val.png", "confusion_Val.png",
                                                    "age_Val.png"]
    for path in paths:
        with open(path, "rb") as stream:
            assert stream.read(8) == b"\x89PNG\r\n\x1a\n"


if __name__ == "__main__":
    run_main()
