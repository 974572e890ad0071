"""The ResNets (Belanich et al., 2022, section 2.1): waveform -> log-mel -> ResNet trunk -> task
layers, trained from raw audio in batches of 64."""

import dataclasses
from typing import Optional

import keras

from vb_keras.data import pipeline
from vb_keras.families import waveform_input
from vb_keras.families.base import FamilyConfig, ModelFamily, setting
from vb_keras.models import multitask


def clip_seconds_setting():
    """The training crop's setting (the ResNets' and the fine-tuned embedders')."""
    return setting(
        None, "ResNets and fine-tuned embedders: training clips are randomly cropped or "
        "zero-padded to this length in seconds. Default: fitted to the Train clips, the shortest "
        f"multiple of {pipeline.FITTED_CLIP_STEP_SECONDS} s that holds "
        f"{round(100 * pipeline.FITTED_CLIP_SHARE)}% of them whole, at most "
        f"{pipeline.MAX_FITTED_CLIP_SECONDS} s.")


def check_clip_seconds(clip_seconds):
    if clip_seconds is not None and clip_seconds <= 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")


@dataclasses.dataclass(frozen=True)
class ResNetConfig(FamilyConfig):
    """The ResNets' own settings.

    Attributes:
      clip_seconds: the training crop; None: fitted to the Train clips
        (`pipeline.fitted_clip_seconds`; the paper gives none).
    """
    TYPE = "resnet"
    clip_seconds: Optional[float] = clip_seconds_setting()

    def __post_init__(self):
        check_clip_seconds(self.clip_seconds)


def build(params, schema, tasks, initial_biases=None) -> keras.Model:
    return multitask.build_model(params.model, schema, tasks, params.dropout,
                                 initial_biases=initial_biases)


FAMILY = ModelFamily(
    name="ResNets", config=ResNetConfig, model_names=tuple(sorted(multitask.TRUNKS)),
    build=build, reader=waveform_input.WaveformReader,
    preprocessor=waveform_input.WaveformInputs.from_params,
    # Section 2.1: batches of 64. The demo data (1,200 training clips) is learnt in a few epochs.
    batch_size=64, demo_epochs=8)
