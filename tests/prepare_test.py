import logging
import os

import numpy as np
import pytest

from conftest import run_main
from vb_keras.data import exvo, pipeline, prepare, tfrecord
from vb_keras.errors import BadAudioError, UserInputError
from vb_keras.schema import HUME_VB


def test_prepare_writes_every_split_once(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    out = str(tmp_path / "prepared")
    counts = prepare.prepare(table, schema, out, source=tiny_demo, progress=False)
    assert counts == table.Split.value_counts().to_dict()
    info = tfrecord.read_info(out)
    assert info["schema"] == schema and info["counts"] == counts
    with pytest.raises(UserInputError, match="already holds a prepared data set"):
        prepare.prepare(table, schema, out, source=tiny_demo, progress=False)
    # The stored clips are the decoded files, unchanged.
    clip = next(iter(pipeline.clips_from_tfrecords(out, "Val", schema)))
    row = table[table.File_ID == clip["file_id"].numpy().decode()].iloc[0]
    import soundfile
    original, rate = soundfile.read(row.path, dtype="int16")
    assert rate == 16000 and np.array_equal(clip["audio"].numpy(), original)
    assert clip["class_value"].numpy().decode() == row.Country
    # Its label table reads like the source's.
    relabelled = exvo.read_clip_table(out, schema)
    assert relabelled.drop(columns="path").equals(table.drop(columns="path"))



@pytest.mark.parametrize("kwargs, tasks", [(dict(age_column=""), ("emotion", "country")),
                                           (dict(emotion_columns=(), class_column=""), ("age",))])
def test_a_data_set_without_some_tasks_prepares_and_reads_back(tiny_demo, tmp_path, kwargs, tasks):
    import dataclasses
    table, schema = exvo.read_and_split(tiny_demo, dataclasses.replace(HUME_VB, **kwargs))
    out = str(tmp_path / "prepared")
    prepare.prepare(table, schema, out, source=tiny_demo, progress=False)
    relabelled = exvo.read_clip_table(out, schema)
    assert relabelled.drop(columns="path").equals(table.drop(columns="path"))
    assert set(relabelled.columns) == {*schema.label_columns, "File_ID", "Split", "Subject_ID",
                                       "path", "labelled"}
    clips = pipeline.read_clips(out, schema, "Val")
    params = pipeline.PipelineParams(batch_size=4, clip_seconds=0.5, seed=0)
    _, labels = next(iter(pipeline.batches(clips, schema, params, training=True)))
    assert tuple(sorted(labels)) == tuple(sorted(tasks))


def test_bad_clip_is_skipped_and_listed_or_fails(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    table.loc[0, "path"] = str(tmp_path / "missing.wav")
    out = str(tmp_path / "prepared")
    counts = prepare.prepare(table, schema, out, source=tiny_demo, splits=["Train", "Val"],
                             progress=False)
    assert sum(counts.values()) == (table.Split != "Test").sum() - 1
    report = open(os.path.join(out, "bad_audio.csv")).read()
    assert "missing.wav,file not found" in report
    with pytest.raises(BadAudioError, match="missing.wav: file not found"):
        prepare.prepare(table, schema, str(tmp_path / "strict"), source=tiny_demo,
                        on_bad_audio="fail", progress=False)
    assert not os.path.exists(tmp_path / "strict")   # nothing half-written


def test_logs_count_the_stored_clips_and_name_the_final_report(tiny_demo, tmp_path, caplog):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    train = table.index[table.Split == "Train"]
    table.loc[train[0], "path"] = str(tmp_path / "missing.wav")
    out = str(tmp_path / "prepared")
    with caplog.at_level(logging.INFO):
        counts = prepare.prepare(table, schema, out, source=tiny_demo, splits=["Train"],
                                 progress=False)
    messages = [record.getMessage() for record in caplog.records]
    assert counts == {"Train": len(train) - 1}
    assert f"Train: {len(train) - 1} clips into 1 shard(s) (1 unusable skipped)" in messages
    # The warning once named the scratch directory, gone after the rename.
    warning, = [m for m in messages if m.startswith("skipped ")]
    assert f"listed in {os.path.join(out, 'bad_audio.csv')} (first: " in warning
    assert os.path.isfile(os.path.join(out, "bad_audio.csv")) and ".partial-" not in warning


if __name__ == "__main__":
    run_main()
