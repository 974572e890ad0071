"""Per-window embeddings of every clip, computed once by a frozen embedder and cached (section 2.2).

The embedder is frozen, so the heads train from stored embeddings in seconds per epoch instead of
running the embedder every epoch. The cache lives in `<root>/<key>/`, where the key hashes
  - the embedder's identity (its SavedModel fingerprint),
  - the window settings (`WindowParams`),
  - the data: the data directory, and every clip's file name, size and modification time,
so a changed embedder, window or data set never reuses a stale cache. A cache directory holds
  shard-NNNNN.tfrecord   one record per clip: file_id, num_windows, the [windows, D] embeddings
                         (float32), or the reason its audio was unusable
  cache_info.json        written last: the cache is complete only when it exists
Shards are written one at a time through a scratch file and a rename, so an extraction that is killed
resumes at the first missing shard. One process extracts a cache at a time; another waits for it.
Clips are keyed by file id, not split: any split scheme (e.g. the
paper's, which moves Val speakers into Train) reads the same cache.
"""

import contextlib
import hashlib
import json
import logging
import math
import os

import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.utils import atomic
from vb_keras.utils import progress as progress_bars
from vb_keras.utils.cache import cache_root
from vb_keras.data import exvo, loading, pipeline, tfrecord
from vb_keras.utils import windows
from vb_keras.errors import UserInputError
from vb_keras.keys import EMBEDDINGS, FILE_ID, NUM_WINDOWS
from vb_keras.params import WindowParams
from vb_keras.schema import LabelSchema

CACHE_INFO = "cache_info.json"
CLIPS_PER_SHARD = 1000
# Windows per embedder call: large enough to keep the embedder busy, small enough for memory
# (64 windows of 2.5 s are 10 MB of audio).
WINDOWS_PER_BATCH = 64


def default_cache_root() -> str:
    """$VB_KERAS_CACHE/embeddings or ~/.cache/vb_keras/embeddings."""
    return os.path.join(cache_root(), "embeddings")


def sequences(embedder, window: WindowParams, data_dir, table: pd.DataFrame, schema: LabelSchema,
              on_bad_audio: str = "skip", root: str | None = None, progress: bool = True) -> tuple:
    """(sequences, cache info, cache directory) for every clip of `data_dir`, extracting them into
    the cache under `root` (default `default_cache_root()`) first if this embedder, window and
    data have not been seen before."""
    directory = cache_directory(root or default_cache_root(), embedder, window, data_dir, table)
    if is_complete(directory):
        logging.info("reusing the embedding cache %s", directory)
    else:
        extract(embedder, data_dir, table, schema, directory, window, on_bad_audio, progress)
    found, info = load(directory)
    return found, info, directory


