"""The embedding cache: one extraction per (embedder, window, data), resumable, keyed by file id."""

import os
import shutil

import numpy as np
import pytest
import soundfile

from conftest import directory_held_by_another_process, run_main
from vb_keras.data import embedding_cache, exvo, prepare
from vb_keras.errors import UserInputError
from vb_keras.params import WindowParams
from vb_keras.schema import HUME_VB

WINDOW = WindowParams(window_seconds=1.0, min_tail_seconds=0.25)


class LoudnessEmbedder:
    """A stand-in embedder: per-window RMS, mean and peak (3-d), counting its calls."""
    identity = "test:loudness-v1"
    dimension = 3
    description = "loudness test embedder"

    def __init__(self):
        self.windows_seen = 0

    def __call__(self, windows):
        windows = np.asarray(windows)
        self.windows_seen += len(windows)
        return np.stack([np.sqrt((windows ** 2).mean(1)), windows.mean(1),
                         np.abs(windows).max(1)], axis=-1)


@pytest.fixture(scope="module")
def demo_table(tiny_demo):
    return exvo.read_and_split(tiny_demo, HUME_VB)


def _extract(data_dir, table, schema, directory, embedder=None, progress=False):
    embedder = embedder or LoudnessEmbedder()
    embedding_cache.extract(embedder, data_dir, table, schema, directory, WINDOW,
                            progress=progress)
    return embedder


def test_every_clip_becomes_its_windows_embeddings(tiny_demo, demo_table, tmp_path, capsys):
    table, schema = demo_table
    _extract(tiny_demo, table, schema, str(tmp_path / "cache"), progress=True)
    # A progress bar over the clips, advanced per embedder batch, on stderr.
    shown = capsys.readouterr()
    assert f"{len(table)}/{len(table)}" in shown.err and "clip" in shown.err and not shown.out
    sequences, info = embedding_cache.load(str(tmp_path / "cache"))
    assert len(sequences) == len(table) and info["dimension"] == 3 and info["unusable"] == 0
    row = table.iloc[5]
    audio, _ = soundfile.read(row[exvo.PATH], dtype="float32")
    sequence = sequences[row[schema.id_column]]
    assert len(sequence) == WINDOW.num_windows(len(audio))
    first = audio[:WINDOW.window_samples]
    np.testing.assert_allclose(sequence[0], [np.sqrt((first ** 2).mean()), first.mean(),
                                             np.abs(first).max()], atol=1e-4)


def test_the_key_changes_with_embedder_window_and_data(tiny_demo, demo_table, tmp_path):
    table, _ = demo_table
    data = embedding_cache.data_identity(tiny_demo, table)
    key = embedding_cache.cache_key("a", WINDOW, data)
    assert key == embedding_cache.cache_key("a", WINDOW, data)
    assert key != embedding_cache.cache_key("b", WINDOW, data)
    assert key != embedding_cache.cache_key("a", WindowParams(2.0, 0.25), data)
    assert key != embedding_cache.cache_key("a", WindowParams(1.0, 0.5), data)
    copy = str(tmp_path / "copy")
    shutil.copytree(tiny_demo, copy)
    assert embedding_cache.data_identity(copy, exvo.read_and_split(copy, HUME_VB)[0]) != data


def test_the_key_does_not_depend_on_how_the_data_directory_is_spelt(tiny_demo, demo_table,
                                                                     monkeypatch):
    # bin/train given a relative --data_dir, bin/evaluate reading config.json's absolute one:
    # the same clips, the same cache (once, evaluate embedded all of EmoGator again).
    monkeypatch.chdir(os.path.dirname(tiny_demo))
    relative = os.path.join(os.curdir, os.path.basename(tiny_demo))
    assert embedding_cache.data_identity(relative, exvo.read_and_split(relative, HUME_VB)[0]) == (
        embedding_cache.data_identity(tiny_demo, demo_table[0]))


