"""Predictions of an exported model in the ExVo submission layout."""

import os

import numpy as np
import pandas as pd
import pytest

from conftest import run_main, tone
from vb_keras.serving import export, prediction
from vb_keras.models import multitask
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB, LabelSchema

SCHEMA = HUME_VB.with_classes(["China", "South Africa", "United States", "Venezuela"])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("saved_models") / "r18")
    member = export.Member(multitask.build_model("resnet18", SCHEMA),
                           TrainingParams(model="resnet18"))
    # (Unverified: export_test.py checks the verification of this very export; here it would
    # only cost a fresh process.)
    export.export(export.Servable([member], SCHEMA, {"emotion": np.full(10, 0.2), "country": 2,
                                                     "age": 26.0}), root, verify=False)
    return prediction.ExportedModel(root)


def test_the_export_root_resolves_to_its_latest_version(model):
    assert model.path.endswith(os.sep + "1")
    assert model.emotions == HUME_VB.emotion_columns and model.classes == SCHEMA.classes
    assert model.schema.class_column == "Country"


def test_predictions_do_not_depend_on_batching_order(model, capsys):
    clips = [(f"c{i}", tone(seconds, frequency=200 + 50 * i))
             for i, seconds in enumerate((0.6, 2.0, 1.1, 3.0))]
    one_batch = prediction.predict_clips(model, clips, batch_size=4)
    assert capsys.readouterr().err == ""
    singles = prediction.predict_clips(model, clips, batch_size=1, progress=True)
    # The progress bar, over the clips, goes to stderr: stdout is a program's results.
    shown = capsys.readouterr()
    assert "4/4" in shown.err and "clip" in shown.err and shown.out == ""
    assert sorted(one_batch) == ["c0", "c1", "c2", "c3"]
    for file_id in one_batch:
        for task in ("emotion", "country", "age"):
            np.testing.assert_allclose(one_batch[file_id][task], singles[file_id][task],
                                       atol=2e-3)


def test_submission_layout_and_json(model, tmp_path):
    results = prediction.predict_clips(model, [("10001", tone(1.0)), ("10002", tone(2.0))])
    table = prediction.submission_table(model, results, "Country", "[{}]")
    assert list(table.columns) == ["File_ID", "Country", "Age", *HUME_VB.emotion_columns]
    assert list(table.File_ID) == ["[10001]", "[10002]"]
    assert set(table.Country) <= set(SCHEMA.classes)
    csv_path, json_path = str(tmp_path / "out" / "p.csv"), str(tmp_path / "out" / "p.json")
    prediction.write_outputs(table, results, model, csv_path, json_path)
    assert pd.read_csv(csv_path).shape == (2, 13)
    assert not [f for f in os.listdir(tmp_path / "out") if f.endswith(".partial")]
    import json
    saved = json.load(open(json_path))["predictions"]["10001"]
    assert sum(saved["country"].values()) == pytest.approx(1.0, abs=1e-5)



def test_the_terminal_table_names_the_likely_classes_and_the_strongest_emotions(model):
    results = prediction.predict_clips(model, [("sub/laugh", tone(1.0)), ("sigh", tone(0.7))])
    text = prediction.summary_text(model, results, "Country", top=2)
    header, *rows = text.splitlines()
    assert header.split("  ")[0] == "File_ID" and "Country (probability)" in header
    assert "strongest emotions (intensity)" in header and "Age" in header
    assert [row.split()[0] for row in rows] == ["sigh", "sub/laugh"]
    outputs = results["sigh"]
    first, second = np.argsort(-outputs["country"])[:2]
    assert (f"{SCHEMA.classes[first]} {outputs['country'][first]:.2f}, "
            f"{SCHEMA.classes[second]} {outputs['country'][second]:.2f}") in rows[0]
    strongest = np.argsort(-outputs["emotion"])[:2]
    assert ", ".join(f"{HUME_VB.emotion_columns[i]} {outputs['emotion'][i]:.2f}"
                     for i in strongest) in rows[0]
    # The servable names the most probable class itself.
    assert outputs["country_name"].decode() == SCHEMA.classes[first]


def test_a_model_of_data_without_age_labels_exports_and_predicts_only_its_outputs(tmp_path):
    schema = LabelSchema(emotion_columns=("Joy", "Romantic Love"), class_column="Category",
                         age_column="").with_classes(["a", "b", "c"])
    member = export.Member(multitask.build_model("resnet18", schema, schema.tasks),
                           TrainingParams(model="resnet18", tasks=schema.tasks))
    root = str(tmp_path / "no_age")
    path = export.export(export.Servable([member], schema, {"emotion": np.full(2, 0.2),
                                                             "country": 1}), root)
    model = prediction.ExportedModel(root)
    assert model.path == path and model.schema.tasks == ("emotion", "country")
    results = prediction.predict_clips(model, [("1", tone(1.0)), ("2", tone(0.7))])
    assert set(results["1"]) == {"emotion", "country", "country_name"}
    table = prediction.submission_table(model, results, "Category")
    assert list(table.columns) == ["File_ID", "Category", "Joy", "Romantic Love"]
    header = prediction.summary_text(model, results, "Category").splitlines()[0]
    assert "Category (probability)" in header and "Age" not in header
    csv_path, json_path = str(tmp_path / "p.csv"), str(tmp_path / "p.json")
    prediction.write_outputs(table, results, model, csv_path, json_path)
    import json
    assert set(json.load(open(json_path))["predictions"]["2"]) == {"emotion", "country"}


if __name__ == "__main__":
    run_main()
