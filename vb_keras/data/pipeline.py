"""tf.data pipeline: clips (from TFRecords or straight from audio files) -> model batches.

A clip is a dict {file_id, speaker, audio (int16 [samples] at 16 kHz), emotion [E], class_value
(string), age, labelled}. Batches are (features, labels):
  features: {"waveform": float32 [batch, samples] in [-1, 1], "num_samples": int32 [batch]}
  labels:   {"emotion": float32 [batch, E], "country": float32 one-hot [batch, C], "age": [batch, 1]}
            (only the tasks the schema has: `schema.tasks`)
Training batches crop each clip at a random offset (or zero-pad it) to a fixed length (which
`fitted_clip_seconds` can choose from the clips' lengths); evaluation
batches hold whole clips of similar length (0.5 s buckets, so they come out grouped by length) padded
to the longest one, with their true lengths, so padding never biases a metric.

Training data is a pure function of (seed, epoch) (`epochs_of`): the order of each pass and every
crop are drawn from stateless seeds, never from a generator's state, so a run resumed at epoch N
(after a kill) reads exactly the batches an uninterrupted run reads from epoch N on.
"""

import math

import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.data import exvo, loading, tfrecord
from vb_keras.errors import UserInputError
from vb_keras.keys import FILE_ID, NUM_SAMPLES, WAVEFORM
from vb_keras.params import SAMPLE_RATE, PipelineParams
from vb_keras.schema import AGE, COUNTRY, EMOTION, LabelSchema

EVAL_BUCKET_SAMPLES = 8000       # 0.5 s
MAX_BUCKETED_SAMPLES = 160000    # 10 s, HUME-VB's longest clips; longer ones share the last bucket
# The fitted training crop (`fitted_clip_seconds`): the shortest multiple of 0.5 s that holds 95%
# of the Train clips whole, at most 4 s (which holds nearly all of HUME-VB's clips, mean 2.2 s).
FITTED_CLIP_SHARE = 0.95
FITTED_CLIP_STEP_SECONDS = 0.5
MAX_FITTED_CLIP_SECONDS = 4.0


def read_clips(data_dir, schema: LabelSchema, split: str, on_bad_audio="skip", report_dir=None,
               table: pd.DataFrame | None = None) -> tf.data.Dataset:
    """The clips of one split from a prepared TFRecord directory or a HUME-VB data directory.

    From audio files, the split is decoded once, up front and in parallel, into memory (int16,
    about 115 MB per hour of audio); unusable files are skipped and listed in
    `report_dir/bad_audio.csv` (or fail, with on_bad_audio="fail"). For sets the size of HUME-VB,
    run bin/prepare_data once and pass its output instead.

    Args:
      table: the already-read clip table of `data_dir` (e.g. after `exvo.paper_split`); read if None.
    """
    if tfrecord.is_prepared(data_dir):
        return clips_from_tfrecords(data_dir, split, schema)
    if table is None:
        table = exvo.read_clip_table(data_dir, schema)
    return clips_from_audio(exvo.select_split(table, schema, split), schema, on_bad_audio,
                            report_dir or data_dir, label=f"decoding {split} audio")


def clips_from_tfrecords(directory, split: str, schema: LabelSchema) -> tf.data.Dataset:
    info = tfrecord.read_info(directory)
    stored = info["schema"]
    if tuple(stored.emotion_columns) != tuple(schema.emotion_columns):
        raise UserInputError(f"{directory}: prepared with emotion columns {stored.emotion_columns}, "
                             f"not {schema.emotion_columns} (--emotion_columns)")
    files = tfrecord.split_files(directory, split)
    if not files:
        raise UserInputError(f"{directory}: no {split} clips were prepared")
    num_emotions = schema.num_emotions
    return (tf.data.Dataset.from_tensor_slices(files)
            .interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .map(lambda record: tfrecord.parse_example(record, num_emotions),
                 num_parallel_calls=tf.data.AUTOTUNE))


def clips_from_audio(split_table: pd.DataFrame, schema: LabelSchema, on_bad_audio="skip",
                     report_dir=None, label: str = "decoding audio") -> tf.data.Dataset:
    """Decodes every clip of `split_table` into memory; see `read_clips`."""
    waveforms, keep, bad = [], [], []
    for position, result in loading.decode_clips(split_table, schema.id_column, on_bad_audio,
                                                 label=label):
        if isinstance(result, loading.BadClip):
            bad.append(result)
        else:
            waveforms.append(result)
            keep.append(position)
    if report_dir is not None:
        loading.write_bad_audio_report(bad, report_dir)
    rows = split_table.iloc[keep]
    if rows.empty:
        raise UserInputError("no usable audio in the split (see bad_audio.csv)")
    return clips_from_arrays(rows, waveforms, schema)


