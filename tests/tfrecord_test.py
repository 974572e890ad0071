import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.data import tfrecord
from vb_keras.errors import UserInputError
from vb_keras.schema import HUME_VB


def test_example_round_trip(tmp_path):
    audio = np.array([0, 1, -1, 32767, -32768], np.int16)
    record = tfrecord.serialize_example("123", "spk", audio, np.linspace(0, 1, 10), "2", 26.0, True)
    clip = tfrecord.parse_example(tf.constant(record), 10)
    assert clip["file_id"].numpy() == b"123" and clip["speaker"].numpy() == b"spk"
    assert clip["audio"].numpy().tolist() == audio.tolist()
    np.testing.assert_allclose(clip["emotion"], np.linspace(0, 1, 10), atol=1e-7)
    assert clip["class_value"].numpy() == b"2" and float(clip["age"]) == 26.0
    assert bool(clip["labelled"])


def test_info_round_trip_and_missing_pieces(tmp_path):
    with pytest.raises(UserInputError, match="not a prepared data set"):
        tfrecord.read_info(str(tmp_path))
    schema = HUME_VB.with_classes(["0", "1"])
    tfrecord.write_info(str(tmp_path), schema, {"Train": 3}, "src", {"Train": 2})
    info = tfrecord.read_info(str(tmp_path))
    assert info["schema"] == schema and info["sample_rate"] == 16000
    assert tfrecord.is_prepared(str(tmp_path))
    with pytest.raises(UserInputError, match="shard missing"):
        tfrecord.split_files(str(tmp_path), "Train")
    assert tfrecord.split_files(str(tmp_path), "Val") == []


if __name__ == "__main__":
    run_main()
