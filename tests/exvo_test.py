import os

import numpy as np
import pytest

from conftest import (EMODB, EMODB_EMOTIONS, REPO_ROOT, requires_emodb, run_main,
                      write_data_info)
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB, LabelSchema


def rows(overrides=None):
    base = [dict(File_ID="[1]", Split="Train", Subject_ID="s1", Country=2, Country_string="US",
                 Age=24.0),
            dict(File_ID="[2]", Split="Train", Subject_ID="s2", Country=0, Country_string="China",
                 Age=31.0),
            dict(File_ID="[3]", Split="Val", Subject_ID="s3", Country=2, Country_string="US",
                 Age=27.5),
            dict(File_ID="[4]", Split="Test", Subject_ID="s4", Country="", Country_string="",
                 Age="", **{e: "" for e in HUME_VB.emotion_columns})]
    for (index, column), value in (overrides or {}).items():
        base[index][column] = value
    return base


def read(tmp_path, overrides=None):
    write_data_info(str(tmp_path), rows(overrides))
    return exvo.read_clip_table(str(tmp_path), HUME_VB)


def test_reads_columns_by_name_and_marks_unlabelled_test_rows(tmp_path):
    table = read(tmp_path)
    assert table["File_ID"].tolist() == ["1", "2", "3", "4"]
    assert table["labelled"].tolist() == [True, True, True, False]
    assert table["path"][0] == os.path.join(str(tmp_path), "wav", "1.wav")
    assert table["Country"].tolist()[:3] == ["2", "0", "2"] and table["Age"][2] == 27.5
    schema = exvo.fit_classes(table, HUME_VB)
    assert schema.classes == ("0", "2")


def test_columns_may_come_in_any_order(tmp_path):
    write_data_info(str(tmp_path), rows())
    path = os.path.join(str(tmp_path), "data_info.csv")
    import pandas as pd
    frame = pd.read_csv(path)
    frame[frame.columns[::-1]].to_csv(path, index=False)
    assert exvo.read_clip_table(str(tmp_path), HUME_VB)["File_ID"].tolist() == ["1", "2", "3", "4"]


@pytest.mark.parametrize("overrides, message", [
    ({(0, "Awe"): "nan"}, r"line 2 \(File_ID \[1\]\): Awe is not a number"),
    ({(1, "Fear"): -0.2}, r"line 3 \(File_ID \[2\]\): Fear = -0.2 lies outside \[0, 1\]"),
    ({(2, "Surprise"): 1.5}, r"Surprise = 1.5 lies outside \[0, 1\]"),
    ({(1, "File_ID"): "[1]"}, r"File_ID \[1\] appears 2 times \(lines 2, 3\)"),
    ({(2, "Split"): "Dev"}, r"Split 'Dev' is not one of Train, Val, Test"),
    ({(0, "Age"): "old"}, r"Age is not a number"),
    ({(0, "Age"): -3}, r"Age is negative"),
    ({(2, "Awe"): ""}, r"Awe is empty"),
])
def test_bad_labels_give_one_line_errors_naming_file_row_and_column(tmp_path, overrides, message):
    with pytest.raises(UserInputError, match=message) as caught:
        read(tmp_path, overrides)
    assert "data_info.csv" in str(caught.value) and "\n" not in str(caught.value)


def test_unlabelled_rows_outside_test_are_rejected(tmp_path):
    overrides = {(1, c): "" for c in ("Country", "Age", *HUME_VB.emotion_columns)}
    with pytest.raises(UserInputError, match="has no labels outside Test"):
        read(tmp_path, overrides)


def test_missing_column_and_missing_file(tmp_path):
    write_data_info(str(tmp_path), [{k: v for k, v in r.items() if k != "Age"} for r in rows()])
    with pytest.raises(UserInputError, match="missing column 'Age'"):
        exvo.read_clip_table(str(tmp_path), HUME_VB)
    with pytest.raises(UserInputError, match="not found"):
        exvo.read_clip_table(str(tmp_path / "nowhere"), HUME_VB)
    (tmp_path / "data_info.csv").write_text("")   # once a raw pandas EmptyDataError
    with pytest.raises(UserInputError, match="data_info.csv: not a readable CSV"):
        exvo.read_clip_table(str(tmp_path), HUME_VB)


