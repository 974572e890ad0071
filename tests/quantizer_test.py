"""The Gumbel-softmax product quantiser (vb_keras.models.quantizer; Baevski et al., 2020)."""

import numpy as np
import pytest

from conftest import run_main
import tensorflow as tf

from vb_keras.models import quantizer


def _quantizer(**kwargs):
    layer = quantizer.GumbelVectorQuantizer(num_groups=2, num_entries=8, code_dim=6, seed=3,
                                            **kwargs)
    layer.build((None, None, 5))
    return layer


def test_each_group_picks_one_codebook_entry():
    layer = _quantizer()
    x = tf.random.stateless_normal([2, 7, 5], [1, 2])
    mask = tf.sequence_mask([7, 4], 7)
    out = layer(x, mask, temperature=1.0, training=False)
    assert out["quantized"].shape == (2, 7, 6) and out["codes"].shape == (2, 7, 2)
    codebook = layer.codebook.numpy()
    codes = out["codes"].numpy()
    expected = np.concatenate([codebook[0][codes[..., 0]], codebook[1][codes[..., 1]]], axis=-1)
    np.testing.assert_allclose(out["quantized"].numpy(), expected, rtol=1e-6)
    # Without noise the choice is the argmax of the logits: the same on every call.
    np.testing.assert_array_equal(layer(x, mask, temperature=1.0, training=False)["codes"], codes)
    assert 2 <= float(out["perplexity"]) <= 16 and 2 <= float(out["code_perplexity"]) <= 16


def test_training_passes_gradients_through_the_hard_choice():
    layer = _quantizer()
    x = tf.random.stateless_normal([2, 7, 5], [4, 5])
    mask = tf.ones([2, 7], tf.bool)
    with tf.GradientTape() as tape:
        out = layer(x, mask, temperature=2.0, training=True)
        loss = tf.reduce_sum(out["quantized"] * tf.range(6, dtype=tf.float32))
    gradients = tape.gradient(loss, layer.projection.trainable_variables)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


def test_perplexity_is_that_of_the_average_choice_over_valid_steps():
    layer = _quantizer()
    layer.projection.set_weights([np.zeros((5, 16), np.float32), np.zeros(16, np.float32)])
    x = tf.ones([1, 3, 5])
    out = layer(x, tf.ones([1, 3], tf.bool), temperature=1.0, training=False)
    assert float(out["perplexity"]) == pytest.approx(16.0, rel=1e-4)   # uniform: G * V
    assert float(out["code_perplexity"]) == pytest.approx(2.0, rel=1e-4)   # one entry each


@pytest.mark.parametrize("channels", [144, 1024])
def test_the_initial_logits_have_the_chosen_spread_whatever_the_width(channels):
    # The spread decides whether the codebook can learn (see the layer's comment); it must not grow
    # with the encoder's width as fairseq's N(0, 1) weights make it.
    layer = quantizer.GumbelVectorQuantizer(num_groups=2, num_entries=320, code_dim=256, seed=0,
                                            logit_std=1.2)
    layer.build((None, None, channels))
    x = tf.random.stateless_normal([4, 50, channels], [6, 7])
    logits = layer.projection(x).numpy()
    assert np.std(logits) == pytest.approx(1.2, rel=0.1)


def test_the_layer_round_trips_its_config():
    layer = _quantizer(logit_std=0.5)
    clone = quantizer.GumbelVectorQuantizer.from_config(layer.get_config())
    assert (clone.num_groups, clone.num_entries, clone.code_dim, clone.seed,
            clone.logit_std) == (2, 8, 6, 3, 0.5)
    with pytest.raises(ValueError, match="divisible"):
        quantizer.GumbelVectorQuantizer(num_groups=4, code_dim=6)


if __name__ == "__main__":
    run_main()
