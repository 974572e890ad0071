"""Conformer encoders over the log-mel (Gulati et al., 2020; Belanich et al., 2022, section 2.2).

Section 2.2: 80-bin log-mels, a 3-layer 1D convolutional feature encoder, two convolutions of stride
two (time / 4), then 24 Conformer layers; the 1024-dimensional output of the 12th is the embedding
(CAP12, Shor et al., 2022). The pre-trained CAP12 weights are not public, so `cap12` here is the
architecture only (random weights), and `small` is a CPU-sized variant of the same layout.

Where the `cap12` values come from:
  - the paper (section 2.2): 24 layers, model dim 1024, embedding = output of layer 12, 80 mel bins,
    3 feature-encoder layers, 2 stride-2 subsampling convolutions;
  - Gulati et al. (2020): 8 heads, feed-forward x4, dropout 0.1; subsampling kernel 3 with ReLU as
    in the usual Conformer subsampling (ESPnet's Conv2dSubsampling), here in 1D;
  - Zhang et al. (2020), the 600M-parameter Conformer XL family that Shor et al. (2022) pre-train:
    depthwise kernel 5, and no relative positions in attention;
  - neither: the feature encoder's 512 channels (as wav2vec 2.0's, Baevski et al., 2020) and
    kernel 3 are our choice.
That gives 586M parameters for all 24 layers (section 1: "600M+"), 296M up to layer 12.

Everything is padding-aware: a clip gives the same valid outputs whatever it is batched with. Padded
time steps are zeroed before every convolution (so no kernel sees the values a pipeline left there,
e.g. log(offset) from zero-padded audio), self-attention never attends to them, and the returned
sequence is zero on them.
"""

import dataclasses

import keras
import tensorflow as tf

from vb_keras.models import masking
from vb_keras.params import CONFORMER_FRONTEND

NUM_MEL_BINS = CONFORMER_FRONTEND.num_mel_bins        # 80 (section 2.2)
FEATURE_ENCODER_LAYERS = 3                            # section 2.2
SUBSAMPLING_STAGES = 2                                # section 2.2: "two strides of two"
SUBSAMPLING_KERNEL = 3                                # the usual Conformer subsampling kernel
TIME_STRIDE = 2 ** SUBSAMPLING_STAGES                 # log-mel frames per output step
# PyTorch's BatchNorm defaults, as in resnet.py. Not synchronised across replicas: given a mask,
# Keras computes the (masked) batch moments per replica.
_BN = dict(momentum=0.9, epsilon=1e-5)


