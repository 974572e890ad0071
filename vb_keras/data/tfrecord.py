"""Sharded TFRecords of a prepared data set: 16 kHz int16 PCM, labels, ids and speakers.

Layout of a prepared directory:
  dataset_info.json                 the label schema (with classes), counts, sample rate, source
  data_info.csv                     labels of the stored clips (HUME-VB layout, splits as prepared,
                                    whatever the source's layout: an A-VB source reads back the same)
  <Split>-00000-of-000NN.tfrecord   one tf.train.Example per clip
  bad_audio.csv                     clips that were skipped, with the reason (if any)
Labels are stored as read (class values as strings), so one prepared set serves any class order.
"""

import json
import os

import numpy as np
import tensorflow as tf

from vb_keras.utils import atomic
from vb_keras.errors import UserInputError
from vb_keras.params import SAMPLE_RATE
from vb_keras.schema import LabelSchema

DATASET_INFO = "dataset_info.json"


def shard_path(directory, split, shard, num_shards):
    return os.path.join(directory, f"{split}-{shard:05d}-of-{num_shards:05d}.tfrecord")


def serialize_example(file_id: str, speaker: str, audio_int16: np.ndarray, emotion, class_value: str,
                      age: float, labelled: bool) -> bytes:
    def _bytes(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    features = {
        "file_id": _bytes(file_id.encode()),
        "speaker": _bytes(speaker.encode()),
        "audio": _bytes(np.asarray(audio_int16, "<i2").tobytes()),
        "emotion": tf.train.Feature(float_list=tf.train.FloatList(value=list(emotion))),
        "class_value": _bytes(class_value.encode()),
        "age": tf.train.Feature(float_list=tf.train.FloatList(value=[age])),
        "labelled": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labelled)])),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def parse_example(serialized, num_emotions: int):
    """One serialized Example -> the clip dict the pipeline consumes (see pipeline.py)."""
    spec = {
        "file_id": tf.io.FixedLenFeature([], tf.string),
        "speaker": tf.io.FixedLenFeature([], tf.string),
        "audio": tf.io.FixedLenFeature([], tf.string),
        "emotion": tf.io.FixedLenFeature([num_emotions], tf.float32),
        "class_value": tf.io.FixedLenFeature([], tf.string),
        "age": tf.io.FixedLenFeature([], tf.float32),
        "labelled": tf.io.FixedLenFeature([], tf.int64),
    }
    example = tf.io.parse_single_example(serialized, spec)
    example["audio"] = tf.io.decode_raw(example["audio"], tf.int16, little_endian=True)
    example["labelled"] = tf.cast(example["labelled"], tf.bool)
    return example


def write_info(directory, schema: LabelSchema, counts: dict, source: str, num_shards: dict):
    info = {"schema": json.loads(schema.to_json()), "counts": counts, "num_shards": num_shards,
            "sample_rate": SAMPLE_RATE, "source": source}
    atomic.write_json(os.path.join(directory, DATASET_INFO), info)


def read_info(directory) -> dict:
    path = os.path.join(directory, DATASET_INFO)
    if not os.path.isfile(path):
        raise UserInputError(f"{directory}: not a prepared data set ({DATASET_INFO} missing; "
                             "run bin/prepare_data)")
    with open(path) as stream:
        info = json.load(stream)
    info["schema"] = LabelSchema(**info["schema"])
    return info


def split_files(directory, split):
    info = read_info(directory)
    num_shards = info["num_shards"].get(split, 0)
    files = [shard_path(directory, split, i, num_shards) for i in range(num_shards)]
    missing = [f for f in files if not os.path.isfile(f)]
    if missing:
        raise UserInputError(f"{missing[0]}: shard missing (re-run bin/prepare_data)")
    return files


def is_prepared(directory) -> bool:
    return os.path.isfile(os.path.join(directory, DATASET_INFO))
