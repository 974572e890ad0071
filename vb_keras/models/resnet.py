"""ResNet18/34/50 trunks over the log-mel image (He et al., 2016; Belanich et al., 2022, section 2.1).

One specification table covers every depth (architecture as data, as in TF Model Garden's resnet.py).
The layout is torchvision's "v1.5" (the stride of a bottleneck sits in its 3x3 convolution), so the
parameter counts equal torchvision's for a 1-channel input without the classifier.
"""

import keras
import tensorflow as tf

from vb_keras.models import masking

# depth -> (block kind, blocks per stage). Stage widths are 64, 128, 256, 512; bottlenecks expand x4.
RESNET_SPECS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
}
STAGE_WIDTHS = (64, 128, 256, 512)
# Stem conv, max-pool and stages 2-4 each halve time and frequency ("same" padding: ceil at each step).
TIME_STRIDE = 32
# PyTorch's BatchNorm defaults; statistics synchronised across replicas under tf.distribute, so a
# global batch split over devices normalises like one batch on one device.
_BN = dict(momentum=0.9, epsilon=1e-5, synchronized=True)


def resnet_trunk(image, depth: int, num_frames=None, name: str | None = None):
    """Applies the ResNet trunk to `image` [batch, time, mels, 1]; returns the last feature map.

    Args:
      image: a Keras tensor.
      depth: 18, 34 or 50.
      num_frames: optional Keras tensor, int [batch]: the valid frames of each row of a padded
        batch. Given it, the trunk is padding-exact: time is zero-padded to a multiple of 32 (so
        every strided convolution aligns the same way whatever the batch length) and every feature
        map is zeroed beyond each row's valid steps (so a clip's outputs equal those of the clip
        alone, whatever it is batched with). The weights are the same either way.

    Returns:
      [batch, ceil(time / 32), ceil(mels / 32), 512 (basic) or 2048 (bottleneck)].
    """
    if depth not in RESNET_SPECS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_SPECS)}, got {depth}")
    kind, stages = RESNET_SPECS[depth]
    prefix = name or f"resnet{depth}"

    def mask(x, stride, label):
        if num_frames is None:
            return x
        return TimeMask(stride, name=f"{label}_mask")(x, num_frames)

    if num_frames is not None:
        image = PadTime(TIME_STRIDE, name=f"{prefix}_pad_time")(image)
        image = mask(image, 1, f"{prefix}_input")
    x = keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False,
                            name=f"{prefix}_stem_conv")(image)
    x = keras.layers.BatchNormalization(**_BN, name=f"{prefix}_stem_bn")(x)
    x = keras.layers.ReLU(name=f"{prefix}_stem_relu")(x)
    x = mask(x, 2, f"{prefix}_stem")
    # Max over a window reaching into the zeroed padding equals the max over the valid part: the
    # values are >= 0 after the ReLU.
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=f"{prefix}_stem_pool")(x)
    x = mask(x, 4, f"{prefix}_stem_pool")
    block = _basic_block if kind == "basic" else _bottleneck_block
    total_stride = 4
    for stage, (width, blocks) in enumerate(zip(STAGE_WIDTHS, stages)):
        for index in range(blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            total_stride *= stride
            masker = (lambda x, label, s=total_stride: mask(x, s, label))
            x = block(x, width, stride, f"{prefix}_stage{stage + 1}_block{index + 1}", masker)
    return x


def _conv_bn(x, filters, kernel, stride, name, masker, relu=True):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return masker(x, name)   # BatchNorm's shift makes padding non-zero: zero it again


def _shortcut(x, filters, stride, name, masker):
    if stride == 1 and x.shape[-1] == filters:
        return x
    return _conv_bn(x, filters, 1, stride, f"{name}_shortcut", masker, relu=False)


def _basic_block(x, width, stride, name, masker):
    shortcut = _shortcut(x, width, stride, name, masker)
    x = _conv_bn(x, width, 3, stride, f"{name}_a", masker)
    x = _conv_bn(x, width, 3, 1, f"{name}_b", masker, relu=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, shortcut]))


def _bottleneck_block(x, width, stride, name, masker):
    shortcut = _shortcut(x, 4 * width, stride, name, masker)
    x = _conv_bn(x, width, 1, 1, f"{name}_a", masker)
    x = _conv_bn(x, width, 3, stride, f"{name}_b", masker)
    x = _conv_bn(x, 4 * width, 1, 1, f"{name}_c", masker, relu=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, shortcut]))


@keras.saving.register_keras_serializable(package="vb_keras")
class PadTime(keras.layers.Layer):
    """Zero-pads the time axis (axis 1) of [batch, time, ...] up to a multiple of `multiple`.

    TensorFlow's "same" padding of a strided convolution puts its odd pixel on the left or the
    right depending on the input length; padding to a multiple of the trunk's total stride makes
    the alignment the same for every batch length.
    """

    def __init__(self, multiple=TIME_STRIDE, **kwargs):
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        length = tf.shape(x)[1]
        extra = (-length) % self.multiple
        paddings = tf.concat([[[0, 0], [0, extra]], tf.zeros([tf.rank(x) - 2, 2], tf.int32)], 0)
        return tf.pad(x, paddings)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="vb_keras")
class TimeMask(keras.layers.Layer):
    """Zeroes a [batch, time, ...] feature map beyond each row's valid steps.

    Args:
      stride: input frames per time step of the map; row b has ceil(num_frames[b] / stride)
        valid steps (at least one).

    Call arguments: x, num_frames (int [batch], valid input frames).
    """

    def __init__(self, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.stride = int(stride)

    def call(self, x, num_frames):
        mask = masking.step_mask(masking.valid_steps(num_frames, self.stride), tf.shape(x)[1],
                                 x.dtype)
        return x * tf.reshape(mask, tf.concat([tf.shape(mask), tf.ones([tf.rank(x) - 2],
                                                                       tf.int32)], 0))

    def compute_output_shape(self, x_shape, num_frames_shape=None):
        return x_shape

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@keras.saving.register_keras_serializable(package="vb_keras")
class MaskedGlobalAveragePooling(keras.layers.Layer):
    """Average of a [batch, time, freq, channels] map over frequency and the valid time steps only.

    Section 2.1 average-pools the final convolutional layer; here the time steps that come only from
    batch padding are left out, so a clip's embedding does not depend on what it is batched with.

    Args:
      time_stride: input frames per time step of the feature map (32 for the ResNets).

    Call arguments:
      feature_map: [batch, time, freq, channels].
      num_frames: int [batch], valid input frames of each clip.
    """

    def __init__(self, time_stride=TIME_STRIDE, **kwargs):
        super().__init__(**kwargs)
        self.time_stride = int(time_stride)

    def call(self, feature_map, num_frames):
        mask = masking.step_mask(masking.valid_steps(num_frames, self.time_stride),
                                 tf.shape(feature_map)[1], feature_map.dtype)   # [B, T]
        total = tf.einsum("btfc,bt->bc", feature_map, mask)
        count = tf.reduce_sum(mask, axis=1, keepdims=True) * tf.cast(tf.shape(feature_map)[2],
                                                                     feature_map.dtype)
        return total / count

    def compute_output_shape(self, feature_map_shape, num_frames_shape=None):
        return (feature_map_shape[0], feature_map_shape[-1])

    def get_config(self):
        return {**super().get_config(), "time_stride": self.time_stride}