def test_known_classes_of_a_model_reject_new_values(tmp_path):
    write_data_info(str(tmp_path), rows({(2, "Country"): 7}))
    with pytest.raises(UserInputError, match=r"line 4 .*unknown Country value '7' \(not among the "
                                             r"model's classes: 0, 1, 2\)"):
        exvo.read_clip_table(str(tmp_path), HUME_VB.with_classes(["0", "1", "2"]))


def test_classes_seen_only_outside_train_still_get_an_output(tmp_path):
    write_data_info(str(tmp_path), rows({(2, "Country"): 3}))
    table = exvo.read_clip_table(str(tmp_path), HUME_VB)
    assert exvo.fit_classes(table, HUME_VB).classes == ("0", "2", "3")


def test_paper_split_moves_whole_val_speakers_reproducibly(tiny_demo):
    table = exvo.read_clip_table(tiny_demo, HUME_VB)
    val_speakers = set(table.loc[table.Split == "Val", "Subject_ID"])
    moved = exvo.paper_split(table, HUME_VB, num_speakers=2, seed=3)
    again = exvo.paper_split(table, HUME_VB, num_speakers=2, seed=3)
    assert moved.Split.tolist() == again.Split.tolist()
    now_train = set(moved.loc[(table.Split == "Val") & (moved.Split == "Train"), "Subject_ID"])
    assert len(now_train) == 2 and now_train <= val_speakers
    # Whole speakers move: none of them keeps a Val clip.
    assert not now_train & set(moved.loc[moved.Split == "Val", "Subject_ID"])
    assert exvo.speakers_in_several_splits(moved, HUME_VB) == {}
    with pytest.raises(UserInputError, match="--moved_val_speakers: 250 requested"):
        exvo.paper_split(table, HUME_VB, num_speakers=250)


def test_speaker_leak_check(tmp_path):
    write_data_info(str(tmp_path), rows({(2, "Subject_ID"): "s1"}))
    table = exvo.read_clip_table(str(tmp_path), HUME_VB)
    assert exvo.speakers_in_several_splits(table, HUME_VB) == {"s1": ["Train", "Val"]}


@requires_emodb
def test_reads_real_emodb_with_its_own_schema():
    schema = LabelSchema.from_flags(",".join(EMODB_EMOTIONS), "Sex", "Age")
    table, schema = exvo.read_and_split(EMODB, schema)
    assert len(table) == 535 and schema.classes == ("female", "male")
    assert table.labelled.all() and all(os.path.isfile(p) for p in table.path)
    assert set(table.Split) == {"Train", "Val", "Test"}
    assert exvo.speakers_in_several_splits(table, schema) == {}
    emotions = table[list(EMODB_EMOTIONS)].to_numpy()
    assert np.all((emotions >= 0) & (emotions <= 1)) and np.all((emotions > 0).sum(axis=1) == 1)


def test_a_schema_without_a_task_reads_data_without_its_column(tmp_path):
    """Any non-empty subset of the tasks: the absent column is neither needed nor read."""
    write_data_info(str(tmp_path), [{k: v for k, v in r.items() if k != "Age"} for r in rows()])
    no_age = LabelSchema(class_column="Country_string", age_column="")
    table, schema = exvo.read_and_split(str(tmp_path), no_age)
    assert "Age" not in table.columns and schema.classes == ("China", "US")
    assert table["labelled"].tolist() == [True, True, True, False]
    # No emotions and no age: the class column alone labels the clips.
    table = exvo.read_clip_table(str(tmp_path), LabelSchema(emotion_columns=(), age_column=""))
    assert table["labelled"].tolist() == [True, True, True, False]
    assert not set(HUME_VB.emotion_columns) & set(table.columns)
    # No class column: no classes are fitted.
    schema = exvo.fit_classes(table, LabelSchema(emotion_columns=("Awe",), class_column="",
                                                 age_column=""))
    assert schema.classes is None and schema.tasks == ("emotion",)


def test_a_missing_named_column_suggests_the_empty_flag(tmp_path):
    """A named column missing from the CSV stays an error (a typo never drops a task silently)."""
    write_data_info(str(tmp_path), [{k: v for k, v in r.items() if k != "Age"} for r in rows()])
    with pytest.raises(UserInputError, match=r"missing column 'Age' \(if the data has no age labels, "
                                             r"pass --age_column=\) \(it has: File_ID"):
        exvo.read_clip_table(str(tmp_path), HUME_VB)
    with pytest.raises(UserInputError, match=r"missing column 'Sex' \(if the data has no class "
                                             r"labels, pass --class_column=\)"):
        exvo.read_clip_table(str(tmp_path), LabelSchema(class_column="Sex", age_column=""))
    with pytest.raises(UserInputError, match=r"missing column 'Joy' \(if the data has no emotion "
                                             r"labels, pass --emotion_columns=\)"):
        exvo.read_clip_table(str(tmp_path), LabelSchema(emotion_columns=("Joy",), age_column=""))


