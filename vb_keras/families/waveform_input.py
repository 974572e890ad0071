"""The input path of the families that read raw audio (the ResNets, the fine-tuned embedders): the
audio pipeline's waveform batches in training and evaluation, the servable's waveform as it is.

  WaveformReader: waveform batches of any split (`pipeline.batches`), training clips cropped to
                  the family config's `clip_seconds`, or to a crop fitted to the Train clips;
  WaveformInputs: the servable's inputs passed through (front end, windows and embedder are in
                  the model).
"""

import logging

import tensorflow as tf

from vb_keras.data import exvo, pipeline
from vb_keras.families.base import DataSource
from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.params import PipelineParams


class WaveformReader:
    """Waveform batches of any split of one data set.

    Args:
      params: the training settings (batch size, seed, and the family config's `clip_seconds`);
        `batch_size` resolved (`registry.with_defaults`).
      source: the data set.

    Attributes:
      model_settings: what the model builder needs to know from the data (nothing here).
      train_clip_seconds: the training crop: `params.family.clip_seconds`, or when that is None,
        fitted to the Train clips' lengths (`pipeline.fitted_clip_seconds`) once the training
        batches are made (None until then).
      recorded: what config.json records of the reader's choices (the crop).
    """

    def __init__(self, params, source: DataSource):
        self.params = params
        self.source = source
        self.model_settings = {}
        self.train_clip_seconds = params.family.clip_seconds

    @property
    def recorded(self) -> dict:
        """What config.json records of this reader's own choices: the training crop, once made."""
        return ({} if self.train_clip_seconds is None
                else {"train_clip_seconds": self.train_clip_seconds})

    def clip_count(self, split: str) -> int:
        """How many clips of `split` there are to read (before any unusable audio is found)."""
        return len(exvo.select_split(self.source.table, self.source.schema, split))

    def batches(self, split: str, training: bool, batch_size: int | None = None,
                keep_ids: bool = False, steps_per_epoch: int | None = None,
                first_epoch: int = 0) -> tf.data.Dataset:
        """(features, labels) batches of `split`; training batches are shuffled, cropped and full,
        with `steps_per_epoch` an endless stream of epochs from `first_epoch` on
        (`pipeline.epochs_of`)."""
        source = self.source
        clips = pipeline.read_clips(source.data_dir, source.schema, split, source.on_bad_audio,
                                    source.report_dir, table=source.table)
        crop = {}
        if training:
            if self.train_clip_seconds is None:
                lengths = pipeline.clip_lengths(clips)
                self.train_clip_seconds = pipeline.fitted_clip_seconds(lengths)
                logging.info("training crops of %.1f s: %d%% of the %d %s clips last at most that "
                             "(--clip_seconds sets it)", self.train_clip_seconds,
                             round(100 * pipeline.FITTED_CLIP_SHARE), len(lengths), split)
            crop = {"clip_seconds": self.train_clip_seconds}
        pipeline_params = PipelineParams(batch_size=batch_size or self.params.batch_size,
                                         seed=self.params.seed, **crop)
        return pipeline.batches(clips, source.schema, pipeline_params, training, keep_ids,
                                steps_per_epoch, first_epoch)


class WaveformInputs:
    """The servable's waveform, passed through: the model holds its own front end."""

    # What an export must track besides the model (nothing: everything is in the model).
    trackables = ()

    @classmethod
    def from_params(cls, params) -> "WaveformInputs":
        del params
        return cls()

    def in_graph(self, waveform, num_samples) -> dict:
        return {WAVEFORM: waveform, NUM_SAMPLES: num_samples}

    def on_host(self, clips) -> dict:
        return pipeline.padded_batch(clips)
