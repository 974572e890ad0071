"""Each model family reads its own inputs with the same labels: waveforms or embedding sequences."""

import logging

import numpy as np
import pytest

from conftest import EMODB, EMODB_EMOTIONS, requires_emodb, run_main
from vb_keras.models import readers, registry
from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB, LabelSchema


def test_missing_embedder_directory_is_a_one_line_error(tmp_path):
    with pytest.raises(UserInputError, match="--embedder: .*nowhere is not a directory"):
        readers.load_embedder(str(tmp_path / "nowhere"))


def test_without_an_embedder_the_builtin_one_is_used_and_called_untrained(caplog):
    with caplog.at_level(logging.WARNING):
        embedder = readers.load_embedder("")
    assert "RANDOM, UNTRAINED weights" in caplog.text
    assert embedder.dimension == 144


def test_both_families_give_the_same_labels_for_a_split(tiny_demo, tmp_path):
    table, schema = exvo.read_and_split(tiny_demo, HUME_VB)
    resnet = registry.split_reader(TrainingParams(model="resnet18"), tiny_demo, table, schema)
    heads = registry.split_reader(TrainingParams(model="conformer_autopool"), tiny_demo, table,
                                  schema, cache_root=str(tmp_path / "embeddings"))
    assert isinstance(resnet, readers.WaveformReader) and resnet.model_settings == {}
    assert isinstance(heads, readers.EmbeddingReader)
    assert heads.model_settings == {"embedding_dim": 144}
    assert heads.cache_dir.startswith(str(tmp_path))

    def collect(reader):
        ids, emotions, inputs_seen = [], [], set()
        for features, labels in reader.batches("Val", training=False, batch_size=4, keep_ids=True):
            ids.extend(features["file_id"].numpy())
            emotions.append(labels["emotion"].numpy())
            inputs_seen |= set(features) - {"file_id"}
        order = np.argsort(ids)
        return np.asarray(ids)[order], np.concatenate(emotions)[order], inputs_seen

    resnet_ids, resnet_emotions, resnet_inputs = collect(resnet)
    head_ids, head_emotions, head_inputs = collect(heads)
    assert resnet_inputs == {"waveform", "num_samples"}
    assert head_inputs == {"embeddings", "num_windows"}
    np.testing.assert_array_equal(resnet_ids, head_ids)
    np.testing.assert_array_equal(resnet_emotions, head_emotions)


@requires_emodb
def test_the_resnet_reader_fits_its_training_crop_to_the_clips_unless_told():
    schema = LabelSchema.from_flags(",".join(EMODB_EMOTIONS), "Sex", "Age")
    table, schema = exvo.read_and_split(EMODB, schema)
    table = table[table.Split == "Train"].head(16)   # a small subset: only Train is read here
    fitted = registry.split_reader(TrainingParams(model="resnet18", batch_size=8), EMODB, table,
                                   schema)
    assert fitted.train_clip_seconds is None
    features, _ = next(iter(fitted.batches("Train", training=True)))
    assert fitted.train_clip_seconds == 2.0                 # EmoDB's clips all last 2.0 s
    assert features["waveform"].shape == (8, 32000)
    told = registry.split_reader(TrainingParams(model="resnet18", batch_size=8, clip_seconds=4),
                                 EMODB, table, schema)
    assert next(iter(told.batches("Train", training=True)))[0]["waveform"].shape == (8, 64000)


if __name__ == "__main__":
    run_main()
