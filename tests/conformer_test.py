import math

import keras
import numpy as np
import pytest

from conftest import run_main
from vb_keras.models import conformer

SMALL = conformer.CONFORMER_CONFIGS["small"]
CAP12 = conformer.CONFORMER_CONFIGS["cap12"]
# Keras counts include BatchNorm's moving mean and variance (2 per channel per block).
PINNED_SMALL = 2_219_184
PINNED_CAP12_BLOCK = 24_154_112           # one d=1024 block: 23 d^2 + 36 d (kernel 5, ff x4)
PINNED_CAP12_FRONT = 6_420_992            # feature encoder (512 channels) + the 2 stride-2 convs
PINNED_CAP12_TO_LAYER12 = 296_270_336     # the embedder of section 2.2
PINNED_CAP12_ALL_24 = 586_119_680
# A one-step clip has one key to attend to, and Keras warns about a softmax over one element.
one_step_softmax_is_fine = pytest.mark.filterwarnings("ignore:You are using a softmax over axis")


@pytest.fixture(scope="module")
def small():
    keras.utils.set_random_seed(0)
    return conformer.build_conformer_encoder(SMALL)


def _run(model, log_mel, num_frames):
    out = model({"log_mel": np.asarray(log_mel, np.float32),
                 "num_frames": np.asarray(num_frames, np.int32)}, training=False)
    return out["sequence"].numpy(), out["lengths"].numpy()


def test_small_parameter_count_is_pinned(small):
    assert small.count_params() == PINNED_SMALL == conformer.count_parameters(SMALL)
    blocks = [layer for layer in small.layers if isinstance(layer, conformer.ConformerBlock)]
    assert len(blocks) == 4
    assert small.output["sequence"].shape[-1] == 144


def test_cap12_parameter_counts_are_pinned():
    # Building all 12 blocks takes ~10 s and 2 GB; one real d=1024 block pins the per-block count,
    # and the count is linear in the blocks.
    model = conformer.build_conformer_encoder(CAP12, output_layer=1)
    block = model.get_layer("block1").count_params()
    assert block == PINNED_CAP12_BLOCK == conformer.block_parameters(1024, 4, 5)
    assert 23 * 1024 ** 2 + 36 * 1024 == PINNED_CAP12_BLOCK
    assert model.count_params() - block == PINNED_CAP12_FRONT
    assert model.count_params() == conformer.count_parameters(CAP12, 1)
    assert conformer.count_parameters(CAP12) == PINNED_CAP12_FRONT + 12 * PINNED_CAP12_BLOCK
    assert conformer.count_parameters(CAP12) == PINNED_CAP12_TO_LAYER12
    assert conformer.count_parameters(CAP12, 24) == PINNED_CAP12_ALL_24     # "600M+" (section 1)
    assert model.output["sequence"].shape[-1] == 1024


def test_truncated_encoder_builds_only_the_blocks_it_needs():
    model = conformer.build_conformer_encoder(SMALL, output_layer=2)
    assert [layer.name for layer in model.layers if layer.name.startswith("block")] == [
        "block1", "block2"]
    assert model.count_params() == conformer.count_parameters(SMALL, 2)


@pytest.mark.parametrize("frames", [1, 2, 3, 4, 5, 7, 8, 9, 100, 101, 1003])
def test_subsampled_lengths_is_ceil_of_a_quarter(frames):
    assert conformer.subsampled_lengths(frames) == math.ceil(frames / 4)
    assert conformer.subsampled_lengths(np.array([frames]))[0] == math.ceil(frames / 4)


@one_step_softmax_is_fine
@pytest.mark.parametrize("frames", [1, 2, 5, 13])
def test_output_shapes_and_lengths(small, frames):
    log_mel = np.random.default_rng(frames).normal(size=(2, frames, 80))
    sequence, lengths = _run(small, log_mel, [frames, 1])
    assert sequence.shape == (2, math.ceil(frames / 4), 144)
    assert lengths.dtype == np.int32
    np.testing.assert_array_equal(lengths, [math.ceil(frames / 4), 1])
    assert np.all(np.isfinite(sequence))


