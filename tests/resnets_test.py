"""vb_keras.families.resnets: the ResNet family's config, defaults and builder (section 2.1)."""

import pytest

from conftest import run_main
from vb_keras.families import resnets
from vb_keras.models import multitask
from vb_keras.params import TrainingParams
from vb_keras.schema import HUME_VB


def test_the_crop_is_fitted_unless_given_and_must_be_positive():
    assert resnets.ResNetConfig().clip_seconds is None           # fitted to the Train clips
    assert resnets.ResNetConfig(clip_seconds=2.0).clip_seconds == 2.0
    with pytest.raises(ValueError, match="clip_seconds must be positive"):
        resnets.ResNetConfig(clip_seconds=0.0)


def test_the_family_covers_every_trunk_with_the_papers_batch_and_learning_rate():
    family = resnets.FAMILY
    assert family.model_names == tuple(sorted(multitask.TRUNKS))
    assert (family.batch_size, family.learning_rate) == (64, 3e-4)   # section 2.1
    assert family.type == "resnet" and not family.switch and family.warmup is None


def test_build_gives_one_output_per_task():
    params = TrainingParams(model="resnet18", tasks=("emotion", "country"))
    model = resnets.build(params, HUME_VB.with_classes(["a", "b"]), params.tasks)
    assert sorted(model.output_names) == ["country", "emotion"]
    assert model.get_layer("country").units == 2 and model.get_layer("emotion").units == 10


if __name__ == "__main__":
    run_main()