def clips_from_arrays(rows: pd.DataFrame, waveforms, schema: LabelSchema) -> tf.data.Dataset:
    """Clips from a clip table and its decoded int16 waveforms (one per row, in order)."""
    clips = clip_labels(rows, schema)
    # from_row_lengths on one flat array: tf.ragged.constant walks Python lists and is slow.
    clips["audio"] = tf.RaggedTensor.from_row_lengths(
        np.concatenate(waveforms) if waveforms else np.zeros([0], np.int16),
        [len(w) for w in waveforms])
    return tf.data.Dataset.from_tensor_slices(clips)


def clip_labels(rows: pd.DataFrame, schema: LabelSchema) -> dict:
    """The clip dict's bookkeeping and label columns for `rows`, as arrays (no audio)."""
    labelled = rows[exvo.LABELLED].to_numpy()
    # A task the data lacks keeps its place in the clip dict (emotion [0], class "", age NaN), so
    # clips keep one layout; `label_encoder` leaves it out of the labels.
    emotion = rows[list(schema.emotion_columns)].to_numpy(np.float32).reshape(len(rows), -1)
    age = (rows[schema.age_column].to_numpy(np.float32) if schema.age_column
           else np.full(len(rows), np.nan, np.float32))
    class_value = (rows[schema.class_column].to_numpy(str) if schema.class_column
                   else np.full(len(rows), "", object).astype(str))
    return {
        FILE_ID: rows[schema.id_column].to_numpy(str),
        "speaker": rows[schema.speaker_column].to_numpy(str),
        "emotion": np.where(labelled[:, None], emotion, 0.0).astype(np.float32),
        "class_value": class_value,
        "age": np.where(labelled, age, np.nan).astype(np.float32),
        "labelled": labelled,
    }


def label_encoder(schema: LabelSchema):
    """A function from a clip dict to its labels {"emotion", "country" (one-hot), "age" [1]}, of
    the tasks the schema has (`schema.tasks`)."""
    tasks = schema.tasks
    if COUNTRY in tasks:
        class_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(schema.classes),
                                                tf.range(schema.num_classes, dtype=tf.int64)),
            default_value=-1)
        num_classes = schema.num_classes

    def labels_of(clip):
        labels = {}
        if EMOTION in tasks:
            labels[EMOTION] = clip["emotion"]
        if COUNTRY in tasks:
            labels[COUNTRY] = tf.one_hot(class_index.lookup(clip["class_value"]), num_classes)
        if AGE in tasks:
            labels[AGE] = clip["age"][tf.newaxis]
        return labels
    return labels_of


def clip_lengths(clips: tf.data.Dataset) -> np.ndarray:
    """The length in samples of every clip of `clips` (one pass over them)."""
    lengths = (clips.map(lambda clip: tf.shape(clip["audio"], tf.int64)[0],
                         num_parallel_calls=tf.data.AUTOTUNE)
               .batch(4096))
    return np.concatenate([np.zeros([0], np.int64), *lengths.as_numpy_iterator()])


def fitted_clip_seconds(lengths) -> float:
    """The training crop for clips of these lengths (samples at 16 kHz): the shortest multiple of
    `FITTED_CLIP_STEP_SECONDS` that holds `FITTED_CLIP_SHARE` of them whole, at most
    `MAX_FITTED_CLIP_SECONDS`.

    A crop longer than the clips is zero padding, which the models mask but still compute: on sets
    of 2 s bursts a 4 s crop is half padding, and so twice the work of each training step.
    """
    lengths = np.asarray(lengths, np.float64)
    if lengths.size == 0:
        return MAX_FITTED_CLIP_SECONDS
    seconds = np.quantile(lengths, FITTED_CLIP_SHARE) / SAMPLE_RATE
    steps = max(math.ceil(seconds / FITTED_CLIP_STEP_SECONDS - 1e-6), 1)
    return min(steps * FITTED_CLIP_STEP_SECONDS, MAX_FITTED_CLIP_SECONDS)


def crop(audio, clip_samples: int, draw=None):
    """`clip_samples` of `audio` from an offset drawn uniformly from those that fit, by the
    stateless seed `draw` (int64 [2], see `epochs_of`; None: from the start), zero-padded at the
    end if the clip is shorter."""
    offset = tf.constant(0, tf.int64)
    if draw is not None:
        room = tf.maximum(tf.shape(audio, tf.int64)[0] - clip_samples, 0)
        offset = tf.random.stateless_uniform([], seed=draw, maxval=room + 1, dtype=tf.int64)
    audio = audio[offset:offset + clip_samples]
    audio = tf.pad(audio, [[0, clip_samples - tf.shape(audio, tf.int64)[0]]])
    return tf.ensure_shape(audio, [clip_samples])