def cache_key(embedder_identity: str, window: WindowParams, data_identity: str) -> str:
    payload = json.dumps({"embedder": embedder_identity, "window_seconds": window.window_seconds,
                          "min_tail_seconds": window.min_tail_seconds, "data": data_identity},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def data_identity(data_dir, table: pd.DataFrame) -> str:
    """A digest of the clips a cache is made from: names, sizes and modification times. Paths
    count relative to the data directory, so "../data" and "/work/data" name the same cache (a
    model trained on the one is evaluated from its config.json's absolute path)."""
    data_dir = os.path.abspath(data_dir)
    digest = hashlib.sha256(data_dir.encode())
    if tfrecord.is_prepared(data_dir):
        files = sorted(f for f in os.listdir(data_dir) if f.endswith(".tfrecord"))
        paths = [os.path.join(data_dir, f) for f in files] + [
            os.path.join(data_dir, tfrecord.DATASET_INFO)]
    else:
        paths = sorted(table[exvo.PATH])
    for path in paths:
        name = os.path.relpath(os.path.abspath(path), data_dir)
        try:
            stat = os.stat(path)
            digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:   # a missing file is reported as bad audio at extraction
            digest.update(f"{name}\0missing\n".encode())
    return digest.hexdigest()


def cache_directory(root, embedder, window: WindowParams, data_dir, table) -> str:
    return os.path.join(root, cache_key(embedder.identity, window, data_identity(data_dir, table)))


def is_complete(directory) -> bool:
    return os.path.isfile(os.path.join(directory, CACHE_INFO))


def extract(embedder, data_dir, table: pd.DataFrame, schema: LabelSchema, directory,
            window: WindowParams = WindowParams(), on_bad_audio: str = "skip",
            progress: bool = True) -> str:
    """Embeds every clip of `data_dir` into `directory` (see the module docstring); returns it.

    Args:
      embedder: an `embedders.SavedModelEmbedder` (or anything with `identity`, `dimension`, and a
        call mapping float32 [n, samples] to [n, D]).
      table: the clip table of `data_dir` (`exvo.read_clip_table`).
      on_bad_audio: "skip" records unusable clips in the cache (and bad_audio.csv); "fail" stops.
    """
    if is_complete(directory):
        return directory
    # One extraction per cache: a second process (say, another head trained on the same data)
    # waits for the first, then reuses its cache; a killed one's lock is released by the kernel.
    with atomic.owned_directory(directory, "--embedding_cache", wait=True):
        if is_complete(directory):
            return directory
        return _extract(embedder, data_dir, table, schema, directory, window, on_bad_audio,
                        progress)


def _extract(embedder, data_dir, table, schema, directory, window, on_bad_audio, progress):
    prepared = tfrecord.is_prepared(data_dir)
    total = (sum(tfrecord.read_info(data_dir)["counts"].values()) if prepared else len(table))
    num_shards = max(1, math.ceil(total / CLIPS_PER_SHARD))
    done = [k for k in range(num_shards) if os.path.isfile(_shard_path(directory, k, num_shards))]
    if done:
        logging.info("embedding cache %s: resuming, %d of %d shards already written", directory,
                     len(done), num_shards)
    logging.info("embedding %d clips with %s into %s", total, embedder.description, directory)
    # Per batch of clips, on stderr.
    advance = (progress_bars.Progress(total, label="embedding clips").add if progress
               else lambda count: None)
    embed = _window_embedder(embedder, window)
    bad = []
    for shard in range(num_shards):
        path = _shard_path(directory, shard, num_shards)
        start, stop = shard * CLIPS_PER_SHARD, min(total, (shard + 1) * CLIPS_PER_SHARD)
        if os.path.isfile(path):
            bad.extend(_bad_clips_in(path))
            advance(stop - start)
        else:
            clips = (_prepared_clips(data_dir, schema, start, stop) if prepared
                     else _decoded_clips(table.iloc[start:stop], schema, on_bad_audio))
            bad.extend(_write_shard(path, clips, embed, advance))
    loading.write_bad_audio_report(bad, directory)
    info = {"embedder": embedder.identity, "embedder_description": embedder.description,
            "embedder_path": getattr(embedder, "path", None), "dimension": embedder.dimension,
            "window_seconds": window.window_seconds, "min_tail_seconds": window.min_tail_seconds,
            "data_dir": os.path.abspath(data_dir), "clips": total, "unusable": len(bad),
            "num_shards": num_shards}
    atomic.write_json(os.path.join(directory, CACHE_INFO), info)
    return directory


def _shard_path(directory, shard, num_shards):
    return os.path.join(directory, f"shard-{shard:05d}-of-{num_shards:05d}.tfrecord")


def _decoded_clips(rows, schema, on_bad_audio):
    """(file_id, int16 audio or BadClip) for rows of a HUME-VB table."""
    ids = list(rows[schema.id_column])
    for position, result in loading.decode_clips(rows, schema.id_column, on_bad_audio,
                                                 progress=False):
        yield ids[position], result


def _prepared_clips(data_dir, schema, start, stop):
    """(file_id, int16 audio) for clips start..stop of a prepared set, splits in a fixed order."""
    info = tfrecord.read_info(data_dir)
    datasets = [pipeline.clips_from_tfrecords(data_dir, split, schema)
                for split in exvo.SPLITS if info["num_shards"].get(split)]
    clips = datasets[0]
    for dataset in datasets[1:]:
        clips = clips.concatenate(dataset)
    for clip in clips.skip(start).take(stop - start).as_numpy_iterator():
        yield clip["file_id"].decode(), clip["audio"]


def _window_embedder(embedder, window):
    """A function from a list of int16 clips to a list of float32 [windows, D] arrays."""
    def embed(clips):
        pieces = [windows.clip_windows(tf.cast(audio, tf.float32) / 32768.0, window).numpy()
                  for audio in clips]
        counts = [len(piece) for piece in pieces]
        if not pieces:
            return []
        stacked = np.concatenate(pieces)
        outputs = np.concatenate([np.asarray(embedder(stacked[i:i + WINDOWS_PER_BATCH]), np.float32)
                                  for i in range(0, len(stacked), WINDOWS_PER_BATCH)])
        return np.split(outputs, np.cumsum(counts)[:-1])
    return embed


def _write_shard(path, clips, embed, advance=lambda count: None):
    """Writes one shard through a scratch file, flushed to the disk before the rename, and removed
    if anything fails (a full disk: `NoSpaceError`); returns its unusable clips. `advance(n)` is
    called as n more clips are written."""
    temporary = path + ".partial"
    bad, pending = [], []

    def flush(writer):
        sequences = embed([audio for _, audio in pending])
        for (file_id, _), sequence in zip(pending, sequences):
            writer.write(_serialize(file_id, sequence, ""))
        advance(len(pending))
        pending.clear()

    try:
        with tf.io.TFRecordWriter(temporary) as writer:
            for file_id, result in clips:
                if isinstance(result, loading.BadClip):
                    bad.append(result)
                    writer.write(_serialize(file_id, None, f"{result.path}\0{result.reason}"))
                    advance(1)
                    continue
                pending.append((file_id, result))
                if len(pending) >= WINDOWS_PER_BATCH // 2:
                    flush(writer)
            if pending:
                flush(writer)
        atomic.fsync(temporary)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise atomic.no_space_error(error, path) or error
    return bad


def _serialize(file_id, sequence, bad_reason):
    sequence = np.zeros([0, 0], np.float32) if sequence is None else sequence
    feature = {
        "file_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[file_id.encode()])),
        NUM_WINDOWS: tf.train.Feature(int64_list=tf.train.Int64List(value=[len(sequence)])),
        "dimension": tf.train.Feature(int64_list=tf.train.Int64List(
            value=[sequence.shape[-1] if sequence.size else 0])),
        EMBEDDINGS: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[np.asarray(sequence, "<f4").tobytes()])),
        "bad_reason": tf.train.Feature(bytes_list=tf.train.BytesList(value=[bad_reason.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


_SPEC = {"file_id": tf.io.FixedLenFeature([], tf.string),
         NUM_WINDOWS: tf.io.FixedLenFeature([], tf.int64),
         "dimension": tf.io.FixedLenFeature([], tf.int64),
         EMBEDDINGS: tf.io.FixedLenFeature([], tf.string),
         "bad_reason": tf.io.FixedLenFeature([], tf.string)}


def _records(path):
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        yield tf.io.parse_single_example(record, _SPEC)


def _bad_clips_in(path):
    bad = []
    for example in _records(path):
        reason = example["bad_reason"].numpy().decode()
        if reason:
            clip_path, _, why = reason.partition("\0")
            bad.append(loading.BadClip(example["file_id"].numpy().decode(), clip_path, why))
    return bad


def load(directory) -> tuple:
    """(sequences, info) of a complete cache: sequences maps file_id -> float32 [windows, D]."""
    if not is_complete(directory):
        raise UserInputError(f"{directory}: not a complete embedding cache ({CACHE_INFO} missing; "
                             "run bin/extract_embeddings)")
    with open(os.path.join(directory, CACHE_INFO)) as stream:
        info = json.load(stream)
    files = sorted(os.path.join(directory, f) for f in os.listdir(directory)
                   if f.startswith("shard-") and f.endswith(".tfrecord"))
    dataset = tf.data.TFRecordDataset(files).map(
        lambda record: tf.io.parse_single_example(record, _SPEC))
    sequences = {}
    for example in dataset.as_numpy_iterator():
        if example["bad_reason"]:
            continue
        sequences[example["file_id"].decode()] = np.frombuffer(
            example[EMBEDDINGS], "<f4").reshape(int(example[NUM_WINDOWS]),
                                                  int(example["dimension"]))
    return sequences, info


def clips_from_cache(rows: pd.DataFrame, sequences: dict, schema: LabelSchema) -> tf.data.Dataset:
    """The clips of `rows` (one split) as sequences: the pipeline's clip dict with "embeddings"
    [windows, D] in place of "audio". Clips the cache holds no embeddings for (unusable audio) are
    left out, with a warning."""
    ids = rows[schema.id_column].to_numpy(str)
    present = np.array([file_id in sequences for file_id in ids], bool)
    if not present.all():
        logging.warning("%d clip(s) have no embeddings (unusable audio, see the cache's "
                        "bad_audio.csv) and are left out; first: %s", (~present).sum(),
                        ids[~present][0])
    rows = rows[present]
    if rows.empty:
        raise UserInputError("no clip of the split has embeddings in the cache")
    parts = [sequences[file_id] for file_id in rows[schema.id_column]]
    clips = pipeline.clip_labels(rows, schema)
    clips[EMBEDDINGS] = tf.RaggedTensor.from_row_lengths(np.concatenate(parts),
                                                         [len(p) for p in parts])
    return tf.data.Dataset.from_tensor_slices(clips)


def sequence_batches(clips: tf.data.Dataset, schema: LabelSchema, batch_size: int, training: bool,
                     seed: int = 0, keep_ids: bool = False, steps_per_epoch: int | None = None,
                     first_epoch: int = 0) -> tf.data.Dataset:
    """Clips from `clips_from_cache` -> (features, labels) batches, features being
    {"embeddings": float32 [batch, max windows, D] (zero-padded), "num_windows": int32 [batch]}.
    Training batches are shuffled (reproducibly from `seed`) and full; with `steps_per_epoch`, an
    endless stream of epochs from `first_epoch` on, each a pure function of (seed, epoch)
    (`pipeline.epochs_of`)."""
    labels_of = pipeline.label_encoder(schema)

    def split(clip):
        features = {EMBEDDINGS: clip[EMBEDDINGS],
                    NUM_WINDOWS: tf.shape(clip[EMBEDDINGS], tf.int32)[0]}
        if keep_ids:
            features[FILE_ID] = clip[FILE_ID]
        return features, labels_of(clip)

    if training:
        clips = pipeline.epochs_of(clips, seed, batch_size, steps_per_epoch,
                                   first_epoch).map(lambda clip, draw: clip)
    dataset = clips.map(split, num_parallel_calls=tf.data.AUTOTUNE).padded_batch(
        batch_size, drop_remainder=training)
    return dataset.prefetch(tf.data.AUTOTUNE)
