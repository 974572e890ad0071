"""Audio without labels, for self-supervised pre-training: every clip of a data directory (all
splits, so HUME-VB's unlabelled Test clips count), of a prepared TFRecord directory, or of audio files
and folders. Labels are never read, so a data set is usable whatever its columns.

Batches are {"waveform": float32 [batch, samples] in [-1, 1], "num_samples": int32 [batch]}, as the
labelled pipeline's features (`pipeline.batches`): training batches are random crops (or zero-padded
clips) of a fixed length, shuffled and reproducible from the seed.
"""

import os

import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.data import avb, csvfile, exvo, loading, pipeline, tfrecord
from vb_keras.data.audio import AUDIO_EXTENSIONS
from vb_keras.errors import UserInputError
from vb_keras.keys import NUM_SAMPLES, WAVEFORM

ID_COLUMN, PATH = "File_ID", exvo.PATH


def audio_files(paths, flag: str = "--audio") -> pd.DataFrame:
    """A clip table (File_ID, path) of the audio files named by `paths` (files or folders, searched
    recursively). File_ID is the path below the folder without its extension (the file stem for a
    file given directly)."""
    rows = []
    for given in paths:
        if os.path.isdir(given):
            for folder, _, names in sorted(os.walk(given)):
                for name in sorted(names):
                    if name.lower().endswith(AUDIO_EXTENSIONS):
                        full = os.path.join(folder, name)
                        rows.append((os.path.splitext(os.path.relpath(full, given))[0], full))
        elif os.path.isfile(given):
            rows.append((os.path.splitext(os.path.basename(given))[0], given))
        else:
            raise UserInputError(f"{flag}: {given} does not exist")
    if not rows:
        raise UserInputError(f"{flag}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in "
                             f"{', '.join(paths)}")
    table = pd.DataFrame(rows, columns=[ID_COLUMN, PATH])
    duplicated = table[ID_COLUMN].duplicated()
    if duplicated.any():
        raise UserInputError(f"{flag}: two files give the id {table[ID_COLUMN][duplicated].iloc[0]!r}")
    return table


def data_dir_files(data_dir, id_column: str = ID_COLUMN) -> pd.DataFrame:
    """A clip table (File_ID, path) of every row of a HUME-VB- or A-VB-layout `data_dir`, whatever
    its split and labels; clips whose audio is missing are left to the decoder to report."""
    for csv_name, audio_dirs in ((exvo.DATA_INFO, ("wav",)), (avb.DATA_INFO, avb.AUDIO_DIRS)):
        csv_path = os.path.join(data_dir, csv_name)
        if os.path.isfile(csv_path):
            break
    else:
        raise UserInputError(f"--data_dir: {data_dir} holds neither {exvo.DATA_INFO} (HUME-VB "
                             f"layout) nor {avb.DATA_INFO} (A-VB layout)")
    raw = csvfile.read_strings(csv_path)
    if id_column not in raw.columns:
        raise UserInputError(f"{csv_path}: missing column {id_column!r} (it has: "
                             f"{', '.join(raw.columns)})")
    ids = csvfile.clean_ids(raw[id_column])
    ids = ids[ids != ""].drop_duplicates()
    paths, escape = exvo.audio_paths(data_dir, ids, audio_dirs)
    if escape is not None:
        row, reason = escape
        raise UserInputError(f"{csv_path}: line {ids.index[row] + 2} ({id_column} "
                             f"[{ids.iloc[row]}]): {reason}")
    return pd.DataFrame({ID_COLUMN: ids.to_numpy(), PATH: paths})


def decode(table: pd.DataFrame, on_bad_audio: str = "skip", report_dir=None) -> list:
    """The int16 16 kHz waveforms of `table`'s clips; unusable ones are skipped and listed in
    `report_dir/bad_audio.csv` (or fail, with on_bad_audio="fail")."""
    waveforms, bad = [], []
    for _, result in loading.decode_clips(table, ID_COLUMN, on_bad_audio):
        (bad if isinstance(result, loading.BadClip) else waveforms).append(result)
    if report_dir is not None:
        loading.write_bad_audio_report(bad, report_dir)
    if not waveforms:
        raise UserInputError("no usable audio (see bad_audio.csv)")
    return waveforms


def prepared_waveforms(directory) -> list:
    """The int16 waveforms of every split of a bin/prepare_data directory."""
    info = tfrecord.read_info(directory)
    files = [path for split in exvo.SPLITS for path in tfrecord.split_files(directory, split)]
    if not files:
        raise UserInputError(f"{directory}: no clips were prepared")
    num_emotions = info["schema"].num_emotions
    clips = tf.data.TFRecordDataset(files).map(
        lambda record: tfrecord.parse_example(record, num_emotions)["audio"])
    return [audio.numpy() for audio in clips]


def waveforms_of(data_dir=None, audio=(), on_bad_audio: str = "skip", report_dir=None) -> list:
    """Every clip of `data_dir` (a data directory or prepared TFRecords) and of the `audio` files
    and folders, as int16 waveforms."""
    if not data_dir and not audio:
        raise UserInputError("--data_dir/--audio: name the audio to learn from")
    waveforms = []
    tables = [audio_files(audio)] if audio else []
    if data_dir:
        if tfrecord.is_prepared(data_dir):
            waveforms += prepared_waveforms(data_dir)
        else:
            tables.append(data_dir_files(data_dir))
    if tables:
        waveforms += decode(pd.concat(tables, ignore_index=True), on_bad_audio, report_dir)
    return waveforms


def split_off(waveforms: list, every: int = 20) -> tuple:
    """(training, held-out) waveforms: every `every`-th clip is held out (none of fewer clips)."""
    if len(waveforms) < every:
        return list(waveforms), []
    held = set(range(every - 1, len(waveforms), every))
    return ([w for i, w in enumerate(waveforms) if i not in held],
            [w for i, w in enumerate(waveforms) if i in held])


def batches(waveforms: list, batch_size: int, clip_samples: int, seed: int = 0,
            training: bool = True, steps_per_epoch: int | None = None,
            first_epoch: int = 0) -> tf.data.Dataset:
    """{waveform, num_samples} batches of crops of `clip_samples` (see the module docstring);
    training batches are shuffled and full, evaluation batches keep every clip, cropped at 0.
    With `steps_per_epoch`, training batches are an endless stream of epochs of that many, from
    `first_epoch` on, each a pure function of (seed, epoch) (`pipeline.epochs_of`)."""
    audio = tf.RaggedTensor.from_row_lengths(
        np.concatenate(waveforms).astype(np.int16), [len(w) for w in waveforms])
    dataset = tf.data.Dataset.from_tensor_slices(audio)

    def cropped(clip, draw=None):
        audio = pipeline.crop(clip, clip_samples, draw)
        return {WAVEFORM: tf.cast(audio, tf.float32) / 32768.0,
                NUM_SAMPLES: tf.minimum(tf.shape(clip, tf.int32)[0], clip_samples)}

    if training:
        dataset = pipeline.epochs_of(dataset, seed, batch_size, steps_per_epoch, first_epoch)
    dataset = dataset.map(cropped, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
