"""The Gumbel-softmax product quantiser of wav2vec 2.0 (Baevski et al., 2020, section 2 and 3.2).

A feature vector is mapped to G groups of logits over V codebook entries; each group picks one entry
(a hard one-hot in the forward pass, the Gumbel-softmax's gradient in the backward pass: the
straight-through estimator of Jang et al., 2016), and the G chosen entries, each of code_dim / G
values, are concatenated. G = 2 and V = 320 in wav2vec 2.0 (section 4.2).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="vb_keras")
class GumbelVectorQuantizer(keras.layers.Layer):
    """Product quantisation with Gumbel-softmax choices (Baevski et al., 2020, section 2).

    Args:
      num_groups: G, codebooks (2 in wav2vec 2.0).
      num_entries: V, entries per codebook (320).
      code_dim: width of a quantised vector (the G entries concatenated); divisible by G.
      seed: seeds the Gumbel noise.
      logit_std: the logits' standard deviation at initialisation on unit-variance inputs (the
        logit weights are drawn from N(0, logit_std^2 / channels)).

    Call arguments:
      x: float [batch, steps, channels], the unmasked feature-encoder output.
      mask: bool [batch, steps], the valid steps (the codebook statistics cover only these).
      temperature: the Gumbel-softmax temperature tau (annealed by the caller).
      training: with noise and straight-through gradients; else the argmax, noise-free.

    Returns:
      {"quantized": float [batch, steps, code_dim], "codes": int32 [batch, steps, G] (the chosen
      entries), "perplexity": the sum over groups of exp(entropy) of the noise-free choice
      probabilities averaged over valid steps (wav2vec 2.0's prob perplexity; G * V at most, the
      quantity the diversity loss raises), "code_perplexity": the same for the hard choices}.
    """

    def __init__(self, num_groups=2, num_entries=320, code_dim=256, seed=None, logit_std=1.2,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_groups = int(num_groups)
        self.num_entries = int(num_entries)
        self.code_dim = int(code_dim)
        if self.code_dim % self.num_groups:
            raise ValueError(f"code_dim ({self.code_dim}) must be divisible by num_groups "
                             f"({self.num_groups})")
        self.seed = seed
        self.logit_std = float(logit_std)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The logits' initial spread decides whether the codebook can learn (both failures seen
        # on EmoDB, with the small Conformer's 144 normalised channels):
        # - Keras's default (Glorot, logits of std ~0.6) starts them nearly flat: the Gumbel noise
        #   picks the codes, the targets carry nothing, and the diversity loss keeps them flat;
        # - fairseq's N(0, 1) weights (logits of std ~12 here) saturate the softmax: the diversity
        #   loss has no gradient and the codebook collapses to 2-3 codes (perplexity 2.3-2.7 of 640);
        # - logits of std 1.2 (N(0, 0.1) weights) kept 638 of 640 and the contrastive accuracy
        #   rose above chance within 150 updates. Scaling by the fan-in keeps that spread for
        #   wider encoders (cap12) too.
        self.projection = keras.layers.Dense(
            self.num_groups * self.num_entries, dtype=self.dtype_policy, name="logits",
            kernel_initializer=keras.initializers.VarianceScaling(
                self.logit_std ** 2, mode="fan_in", distribution="untruncated_normal",
                seed=seed))

    def build(self, x_shape, mask_shape=None):
        self.projection.build(tuple(x_shape))
        # fairseq's wav2vec 2.0 initialises the codebook uniformly in [0, 1).
        self.codebook = self.add_weight(
            name="codebook", shape=(self.num_groups, self.num_entries,
                                    self.code_dim // self.num_groups),
            initializer=keras.initializers.RandomUniform(0.0, 1.0))

    def call(self, x, mask, temperature=1.0, training=None):
        batch, steps = tf.shape(x)[0], tf.shape(x)[1]
        logits = tf.cast(self.projection(x), tf.float32)
        logits = tf.reshape(logits, [batch, steps, self.num_groups, self.num_entries])
        codes = tf.argmax(logits, axis=-1, output_type=tf.int32)
        hard = tf.one_hot(codes, self.num_entries, dtype=tf.float32)
        if training:
            uniform = keras.random.uniform(tf.shape(logits), minval=1e-6, maxval=1.0 - 1e-6,
                                           seed=self.seed_generator)
            gumbel = -tf.math.log(-tf.math.log(uniform))
            soft = tf.nn.softmax((logits + gumbel) / temperature, axis=-1)
            codes = tf.argmax(soft, axis=-1, output_type=tf.int32)
            hard = tf.one_hot(codes, self.num_entries, dtype=tf.float32)
            choice = hard - tf.stop_gradient(soft) + soft   # straight-through
        else:
            choice = hard
        # [batch, steps, G, V] x [G, V, code_dim / G] -> [batch, steps, G, code_dim / G]
        quantized = tf.einsum("btgv,gvd->btgd", choice, tf.cast(self.codebook, tf.float32))
        quantized = tf.reshape(quantized, [batch, steps, self.code_dim])
        weights = tf.cast(mask, tf.float32)[:, :, tf.newaxis, tf.newaxis]
        count = tf.maximum(tf.reduce_sum(weights), 1.0)
        mean_probs = tf.reduce_sum(tf.nn.softmax(logits, axis=-1) * weights, axis=[0, 1]) / count
        mean_hard = tf.reduce_sum(hard * weights, axis=[0, 1]) / count
        return {"quantized": tf.cast(quantized, self.compute_dtype), "codes": codes,
                "perplexity": _perplexity(mean_probs), "code_perplexity": _perplexity(mean_hard)}

    def get_config(self):
        return {**super().get_config(), "num_groups": self.num_groups,
                "num_entries": self.num_entries, "code_dim": self.code_dim, "seed": self.seed,
                "logit_std": self.logit_std}


def _perplexity(mean_probs):
    """sum over groups of exp(-sum_v p log p), for [G, V] probabilities."""
    entropy = -tf.reduce_sum(mean_probs * tf.math.log(mean_probs + 1e-7), axis=-1)
    return tf.reduce_sum(tf.exp(entropy))
