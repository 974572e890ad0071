"""The ACII 2022 A-VB layout (labels/*.csv + audio/wav/) on a tiny generated data set."""

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO_ROOT, run_main, tone, write_wav
from vb_keras.data import avb, exvo, pipeline, prepare, tfrecord
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB_EMOTIONS, LabelSchema

COUNTRIES = ("United States", "China", "South Africa", "Venezuela")
TYPES = ("Gasp", "Laugh", "Cry", "Scream")
SPLITS = ["Train"] * 6 + ["Val"] * 3 + ["Test"] * 3
CULTURE = tuple(f"{country}_{emotion}" for country in COUNTRIES for emotion in HUME_VB_EMOTIONS)


def write_avb(directory):
    """12 clips (Train 6, Val 3, Test 3) with 0.3 s tones; Test rows have empty labels."""
    rng = np.random.default_rng(0)
    ids = [f"[{10001 + i}]" for i in range(len(SPLITS))]
    test = [split == "Test" for split in SPLITS]

    def labels(columns, values):
        frame = pd.DataFrame({"File_ID": ids, "Split": SPLITS})
        for column, value in zip(columns, values):
            frame[column] = ["" if t else v for t, v in zip(test, value)]
        return frame

    def intensities(columns):
        return labels(columns, [np.round(rng.uniform(size=len(ids)), 3) for _ in columns])

    info = labels(["Country", "Age"], [[COUNTRIES[i % 4] for i in range(len(ids))],
                                       [20 + i for i in range(len(ids))]])
    info.insert(2, "Subject_ID", [f"s{i}" for i in range(len(ids))])   # known for Test too
    files = {"data_info": info, "high_info": intensities(HUME_VB_EMOTIONS),
             "two_info": intensities(avb.TWO_EMOTIONS), "culture_info": intensities(CULTURE),
             "type_info": labels(["Voc_Type"], [[TYPES[i % 4] for i in range(len(ids))]])}
    os.makedirs(os.path.join(directory, "labels"))
    for name, frame in files.items():
        frame.to_csv(label_csv(directory, name), index=False)
    for i, clip_id in enumerate(ids):
        write_wav(os.path.join(directory, "audio", "wav", clip_id.strip("[]") + ".wav"),
                  tone(0.3, frequency=200.0 + 50 * i))
    return directory


@pytest.fixture(scope="module")
def avb_dir(tmp_path_factory):
    return write_avb(str(tmp_path_factory.mktemp("avb") / "avb"))


@pytest.fixture
def avb_copy(avb_dir, tmp_path):
    """A private copy to corrupt."""
    return shutil.copytree(avb_dir, str(tmp_path / "avb"))


def label_csv(directory, name):
    return os.path.join(directory, "labels", f"{name}.csv")


def edit(directory, name, row, column, value):
    """Sets one cell of a label file (value None: drops the row)."""
    path = label_csv(directory, name)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if value is None:
        frame = frame.drop(index=row)
    else:
        frame.loc[row, column] = value
    frame.to_csv(path, index=False)


@pytest.mark.parametrize("task, emotions, class_column", [
    ("high", HUME_VB_EMOTIONS, "Country"),
    ("two", ("Valence", "Arousal"), "Country"),
    ("culture", CULTURE, "Country"),
    ("type", HUME_VB_EMOTIONS, "Voc_Type"),
])
def test_each_task_reads_through_the_common_checks(avb_dir, task, emotions, class_column):
    schema = avb.avb_schema(task, avb_dir)
    assert (schema.emotion_columns, schema.class_column, schema.age_column, schema.layout) == (
        emotions, class_column, "Age", "avb")
    table, schema = exvo.read_and_split(avb_dir, schema)
    assert table["File_ID"].tolist() == [str(10001 + i) for i in range(12)]
    assert table["labelled"].tolist() == [split != "Test" for split in SPLITS]
    assert all(path == os.path.join(avb_dir, "audio", "wav", f"{clip_id}.wav")
               for path, clip_id in zip(table["path"], table["File_ID"]))
    assert all(os.path.isfile(path) for path in table["path"])
    assert table[list(emotions)].to_numpy().dtype == np.float32
    # Classes are fitted as strings (alphabetically) from the labelled rows.
    expected = sorted(COUNTRIES) if class_column == "Country" else sorted(TYPES)
    assert schema.classes == tuple(expected)
    # Values come from the task's file, row by row.
    original = pd.read_csv(label_csv(avb_dir, f"{task}_info"), dtype=str, keep_default_na=False)
    if task == "type":
        assert table["Voc_Type"].tolist()[:9] == original["Voc_Type"].tolist()[:9]
    else:
        np.testing.assert_allclose(table[emotions[-1]][:9], original[emotions[-1]][:9].astype(float),
                                   rtol=1e-6)


