import keras
import numpy as np
import pytest

from conftest import run_main
from vb_keras.models import resnet

# torchvision's ResNet trunks (no classifier) with a 1-channel stem: an independent count of the
# trainable parameters; Keras adds BatchNorm's moving mean and variance (2 per channel) on top.
TORCHVISION_TRAINABLE = {18: 11_170_240, 34: 21_278_400, 50: 23_501_760}
PINNED_TOTAL = {18: 11_179_840, 34: 21_295_424, 50: 23_554_880}


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_trunk_parameter_counts_are_pinned(depth):
    image = keras.Input((None, 128, 1))
    trunk = keras.Model(image, resnet.resnet_trunk(image, depth))
    trainable = sum(int(np.prod(w.shape)) for w in trunk.trainable_weights)
    assert trainable == TORCHVISION_TRAINABLE[depth]
    assert trunk.count_params() == PINNED_TOTAL[depth]
    assert trunk.output.shape[-1] == (2048 if depth == 50 else 512)


def test_time_and_frequency_shrink_by_32():
    image = keras.Input((125, 128, 1))
    assert resnet.resnet_trunk(image, 18).shape[1:3] == (4, 4)


def test_unknown_depth_is_rejected():
    with pytest.raises(ValueError, match="18, 34, 50"):
        resnet.resnet_trunk(keras.Input((None, 128, 1)), 101)


def test_masked_pooling_ignores_padded_steps_and_round_trips():
    layer = resnet.MaskedGlobalAveragePooling(time_stride=32)
    feature_map = np.ones([2, 4, 2, 3], np.float32)
    feature_map[:, 2:] = 100.0                    # steps 2-3 come from padding for clip 0
    pooled = layer(feature_map, np.array([64, 128])).numpy()
    np.testing.assert_allclose(pooled[0], 1.0)     # 64 frames -> 2 steps
    np.testing.assert_allclose(pooled[1], 50.5)    # 128 frames -> all 4 steps
    clone = resnet.MaskedGlobalAveragePooling.from_config(layer.get_config())
    assert clone.time_stride == 32


if __name__ == "__main__":
    run_main()