def test_a_killed_extraction_resumes_at_the_first_missing_shard(tiny_demo, demo_table, tmp_path,
                                                                monkeypatch):
    table, schema = demo_table
    monkeypatch.setattr(embedding_cache, "CLIPS_PER_SHARD", 25)   # 60 clips -> 3 shards
    directory = str(tmp_path / "cache")
    first = _extract(tiny_demo, table, schema, directory)
    complete, _ = embedding_cache.load(directory)
    # As if killed while writing shard 2: no info file, shard 2 missing, a scratch file left.
    os.remove(os.path.join(directory, embedding_cache.CACHE_INFO))
    shard = os.path.join(directory, "shard-00001-of-00003.tfrecord")
    os.replace(shard, shard + ".partial")
    with pytest.raises(UserInputError, match="not a complete embedding cache"):
        embedding_cache.load(directory)
    second = _extract(tiny_demo, table, schema, directory)
    assert 0 < second.windows_seen < first.windows_seen      # only the missing shard was embedded
    resumed, _ = embedding_cache.load(directory)
    assert resumed.keys() == complete.keys()
    for file_id, sequence in complete.items():
        np.testing.assert_array_equal(resumed[file_id], sequence)
    third = _extract(tiny_demo, table, schema, directory)
    assert third.windows_seen == 0                             # complete: nothing to do


def test_unusable_audio_is_recorded_and_left_out(tiny_demo, tmp_path):
    data = str(tmp_path / "data")
    shutil.copytree(tiny_demo, data)
    table, schema = exvo.read_and_split(data, HUME_VB)
    victim = table[table[schema.split_column] == "Train"].iloc[0]
    with open(victim[exvo.PATH], "wb") as stream:
        stream.write(b"RIFF....WAVEjunk")
    directory = str(tmp_path / "cache")
    _extract(data, table, schema, directory)
    sequences, info = embedding_cache.load(directory)
    assert info["unusable"] == 1 and victim[schema.id_column] not in sequences
    assert victim[schema.id_column] in open(os.path.join(directory, "bad_audio.csv")).read()
    train = exvo.select_split(table, schema, "Train")
    clips = embedding_cache.clips_from_cache(train, sequences, schema)
    assert len(list(clips)) == len(train) - 1


def test_a_prepared_data_set_gives_the_same_embeddings(tiny_demo, demo_table, tmp_path):
    table, schema = demo_table
    prepared = str(tmp_path / "prepared")
    prepare.prepare(table, schema, prepared, source=tiny_demo, progress=False)
    _extract(tiny_demo, table, schema, str(tmp_path / "raw"))
    prepared_table, _ = exvo.read_and_split(prepared, HUME_VB)
    _extract(prepared, prepared_table, schema, str(tmp_path / "from_prepared"))
    raw, _ = embedding_cache.load(str(tmp_path / "raw"))
    stored, _ = embedding_cache.load(str(tmp_path / "from_prepared"))
    assert raw.keys() == stored.keys()
    for file_id in raw:
        np.testing.assert_allclose(stored[file_id], raw[file_id], atol=1e-6)


def test_batches_pad_sequences_and_carry_the_labels(tiny_demo, demo_table, tmp_path):
    table, schema = demo_table
    _extract(tiny_demo, table, schema, str(tmp_path / "cache"))
    sequences, _ = embedding_cache.load(str(tmp_path / "cache"))
    val = exvo.select_split(table, schema, "Val")
    batches = embedding_cache.sequence_batches(
        embedding_cache.clips_from_cache(val, sequences, schema), schema, batch_size=5,
        training=False, keep_ids=True)
    seen = 0
    for features, labels in batches:
        counts = features["num_windows"].numpy()
        embeddings = features["embeddings"].numpy()
        assert embeddings.shape[1] == counts.max() and embeddings.shape[2] == 3
        for row, file_id in enumerate(features["file_id"].numpy()):
            expected = sequences[file_id.decode()]
            assert counts[row] == len(expected)
            np.testing.assert_array_equal(embeddings[row, :counts[row]], expected)
            assert not embeddings[row, counts[row]:].any()
        assert labels["country"].shape[1] == schema.num_classes
        seen += len(counts)
    assert seen == len(val)
    training = embedding_cache.sequence_batches(
        embedding_cache.clips_from_cache(exvo.select_split(table, schema, "Train"), sequences,
                                         schema), schema, batch_size=8, training=True)
    assert all(f["num_windows"].shape[0] == 8 for f, _ in training)   # full batches only


def test_a_second_extraction_waits_for_the_first_and_reuses_its_cache(tiny_demo, demo_table,
                                                                       tmp_path):
    table, schema = demo_table
    directory = tmp_path / "cache"
    finish = "open(os.path.join(directory, 'cache_info.json'), 'w').write('{}')"
    with directory_held_by_another_process(directory, seconds=1.5, then=finish) as other:
        embedder = _extract(tiny_demo, table, schema, str(directory))
        assert other.wait(timeout=60) == 0
    assert embedder.windows_seen == 0            # it waited, then found the cache complete


if __name__ == "__main__":
    run_main()