def test_culture_columns_are_selected_by_name_in_the_files_order(avb_copy):
    rng = np.random.default_rng(3)
    path = label_csv(avb_copy, "culture_info")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    shuffled = frame[list(rng.permutation(frame.columns))]
    shuffled.to_csv(path, index=False)
    schema = avb.avb_schema("culture", avb_copy)
    assert set(schema.emotion_columns) == set(CULTURE)
    assert schema.emotion_columns == tuple(c for c in shuffled.columns if c in CULTURE)
    table = exvo.read_clip_table(avb_copy, schema)
    np.testing.assert_allclose(table["China_Fear"][:9], frame["China_Fear"][:9].astype(float),
                               rtol=1e-6)


def test_label_table_merges_present_files(avb_copy):
    os.remove(label_csv(avb_copy, "culture_info"))
    table = avb.read_label_table(avb_copy)
    assert table.columns[:5].tolist() == ["File_ID", "Split", "Subject_ID", "Country", "Age"]
    assert {"Awe", "Valence", "Voc_Type"} <= set(table.columns) and "China_Awe" not in table
    assert table["Country"].tolist()[:4] == list(COUNTRIES)
    two_info = table.attrs[avb.SOURCES]["Valence"]
    assert two_info.endswith(os.path.join("labels", "two_info.csv"))
    assert table.attrs[avb.LINES][two_info] == tuple(range(2, 14))


def bad_split(directory):
    edit(directory, "two_info", 4, "Split", "Val")


def unknown_id(directory):
    edit(directory, "type_info", 7, "File_ID", "[99999]")


def out_of_range(directory):
    edit(directory, "high_info", 2, "Fear", "1.5")


def missing_country(directory):
    edit(directory, "data_info", 1, "Country", "")


def missing_type(directory):
    edit(directory, "type_info", 0, "Voc_Type", "")


def missing_row(directory):
    edit(directory, "type_info", 2, None, None)


def repeated_id(directory):
    edit(directory, "data_info", 3, "File_ID", "[10002]")


def escaping_id(directory):
    """Clip 10002 renamed, in every label file, to a path that climbs out of audio/wav/."""
    for path in glob.glob(os.path.join(directory, "labels", "*.csv")):
        with open(path) as stream:
            text = stream.read()
        with open(path, "w") as stream:
            stream.write(text.replace("[10002]", "[../../../secret]"))


@pytest.mark.parametrize("task, corrupt, message", [
    ("high", escaping_id,
     r"labels/data_info.csv: line 3 \(File_ID \[\.\./\.\./\.\./secret\]\): climbs out of "
     r".*audio/wav \('\.\.'\)"),
    ("high", lambda d: os.remove(label_csv(d, "data_info")),
     r"labels/data_info.csv: not found \(an A-VB data directory holds labels/data_info.csv\)"),
    ("two", lambda d: os.remove(label_csv(d, "two_info")),
     r"labels/two_info.csv: not found .*'Valence'.*--avb_task=two"),
    ("high", bad_split,
     r"labels/two_info.csv: line 6 \(File_ID \[10005\]\): Split 'Val' disagrees with "
     r".*labels/data_info.csv \('Train'\)"),
    ("high", unknown_id, r"labels/type_info.csv: line 9: File_ID \[99999\] is not in "),
    ("high", out_of_range,
     r"labels/high_info.csv: line 4 \(File_ID \[10003\]\): Fear = 1.5 lies outside \[0, 1\]"),
    ("high", missing_country,
     r"labels/data_info.csv: line 3 \(File_ID \[10002\]\): Country is empty"),
    ("type", missing_type,
     r"labels/type_info.csv: line 2 \(File_ID \[10001\]\): Voc_Type is empty"),
    ("two", repeated_id, r"labels/data_info.csv: File_ID \[10002\] appears 2 times \(lines 3, 5\)"),
    ("type", missing_row,
     r"labels/data_info.csv: line 4 \(File_ID \[10003\]\): Voc_Type is empty "
     r"\(it has no row in .*labels/type_info.csv\)"),
])
def test_bad_input_gives_one_line_naming_the_file(avb_copy, task, corrupt, message):
    schema = avb.avb_schema(task, avb_copy)
    corrupt(avb_copy)
    with pytest.raises(UserInputError, match=message) as caught:
        exvo.read_clip_table(avb_copy, schema)
    assert "\n" not in str(caught.value)


