import os

import numpy as np
import pytest

from conftest import EMODB, EMODB_EMOTIONS, requires_emodb, run_main
from vb_keras.data import exvo, pipeline, prepare
from vb_keras.params import PipelineParams
from vb_keras.schema import HUME_VB, LabelSchema

PARAMS = PipelineParams(batch_size=8, clip_seconds=1.5, seed=7)


@pytest.fixture(scope="module")
def demo(tiny_demo, tmp_path_factory):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    prepared = str(tmp_path_factory.mktemp("pipeline") / "prepared")
    prepare.prepare(table, schema, prepared, source=tiny_demo, progress=False)
    return table, schema, prepared


def test_training_batches_have_fixed_length_and_named_labels(demo):
    table, schema, prepared = demo
    features, labels = next(iter(pipeline.batches(
        pipeline.read_clips(prepared, schema, "Train"), schema, PARAMS, training=True)))
    assert features["waveform"].shape == (8, 24000) and features["waveform"].dtype == "float32"
    assert np.all(features["num_samples"].numpy() <= 24000)
    assert np.abs(features["waveform"].numpy()).max() <= 1.0
    assert labels["emotion"].shape == (8, 10) and labels["age"].shape == (8, 1)
    np.testing.assert_allclose(labels["country"].numpy().sum(axis=1), 1.0)
    # Padding beyond a short clip's length is zero.
    for row, length in zip(features["waveform"].numpy(), features["num_samples"].numpy()):
        assert not row[length:].any()


def test_training_batches_are_reproducible_from_the_seed(demo):
    _, schema, prepared = demo
    clips = pipeline.read_clips(prepared, schema, "Train")

    def first(params):
        return next(iter(pipeline.batches(clips, schema, params, training=True)))[0]["waveform"]

    assert np.array_equal(first(PARAMS), first(PARAMS))
    other = PipelineParams(**{**PARAMS.__dict__, "seed": 8})
    assert not np.array_equal(first(PARAMS), first(other))


def test_each_epoch_is_a_function_of_the_seed_and_the_epoch_alone(demo):
    """A run resumed at epoch 2 (after a kill) reads what an uninterrupted run reads from there:
    nothing depends on how many batches were read before (issue 26)."""
    _, schema, prepared = demo
    clips = pipeline.read_clips(prepared, schema, "Train")   # 30 clips from TFRecords
    steps = 5   # an epoch of 40 crops: a pass of 30 and 10 of the next

    def epochs(first, count):
        stream = pipeline.batches(clips, schema, PARAMS, training=True, keep_ids=True,
                                  steps_per_epoch=steps, first_epoch=first)
        return [(features["file_id"].numpy().tolist(), features["waveform"].numpy())
                for features, _ in stream.take(count * steps)]

    uninterrupted, resumed = epochs(0, 3), epochs(2, 1)
    for (ids, audio), (ids_again, audio_again) in zip(uninterrupted[2 * steps:], resumed):
        assert ids == ids_again and np.array_equal(audio, audio_again)
    # Each pass holds every clip once; epochs (and passes) draw other orders and crops.
    ids_of = [clip for ids, _ in uninterrupted for clip in ids]
    assert len(set(ids_of[:30])) == 30 and len(set(ids_of[40:70])) == 30
    assert ids_of[:30] != ids_of[40:70] and ids_of[:30] != ids_of[30:40] + ids_of[:20]


def test_evaluation_sees_whole_clips_with_true_lengths(demo):
    table, schema, prepared = demo
    val = exvo.select_split(table, schema, "Val")
    seen = 0
    for features, labels in pipeline.batches(pipeline.read_clips(prepared, schema, "Val"), schema,
                                             PARAMS, training=False, keep_ids=True):
        for file_id, length in zip(features["file_id"].numpy(), features["num_samples"].numpy()):
            row = val[val.File_ID == file_id.decode()].iloc[0]
            import soundfile
            assert length == soundfile.info(row.path).frames
            seen += 1
    assert seen == len(val)


def test_audio_files_and_tfrecords_give_the_same_batches(demo):
    table, schema, prepared = demo
    from_records = next(iter(pipeline.batches(pipeline.read_clips(prepared, schema, "Val"), schema,
                                              PARAMS, training=False)))
    from_files = next(iter(pipeline.batches(
        pipeline.read_clips(os.path.dirname(table.path[0]) + "/..", schema, "Val", table=table),
        schema, PARAMS, training=False)))
    for key in ("waveform", "num_samples"):
        np.testing.assert_array_equal(from_records[0][key], from_files[0][key])
    np.testing.assert_allclose(from_records[1]["emotion"], from_files[1]["emotion"])


def test_unlabelled_test_clips_have_no_class(demo):
    _, schema, prepared = demo
    _, labels = next(iter(pipeline.batches(pipeline.read_clips(prepared, schema, "Test"), schema,
                                           PARAMS, training=False)))
    assert not labels["country"].numpy().any() and np.isnan(labels["age"].numpy()).all()


def test_bad_audio_is_skipped_and_reported_when_reading_files(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    table.loc[table.Split == "Val", "path"] = [str(tmp_path / "gone.wav")] + list(
        table.loc[table.Split == "Val", "path"])[1:]
    clips = pipeline.read_clips(tiny_demo, schema, "Val", report_dir=str(tmp_path), table=table)
    assert sum(1 for _ in clips) == (table.Split == "Val").sum() - 1
    assert "gone.wav,file not found" in open(tmp_path / "bad_audio.csv").read()


def test_the_fitted_crop_holds_most_clips_whole_in_half_seconds_up_to_4s():
    seconds = lambda *values: np.array(values) * 16000
    assert pipeline.fitted_clip_seconds(seconds(*[1.9] * 95, *[2.01] * 5)) == 2.0
    assert pipeline.fitted_clip_seconds(seconds(*[2.0] * 100)) == 2.0       # exact: no step up
    assert pipeline.fitted_clip_seconds(seconds(*[2.0] * 90, *[3.2] * 10)) == 3.5
    assert pipeline.fitted_clip_seconds(seconds(0.1, 0.2)) == 0.5
    assert pipeline.fitted_clip_seconds(seconds(*[9.0] * 10)) == 4.0        # at most 4 s
    assert pipeline.fitted_clip_seconds([]) == 4.0


def test_clip_lengths_are_read_from_the_clips(demo):
    table, schema, prepared = demo
    import soundfile
    train = exvo.select_split(table, schema, "Train")
    expected = sorted(soundfile.info(path).frames for path in train.path)
    assert sorted(pipeline.clip_lengths(pipeline.read_clips(prepared, schema, "Train"))) == expected


@requires_emodb
def test_real_emodb_clips_are_resampled_to_16k():
    schema = LabelSchema.from_flags(",".join(EMODB_EMOTIONS), "Sex", "Age")
    table, schema = exvo.read_and_split(EMODB, schema)
    clips = pipeline.read_clips(EMODB, schema, "Val", table=table, report_dir=None)
    features, labels = next(iter(pipeline.batches(clips, schema, PARAMS, training=False)))
    assert np.all(features["num_samples"].numpy() == 32000)   # 2.0 s at 22.05 kHz -> 16 kHz
    assert labels["emotion"].shape[1] == 7 and labels["country"].shape[1] == 2


if __name__ == "__main__":
    run_main()