@dataclasses.dataclass(frozen=True)
class ConformerConfig:
    """Hyperparameters of a Conformer encoder.

    Attributes:
      name: short name (a key of CONFORMER_CONFIGS for the shipped ones).
      num_layers: Conformer blocks of the full model.
      model_dim: width of the blocks (and of the embedding).
      num_heads: self-attention heads; must divide model_dim.
      feed_forward_multiplier: hidden width of the feed-forward modules, in multiples of model_dim.
      conv_kernel_size: kernel of the depthwise convolution in each convolution module.
      feature_encoder_channels: width of the 3-layer 1D convolutional feature encoder.
      feature_encoder_kernel: kernel of the feature encoder's convolutions.
      embedding_layer: 1-based index of the block whose output is the embedding.
      dropout: rate of every dropout (feed-forward, attention, convolution, after the positions).
    """
    name: str
    num_layers: int
    model_dim: int
    num_heads: int
    feed_forward_multiplier: int
    conv_kernel_size: int
    feature_encoder_channels: int
    feature_encoder_kernel: int
    embedding_layer: int
    dropout: float = 0.1

    def __post_init__(self):
        for field in ("num_layers", "model_dim", "num_heads", "feed_forward_multiplier",
                      "conv_kernel_size", "feature_encoder_channels", "feature_encoder_kernel"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be a positive integer, got {getattr(self, field)}")
        if self.model_dim % self.num_heads:
            raise ValueError(f"model_dim ({self.model_dim}) must be divisible by num_heads "
                             f"({self.num_heads})")
        if not 1 <= self.embedding_layer <= self.num_layers:
            raise ValueError(f"embedding_layer must lie in [1, num_layers={self.num_layers}], got "
                             f"{self.embedding_layer}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")


CONFORMER_CONFIGS = {
    # Section 2.2's embedder; which values are the paper's and which the literature's: see above.
    "cap12": ConformerConfig(name="cap12", num_layers=24, model_dim=1024, num_heads=8,
                             feed_forward_multiplier=4, conv_kernel_size=5,
                             feature_encoder_channels=512, feature_encoder_kernel=3,
                             embedding_layer=12, dropout=0.1),
    # CPU-sized, for random-weight use and tests: Gulati et al.'s Conformer (S) width and heads
    # (144, 4) with 4 blocks, kernel 15, the embedding from the last block.
    "small": ConformerConfig(name="small", num_layers=4, model_dim=144, num_heads=4,
                             feed_forward_multiplier=4, conv_kernel_size=15,
                             feature_encoder_channels=144, feature_encoder_kernel=3,
                             embedding_layer=4, dropout=0.1),
}


def subsampled_lengths(num_frames, stages=SUBSAMPLING_STAGES):
    """Valid output steps for `num_frames` valid log-mel frames (ints, arrays or tensors).

    Each stride-2 convolution maps n steps to ceil(n / 2), so two give ceil(n / 4); a padded batch
    of T frames gives ceil(T / 4) steps.
    """
    lengths = num_frames
    for _ in range(stages):
        lengths = (lengths + 1) // 2
    return lengths


def _valid(lengths, like):
    """[batch, time, 1] mask in `like`'s dtype: 1 on the first lengths[b] steps of row b, else 0."""
    return masking.step_mask(lengths, tf.shape(like)[1], like.dtype)[:, :, None]


def block_parameters(model_dim, feed_forward_multiplier, conv_kernel_size):
    """Parameters of one `ConformerBlock` (BatchNorm's moving mean and variance included)."""
    d, m, k = model_dim, feed_forward_multiplier, conv_kernel_size
    feed_forward = 2 * d + (d * m * d + m * d) + (m * d * d + d)       # LN, two Dense
    attention = 2 * d + 4 * (d * d + d)                                 # LN, Q K V and output
    convolution = 2 * d + (d * 2 * d + 2 * d) + k * d + 4 * d + (d * d + d)   # LN, pw, dw, BN, pw
    return 2 * feed_forward + attention + convolution + 2 * d          # + final LN


def count_parameters(config: ConformerConfig, output_layer: int | None = None) -> int:
    """Parameters of `build_conformer_encoder(config, output_layer)`, without building it."""
    output_layer = _check_output_layer(config, output_layer)
    c, k, d = config.feature_encoder_channels, config.feature_encoder_kernel, config.model_dim
    encoder = (NUM_MEL_BINS * c * k + 3 * c) + (FEATURE_ENCODER_LAYERS - 1) * (c * c * k + 3 * c)
    subsampling = (c * d * SUBSAMPLING_KERNEL + d) + (SUBSAMPLING_STAGES - 1) * (
        d * d * SUBSAMPLING_KERNEL + d)
    blocks = output_layer * block_parameters(d, config.feed_forward_multiplier,
                                             config.conv_kernel_size)
    return encoder + subsampling + blocks


@keras.saving.register_keras_serializable(package="vb_keras")
class FeatureEncoder(keras.layers.Layer):
    """The 3-layer 1D convolutional feature encoder of section 2.2, at the log-mel frame rate.

    Each layer is Conv1D ("same", stride 1) -> LayerNorm -> swish. LayerNorm rather than BatchNorm
    because it normalises each frame alone, so padding cannot enter its statistics.

    Args:
      channels: output width of every layer.
      kernel_size: kernel of every layer.
      num_layers: 3 in section 2.2.

    Call arguments:
      x: float [batch, frames, mels].
      num_frames: int [batch], valid frames of each row.
    """

    def __init__(self, channels, kernel_size=3, num_layers=FEATURE_ENCODER_LAYERS, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.num_layers = int(num_layers)
        self.convs = [keras.layers.Conv1D(self.channels, self.kernel_size, padding="same",
                                          dtype=self.dtype_policy, name=f"conv{i + 1}")
                      for i in range(self.num_layers)]
        self.norms = [keras.layers.LayerNormalization(dtype=self.dtype_policy, name=f"norm{i + 1}")
                      for i in range(self.num_layers)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = shape[:-1] + (self.channels,)
            norm.build(shape)

    def call(self, x, num_frames):
        valid = _valid(num_frames, x)
        for conv, norm in zip(self.convs, self.norms):
            # A stride-1 "same" convolution pads (kernel - 1) // 2 on the left whatever the length,
            # so zeroing the padded frames makes a padded row see the zeros an unpadded one does.
            x = tf.nn.silu(norm(conv(x * valid)))
        return x * valid

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.channels,)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "kernel_size": self.kernel_size,
                "num_layers": self.num_layers}


@keras.saving.register_keras_serializable(package="vb_keras")
class ConvSubsampling(keras.layers.Layer):
    """The two stride-2 convolutions of section 2.2 (time / 4), each Conv1D -> ReLU.

    Keras's "same" padding for stride 2 puts the extra zero on the left only for odd lengths, which
    would shift a clip's frames against the kernel depending on how long its batch is. Instead each
    stage pads (kernel - 1) // 2 zeros on the left always and convolves "valid", so output t always
    covers the same frames and n steps give ceil(n / 2).

    Args:
      filters: output width (the model dimension).
      kernel_size: kernel of both convolutions (3, as the usual Conformer subsampling).
      num_stages: stride-2 convolutions (2 in section 2.2).

    Call arguments:
      x: float [batch, frames, channels].
      num_frames: int [batch], valid frames of each row.

    Returns:
      [batch, ceil(frames / 2 ** num_stages), filters], zero on padded steps.
    """

    def __init__(self, filters, kernel_size=SUBSAMPLING_KERNEL, num_stages=SUBSAMPLING_STAGES,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.num_stages = int(num_stages)
        self.convs = [keras.layers.Conv1D(self.filters, self.kernel_size, strides=2,
                                          padding="valid", activation="relu",
                                          dtype=self.dtype_policy, name=f"conv{i + 1}")
                      for i in range(self.num_stages)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv in self.convs:
            conv.build(shape)
            shape = shape[:-1] + (self.filters,)

    def call(self, x, num_frames):
        left = (self.kernel_size - 1) // 2
        right = self.kernel_size - 1 - left
        lengths = tf.cast(num_frames, tf.int32)
        for conv in self.convs:
            x = tf.pad(x * _valid(lengths, x), [[0, 0], [left, right], [0, 0]])
            x = conv(x)
            lengths = subsampled_lengths(lengths, 1)
        return x * _valid(lengths, x)

    def compute_output_shape(self, input_shape):
        time = input_shape[1]
        steps = None if time is None else subsampled_lengths(time, self.num_stages)
        return (input_shape[0], steps, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "num_stages": self.num_stages}


@keras.saving.register_keras_serializable(package="vb_keras")
class SubsampledLengths(keras.layers.Layer):
    """Valid output steps from valid log-mel frames (`subsampled_lengths`) as a layer; int32."""

    def __init__(self, num_stages=SUBSAMPLING_STAGES, **kwargs):
        super().__init__(**kwargs)
        self.num_stages = int(num_stages)

    def call(self, num_frames):
        return subsampled_lengths(tf.cast(num_frames, tf.int32), self.num_stages)

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, num_frames):
        return keras.KerasTensor(num_frames.shape, dtype="int32")

    def get_config(self):
        return {**super().get_config(), "num_stages": self.num_stages}


@keras.saving.register_keras_serializable(package="vb_keras")
class SinusoidalPositionalEncoding(keras.layers.Layer):
    """Adds Vaswani et al.'s (2017) sinusoidal absolute position encoding to [batch, time, dim].

    Why absolute sinusoids added once after the subsampling: they have no parameters and no maximum
    length, and step t gets the same vector however much padding follows it, so padding invariance
    is kept. Gulati et al. use relative positions inside attention, but the Conformer XL family that
    CAP12 comes from drops those (Zhang et al., 2020) and the depthwise convolutions in every block
    already give each step its local, relative context; Keras's MultiHeadAttention stays usable.

    Args:
      max_wavelength: the longest wavelength (10000 as in Vaswani et al.).
    """

    def __init__(self, max_wavelength=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = float(max_wavelength)

    def call(self, x):
        dim = x.shape[-1]
        positions = tf.cast(tf.range(tf.shape(x)[1]), tf.float32)[:, None]        # [T, 1]
        index = tf.range(dim)
        # Channel 2i is sin and 2i + 1 is cos of position / max_wavelength ** (2i / dim); any dim.
        rates = tf.pow(self.max_wavelength, -tf.cast(index // 2 * 2, tf.float32) / dim)   # [D]
        angles = positions * rates[None, :]                                       # [T, D]
        encoding = tf.where(index % 2 == 0, tf.sin(angles), tf.cos(angles))
        return x + tf.cast(encoding, x.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "max_wavelength": self.max_wavelength}


@keras.saving.register_keras_serializable(package="vb_keras")
class FeedForwardModule(keras.layers.Layer):
    """Conformer feed-forward module (Gulati et al., 2020, section 2.3).

    LayerNorm -> Dense(m * d, swish) -> dropout -> Dense(d) -> dropout. Returns the residual branch
    only; `ConformerBlock` adds half of it (macaron). Works on each step alone, so padding cannot
    reach valid steps.

    Args:
      model_dim: d.
      multiplier: m (4 in Gulati et al.).
      dropout: rate of both dropouts.
    """

    def __init__(self, model_dim, multiplier=4, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.model_dim = int(model_dim)
        self.multiplier = int(multiplier)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.norm = keras.layers.LayerNormalization(dtype=policy, name="norm")
        self.expand = keras.layers.Dense(self.multiplier * self.model_dim, activation="silu",
                                         dtype=policy, name="expand")
        self.project = keras.layers.Dense(self.model_dim, dtype=policy, name="project")
        self.hidden_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="hidden_drop")
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="output_drop")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.norm.build(shape)
        self.expand.build(shape)
        self.project.build(shape[:-1] + (self.multiplier * self.model_dim,))

    def call(self, x, training=None):
        y = self.hidden_dropout(self.expand(self.norm(x)), training=training)
        return self.output_dropout(self.project(y), training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.model_dim,)

    def get_config(self):
        return {**super().get_config(), "model_dim": self.model_dim,
                "multiplier": self.multiplier, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="vb_keras")
class ConvolutionModule(keras.layers.Layer):
    """Conformer convolution module (Gulati et al., 2020, section 2.2).

    LayerNorm -> pointwise conv to 2d -> GLU -> depthwise 1-D conv -> BatchNorm -> swish ->
    pointwise conv -> dropout. Returns the residual branch only.

    Padded steps are zeroed before the depthwise convolution (a stride-1 "same" convolution pads the
    same way at any length, so valid steps then see what an unpadded clip sees), and BatchNorm is
    given the padding mask so training statistics come from valid steps only. The depthwise
    convolution has no bias: BatchNorm's offset follows it.

    Args:
      model_dim: d.
      kernel_size: depthwise kernel.
      dropout: rate of the output dropout.

    Call arguments:
      x: float [batch, time, d].
      lengths: int [batch], valid steps of each row.
    """

    def __init__(self, model_dim, kernel_size=31, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.model_dim = int(model_dim)
        self.kernel_size = int(kernel_size)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.norm = keras.layers.LayerNormalization(dtype=policy, name="norm")
        self.pointwise_in = keras.layers.Conv1D(2 * self.model_dim, 1, dtype=policy,
                                                name="pointwise_in")
        self.depthwise = keras.layers.DepthwiseConv1D(self.kernel_size, padding="same",
                                                      use_bias=False, dtype=policy,
                                                      name="depthwise")
        self.batch_norm = keras.layers.BatchNormalization(**_BN, dtype=policy, name="batch_norm")
        self.pointwise_out = keras.layers.Conv1D(self.model_dim, 1, dtype=policy,
                                                 name="pointwise_out")
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="output_drop")

    def build(self, input_shape):
        shape = tuple(input_shape)
        inner = shape[:-1] + (self.model_dim,)
        self.norm.build(shape)
        self.pointwise_in.build(shape)
        self.depthwise.build(inner)
        self.batch_norm.build(inner)
        self.pointwise_out.build(inner)

    def call(self, x, lengths, training=None):
        valid = _valid(lengths, x)
        value, gate = tf.split(self.pointwise_in(self.norm(x)), 2, axis=-1)
        y = self.depthwise(value * tf.sigmoid(gate) * valid)            # GLU, then zero padding
        y = self.batch_norm(y, training=training, mask=valid[..., 0] > 0)
        y = self.pointwise_out(tf.nn.silu(y))
        return self.output_dropout(y, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.model_dim,)

    def get_config(self):
        return {**super().get_config(), "model_dim": self.model_dim,
                "kernel_size": self.kernel_size, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="vb_keras")
class SelfAttentionModule(keras.layers.Layer):
    """Conformer multi-head self-attention module (Gulati et al., 2020, section 2.1): LayerNorm ->
    multi-head self-attention -> dropout. Returns the residual branch only.

    Every query attends only to the valid keys of its row (the mask zeroes padded keys' weights
    exactly), so valid outputs do not depend on padding; padded queries still get finite outputs.

    Args:
      model_dim: d.
      num_heads: heads, each of width d / num_heads.
      dropout: rate of the attention-weight and output dropouts.

    Call arguments:
      x: float [batch, time, d].
      lengths: int [batch], valid steps of each row (at least 1).
    """

    def __init__(self, model_dim, num_heads, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.model_dim = int(model_dim)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        if self.model_dim % self.num_heads:
            raise ValueError(f"model_dim ({self.model_dim}) must be divisible by num_heads "
                             f"({self.num_heads})")
        policy = self.dtype_policy
        self.norm = keras.layers.LayerNormalization(dtype=policy, name="norm")
        self.attention = keras.layers.MultiHeadAttention(
            self.num_heads, self.model_dim // self.num_heads, dropout=self.dropout, dtype=policy,
            name="attention")
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=policy, name="output_drop")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.norm.build(shape)
        self.attention.build(shape, shape)

    def call(self, x, lengths, training=None):
        time = tf.shape(x)[1]
        keys = masking.step_mask(lengths, time)                                   # [B, S]
        mask = tf.broadcast_to(keys[:, None, :], [tf.shape(x)[0], time, time])    # [B, T, S]
        y = self.norm(x)
        y = self.attention(y, y, attention_mask=mask, training=training)
        return self.output_dropout(y, training=training)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "model_dim": self.model_dim, "num_heads": self.num_heads,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="vb_keras")
class ConformerBlock(keras.layers.Layer):
    """One Conformer block (Gulati et al., 2020, section 2, eq. 1).

    x + FF/2, + MHSA, + conv, + FF/2, then LayerNorm. Its output is zero on padded steps.

    Args:
      model_dim, num_heads, feed_forward_multiplier, conv_kernel_size, dropout: as ConformerConfig.

    Call arguments:
      x: float [batch, time, model_dim].
      lengths: int [batch], valid steps of each row.
    """

    def __init__(self, model_dim, num_heads, feed_forward_multiplier=4, conv_kernel_size=31,
                 dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.model_dim = int(model_dim)
        self.num_heads = int(num_heads)
        self.feed_forward_multiplier = int(feed_forward_multiplier)
        self.conv_kernel_size = int(conv_kernel_size)
        self.dropout = float(dropout)
        policy = self.dtype_policy
        self.feed_forward_1 = FeedForwardModule(self.model_dim, self.feed_forward_multiplier,
                                                self.dropout, dtype=policy, name="feed_forward_1")
        self.self_attention = SelfAttentionModule(self.model_dim, self.num_heads, self.dropout,
                                                  dtype=policy, name="self_attention")
        self.convolution = ConvolutionModule(self.model_dim, self.conv_kernel_size, self.dropout,
                                             dtype=policy, name="convolution")
        self.feed_forward_2 = FeedForwardModule(self.model_dim, self.feed_forward_multiplier,
                                                self.dropout, dtype=policy, name="feed_forward_2")
        self.norm = keras.layers.LayerNormalization(dtype=policy, name="norm")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for module in (self.feed_forward_1, self.self_attention, self.convolution,
                       self.feed_forward_2, self.norm):
            module.build(shape)

    def call(self, x, lengths, training=None):
        x = x + 0.5 * self.feed_forward_1(x, training=training)
        x = x + self.self_attention(x, lengths, training=training)
        x = x + self.convolution(x, lengths, training=training)
        x = x + 0.5 * self.feed_forward_2(x, training=training)
        return self.norm(x) * _valid(lengths, x)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "model_dim": self.model_dim, "num_heads": self.num_heads,
                "feed_forward_multiplier": self.feed_forward_multiplier,
                "conv_kernel_size": self.conv_kernel_size, "dropout": self.dropout}


def _check_output_layer(config: ConformerConfig, output_layer: int | None) -> int:
    output_layer = config.embedding_layer if output_layer is None else output_layer
    if not 1 <= output_layer <= config.num_layers:
        raise ValueError(f"output_layer must lie in [1, {config.num_layers}] for {config.name!r}, "
                         f"got {output_layer}")
    return output_layer


def build_conformer_encoder(config: ConformerConfig, output_layer: int | None = None,
                            name: str | None = None) -> keras.Model:
    """Builds the section 2.2 encoder up to block `output_layer` (default: config.embedding_layer).

    Only blocks 1..output_layer are built, as the CAP12 embedders are truncated at their embedding
    layer: the later blocks cannot change the embedding, so building them would only cost memory.
    With `output_layer=config.num_layers` the whole encoder is built.

    Returns:
      A functional model on {"log_mel": float32 [batch, frames, 80], "num_frames": int32 [batch]
      (valid frames of each padded row, at least 1)} returning {"sequence": float [batch,
      ceil(frames / 4), model_dim], the output of block `output_layer`, zero on padded steps;
      "lengths": int32 [batch], valid steps of each row (`subsampled_lengths(num_frames)`)}.
    """
    output_layer = _check_output_layer(config, output_layer)
    log_mel = keras.Input((None, NUM_MEL_BINS), dtype="float32", name="log_mel")
    num_frames = keras.Input((), dtype="int32", name="num_frames")
    x = FeatureEncoder(config.feature_encoder_channels, config.feature_encoder_kernel,
                       name="feature_encoder")(log_mel, num_frames)
    x = ConvSubsampling(config.model_dim, name="subsampling")(x, num_frames)
    lengths = SubsampledLengths(name="lengths")(num_frames)
    x = SinusoidalPositionalEncoding(name="positions")(x)
    x = keras.layers.Dropout(config.dropout, name="positions_dropout")(x)
    for index in range(output_layer):
        x = ConformerBlock(config.model_dim, config.num_heads, config.feed_forward_multiplier,
                           config.conv_kernel_size, config.dropout,
                           name=f"block{index + 1}")(x, lengths)
    return keras.Model({"log_mel": log_mel, "num_frames": num_frames},
                       {"sequence": x, "lengths": lengths},
                       name=name or f"conformer_{config.name}_layer{output_layer}")