def test_a_column_no_file_holds_is_named(avb_dir):
    schema = dataclasses.replace(avb.avb_schema("two", avb_dir), class_column="Gender")
    with pytest.raises(UserInputError, match=r"labels/data_info.csv: missing column 'Gender', and "
                                             r"no labels/<task>_info.csv has it either"):
        exvo.read_clip_table(avb_dir, schema)
    with pytest.raises(UserInputError, match=r"has it either \(if the data has no class labels, "
                                             r"pass --class_column=\)$"):
        exvo.read_clip_table(avb_dir, schema)
    # Without class labels the A-VB data reads with an empty class column.
    schema = dataclasses.replace(schema, class_column="")
    table = exvo.read_clip_table(avb_dir, schema)
    assert "Gender" not in table.columns and exvo.fit_classes(table, schema).classes is None


def test_culture_needs_its_file_and_unknown_tasks_name_the_flag(avb_copy):
    os.remove(label_csv(avb_copy, "culture_info"))
    with pytest.raises(UserInputError, match=r"culture_info.csv: not found"):
        avb.avb_schema("culture", avb_copy)
    with pytest.raises(UserInputError, match="--data_dir is needed"):
        avb.avb_schema("culture")
    with pytest.raises(UserInputError, match="--avb_task: 'valence' is not one of"):
        avb.avb_schema("valence")


def test_test_rows_with_withheld_task_labels_are_unlabelled(avb_copy):
    # data_info.csv may give Country and Age of Test clips whose task labels are withheld.
    for row in (9, 10, 11):
        edit(avb_copy, "data_info", row, "Country", "China")
        edit(avb_copy, "data_info", row, "Age", "30")
    table = exvo.read_clip_table(avb_copy, avb.avb_schema("high", avb_copy))
    assert table["labelled"].tolist() == [split != "Test" for split in SPLITS]
    assert table["Country"].tolist()[9:] == [""] * 3 and table["Age"][9:].isna().all()


def test_a_hume_vb_read_of_an_avb_directory_says_so(avb_dir):
    with pytest.raises(UserInputError, match=r"data_info.csv: not found .*--dataset=avb"):
        exvo.read_clip_table(avb_dir, LabelSchema())


def test_schema_with_layout_round_trips_and_old_json_loads(avb_dir):
    schema = avb.avb_schema("culture", avb_dir).with_classes(sorted(COUNTRIES))
    assert LabelSchema.from_json(schema.to_json()) == schema
    old = json.loads(LabelSchema().to_json())
    del old["layout"]
    assert LabelSchema.from_json(json.dumps(old)).layout == "hume_vb"


def test_pipeline_reads_the_clips_and_a_prepared_copy(avb_dir, tmp_path):
    table, schema = exvo.read_and_split(avb_dir, avb.avb_schema("culture", avb_dir))
    clips = list(pipeline.read_clips(avb_dir, schema, "Train").take(2))
    assert len(clips) == 2 and clips[0]["emotion"].shape == (40,)
    assert clips[0]["class_value"].numpy().decode() in COUNTRIES
    assert clips[0]["audio"].shape == (4800,)
    # A prepared copy keeps the schema (and its layout) and reads like the source.
    out = str(tmp_path / "prepared")
    prepare.prepare(table, schema, out, source=avb_dir, progress=False)
    assert tfrecord.read_info(out)["schema"] == schema
    assert avb.avb_schema("culture", out).emotion_columns == schema.emotion_columns
    relabelled, _ = exvo.read_and_split(out, schema)
    assert relabelled.drop(columns="path").equals(table.drop(columns="path"))
    assert len(list(pipeline.read_clips(out, schema, "Val"))) == 3


@pytest.fixture(scope="module")
def baseline_runs(avb_dir):
    """bin/baseline on an A-VB task and without --data_dir, run side by side (each mostly imports
    TensorFlow): {name: (return code, stdout, stderr)}."""
    runs = {
        "type": ["--dataset=avb", "--avb_task=type", f"--data_dir={avb_dir}", "--split=Val"],
        "no_data_dir": ["--dataset=avb"],
    }
    processes = {name: subprocess.Popen(
        [sys.executable, os.path.join(REPO_ROOT, "bin", "baseline.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
        for name, args in runs.items()}
    outputs = {name: process.communicate(timeout=300) for name, process in processes.items()}
    return {name: (processes[name].returncode, *output) for name, output in outputs.items()}


def test_baseline_runs_on_an_avb_task(baseline_runs):
    returncode, stdout, stderr = baseline_runs["type"]
    assert returncode == 0, stderr[-3000:]
    assert "naive baseline on Val (3 clips): majority class" in stdout
    assert "| NAIVE | — | " in stdout


def test_avb_without_data_dir_is_a_one_line_error(baseline_runs):
    returncode, _, stderr = baseline_runs["no_data_dir"]
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert returncode == 1 and "Traceback" not in stderr, stderr
    assert len(errors) == 1 and "--dataset=avb: --data_dir is needed" in errors[0]


if __name__ == "__main__":
    run_main()