def escaping_data(tmp_path):
    """A data set whose rows 2 and 3 are good and a secret beside it, outside its wav/."""
    data_dir = tmp_path / "data"
    write_data_info(str(data_dir), rows())
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.wav").write_bytes(b"RIFF secret")
    (data_dir / "wav" / "sub").mkdir(parents=True)
    (data_dir / "wav" / "sub" / "2.wav").write_bytes(b"RIFF")
    return data_dir


@pytest.mark.parametrize("clip_id, message", [
    ("../../outside/secret", r"line 2 \(File_ID \[\.\./\.\./outside/secret\]\): climbs out of "),
    ("sub/../../../outside/secret", r"climbs out of .*/wav \('\.\.'\)"),
    ("ABSOLUTE", r"line 2 \(File_ID \[/.*/outside/secret\]\): is an absolute path"),
    ("link", r"line 2 \(File_ID \[link\]\): its audio file .*/wav/link\.wav is a link to "
             r".*/outside/secret\.wav, outside "),
    ("sub/out", r"its audio file .*/wav/sub/out\.wav is a link to .*/outside/secret\.wav"),
])
def test_an_id_naming_a_file_outside_the_audio_folder_is_refused_naming_its_row(tmp_path, clip_id,
                                                                               message):
    data_dir = escaping_data(tmp_path)
    secret = tmp_path / "outside" / "secret.wav"
    if clip_id == "ABSOLUTE":
        clip_id = str(secret)[:-len(".wav")]
    if clip_id in ("link", "sub/out"):
        os.symlink(secret, data_dir / "wav" / f"{clip_id}.wav")
    write_data_info(str(data_dir), rows({(0, "File_ID"): f"[{clip_id}]"}))
    with pytest.raises(UserInputError, match=message) as caught:
        exvo.read_clip_table(str(data_dir), HUME_VB)
    assert str(caught.value).startswith(os.path.join(str(data_dir), "data_info.csv"))


def test_ids_below_the_audio_folder_links_inside_it_and_a_linked_folder_are_read(tmp_path):
    data_dir = escaping_data(tmp_path)
    os.symlink(data_dir / "wav" / "sub" / "2.wav", data_dir / "wav" / "3.wav")   # stays inside
    write_data_info(str(data_dir), rows({(1, "File_ID"): "[sub/2]"}))
    table = exvo.read_clip_table(str(data_dir), HUME_VB)
    assert table["path"][1] == os.path.join(str(data_dir), "wav", "sub", "2.wav")
    # The audio folder itself may lead elsewhere (e.g. a larger disk): its files are read there.
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "data_info.csv").write_bytes((data_dir / "data_info.csv").read_bytes())
    os.symlink(data_dir / "wav", linked / "wav")
    assert exvo.read_clip_table(str(linked), HUME_VB)["path"][1] == os.path.join(
        str(linked), "wav", "sub", "2.wav")


def test_the_errors_docs_data_md_quotes_are_the_readers(tmp_path):
    data_md = open(os.path.join(REPO_ROOT, "docs", "data.md"), encoding="utf-8").read()
    with pytest.raises(UserInputError) as outside:
        read(tmp_path / "outside", {(1, "Fear"): 1.3})
    message = str(outside.value)
    assert message[message.index("data_info.csv: line "):].endswith(
        "): Fear = 1.3 lies outside [0, 1]")
    assert "data_info.csv: line 214 (File_ID [40112]): Fear = 1.3 lies outside [0, 1]" in data_md
    write_data_info(str(tmp_path / "no_age"), [{k: v for k, v in r.items() if k != "Age"}
                                               for r in rows()])
    with pytest.raises(UserInputError) as missing:
        exvo.read_clip_table(str(tmp_path / "no_age"), HUME_VB)
    quoted = str(missing.value)[str(missing.value).index("data_info.csv: "):]
    assert quoted.startswith("data_info.csv: missing column 'Age' (if the data has no age labels, "
                             "pass --age_column=) (it has: File_ID, Split, ")
    assert quoted[:quoted.index("Split, ") + len("Split, ")] + "...)" in data_md


if __name__ == "__main__":
    run_main()