@one_step_softmax_is_fine
def test_padded_rows_match_clips_run_alone(small):
    rng = np.random.default_rng(1)
    valid = [37, 13, 10, 1]
    batch = rng.normal(size=(len(valid), 37, 80)).astype(np.float32)
    for row, frames in enumerate(valid):
        batch[row, frames:] = 1e3 * rng.normal(size=(37 - frames, 80))   # junk in the padding
    sequence, lengths = _run(small, batch, valid)
    np.testing.assert_array_equal(lengths, [10, 4, 3, 1])
    for row, frames in enumerate(valid):
        alone, alone_lengths = _run(small, batch[row:row + 1, :frames], [frames])
        steps = lengths[row]
        assert alone.shape[1] == alone_lengths[0] == steps
        np.testing.assert_allclose(sequence[row, :steps], alone[0], atol=1e-4, rtol=1e-4)
        np.testing.assert_array_equal(sequence[row, steps:], 0.0)


def _round_trip(layer, *args):
    expected = layer(*args)
    clone = type(layer).from_config(layer.get_config())
    clone(*args)
    clone.set_weights(layer.get_weights())
    assert clone.get_config() == layer.get_config()
    np.testing.assert_allclose(clone(*args), expected, atol=1e-6)


def test_layers_round_trip_through_their_config():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 9, 16)).astype(np.float32)
    mel = rng.normal(size=(2, 9, 80)).astype(np.float32)
    lengths = np.array([9, 4], np.int32)
    _round_trip(conformer.FeatureEncoder(12, kernel_size=5), mel, lengths)
    _round_trip(conformer.ConvSubsampling(16, kernel_size=5, num_stages=3), x, lengths)
    _round_trip(conformer.SubsampledLengths(num_stages=3), lengths)
    _round_trip(conformer.SinusoidalPositionalEncoding(max_wavelength=100.0), x)
    _round_trip(conformer.FeedForwardModule(16, multiplier=2, dropout=0.2), x)
    _round_trip(conformer.ConvolutionModule(16, kernel_size=4, dropout=0.2), x, lengths)
    _round_trip(conformer.SelfAttentionModule(16, num_heads=2, dropout=0.2), x, lengths)
    _round_trip(conformer.ConformerBlock(16, 4, feed_forward_multiplier=2, conv_kernel_size=3,
                                         dropout=0.2), x, lengths)


def test_small_encoder_round_trips_through_keras_file(small, tmp_path):
    log_mel = np.random.default_rng(3).normal(size=(2, 21, 80))
    expected, lengths = _run(small, log_mel, [21, 6])
    path = str(tmp_path / "conformer_small.keras")
    small.save(path)
    loaded = keras.models.load_model(path)
    sequence, loaded_lengths = _run(loaded, log_mel, [21, 6])
    np.testing.assert_array_equal(loaded_lengths, lengths)
    np.testing.assert_allclose(sequence, expected, atol=1e-6)


def _config(**changes):
    fields = {**SMALL.__dict__, **changes}
    return conformer.ConformerConfig(**fields)


@pytest.mark.parametrize("changes, message", [
    (dict(model_dim=100, num_heads=3), "divisible by num_heads"),
    (dict(embedding_layer=0), r"embedding_layer must lie in \[1, num_layers=4\]"),
    (dict(embedding_layer=5), r"embedding_layer must lie in \[1, num_layers=4\]"),
    (dict(num_layers=0, embedding_layer=1), "num_layers must be a positive integer"),
    (dict(conv_kernel_size=0), "conv_kernel_size must be a positive integer"),
    (dict(dropout=1.0), r"dropout must lie in \[0, 1\)"),
])
def test_config_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        _config(**changes)


def test_output_layer_is_validated_and_configs_are_frozen():
    with pytest.raises(ValueError, match=r"output_layer must lie in \[1, 4\]"):
        conformer.build_conformer_encoder(SMALL, output_layer=5)
    with pytest.raises(ValueError, match="divisible"):
        conformer.SelfAttentionModule(10, num_heads=3)
    with pytest.raises(AttributeError):
        SMALL.num_layers = 2
    assert (CAP12.num_layers, CAP12.model_dim, CAP12.embedding_layer) == (24, 1024, 12)


if __name__ == "__main__":
    run_main()