def padded_batch(clips) -> dict:
    """A list of float32 clips as one model input: {WAVEFORM: [batch, longest] zero-padded,
    NUM_SAMPLES: [batch] true lengths} (what a servable is sent)."""
    lengths = np.array([len(clip) for clip in clips], np.int32)
    waveform = np.zeros([len(clips), max(lengths.max(), 1)], np.float32)
    for row, clip in enumerate(clips):
        waveform[row, :len(clip)] = clip
    return {WAVEFORM: waveform, NUM_SAMPLES: lengths}


def epochs_of(elements: tf.data.Dataset, seed: int, batch_size: int,
              steps_per_epoch: int | None = None, first_epoch: int = 0) -> tf.data.Dataset:
    """Training elements as (element, draw), from epoch `first_epoch` on, each epoch a pure
    function of (seed, epoch).

    Epoch e holds `steps_per_epoch` * `batch_size` elements: passes over `elements`, pass p of it
    in the order of a permutation drawn from (seed, e, p) (`tf.random.experimental.index_shuffle`,
    stateless); an epoch longer than a pass goes on into the next one. `draw`, int64 [2], seeds the
    element's own random choices (its crop): (seed, its position in the whole stream). Nothing
    depends on how many elements were read before, so starting at `first_epoch` gives exactly
    the elements an uninterrupted stream gives from there. Without `steps_per_epoch`: one pass
    (its elements up to a multiple of `batch_size`), then the stream ends.

    The elements are read into memory once (as the audio pipeline's decoded clips already are).
    """
    count = int(elements.cardinality())
    if count < 0:   # (e.g. TFRecords: counted by reading them)
        count = int(elements.reduce(np.int64(0), lambda total, _: total + 1))
    if count == 0:
        raise UserInputError("no training examples")
    table = next(iter(elements.ragged_batch(count)))
    per_epoch = (steps_per_epoch or count // batch_size) * batch_size
    seed = tf.constant([seed, 0], tf.int64)

    def pick(position):
        epoch, within = position // per_epoch, position % per_epoch
        order = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(seed, epoch), within // count)
        index = tf.random.experimental.index_shuffle(within % count, order,
                                                     tf.constant(count - 1, tf.int64))
        return (tf.nest.map_structure(lambda column: column[index], table),
                tf.stack([seed[0], position]))

    stream = tf.data.Dataset.counter(first_epoch * per_epoch).map(
        pick, num_parallel_calls=tf.data.AUTOTUNE)
    return stream if steps_per_epoch else stream.take(per_epoch)


def batches(clips: tf.data.Dataset, schema: LabelSchema, params: PipelineParams, training: bool,
            keep_ids: bool = False, steps_per_epoch: int | None = None,
            first_epoch: int = 0) -> tf.data.Dataset:
    """Turns clips into (features, labels) batches; see the module docstring.

    Args:
      keep_ids: add "file_id" to the features (for writing predictions; drop it before a model call).
      steps_per_epoch, first_epoch: training: an endless stream of epochs of this many batches,
        from `first_epoch` on (`epochs_of`); without them, one pass.
    """
    labels_of = label_encoder(schema)

    def features_of(clip, audio):
        features = {WAVEFORM: tf.cast(audio, tf.float32) / 32768.0,
                    NUM_SAMPLES: tf.minimum(tf.shape(clip["audio"], tf.int32)[0], tf.shape(audio)[0])}
        if keep_ids:
            features[FILE_ID] = clip[FILE_ID]
        return features

    if training:
        clip_samples = params.clip_samples
        seed = params.seed

        def cropped(clip, draw):
            audio = crop(clip["audio"], clip_samples, draw)
            return features_of(clip, audio), labels_of(clip)

        dataset = (epochs_of(clips, seed, params.batch_size, steps_per_epoch, first_epoch)
                   .map(cropped, num_parallel_calls=tf.data.AUTOTUNE)
                   # A whole batch keeps the mean-CCC loss stable (section 2.1) and shapes static.
                   .batch(params.batch_size, drop_remainder=True))
    else:
        # Clips of similar length share a batch (0.5 s buckets): padding stays short, so little work
        # is spent on it. (The models are padding-exact: batch-mates never change a prediction.)
        boundaries = list(range(EVAL_BUCKET_SAMPLES, MAX_BUCKETED_SAMPLES, EVAL_BUCKET_SAMPLES))
        dataset = (clips.map(lambda clip: (features_of(clip, clip["audio"]), labels_of(clip)),
                             num_parallel_calls=tf.data.AUTOTUNE)
                   .bucket_by_sequence_length(
                       lambda features, labels: features[NUM_SAMPLES], boundaries,
                       [params.batch_size] * (len(boundaries) + 1)))
    return dataset.prefetch(tf.data.AUTOTUNE)
