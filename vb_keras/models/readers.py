"""What each model family reads: the batches of a split, for training or evaluation.

  WaveformReader (ResNets, section 2.1): waveform batches from the audio pipeline
                                         (`pipeline.batches`);
  EmbeddingReader (conformer heads, section 2.2): sequences of window embeddings from a frozen
                                         embedder, computed once into the embedding cache
                                         (`embedding_cache`), then read from it.
Both yield (features, labels) with the same labels, so training, callbacks and evaluation do not care
which family they serve; `registry.ModelFamily.reader` says which one a model uses.
"""

import logging

import pandas as pd
import tensorflow as tf

from vb_keras.data import embedding_cache, exvo, pipeline
from vb_keras.errors import UserInputError
from vb_keras.models import embedders, hub
from vb_keras.params import PipelineParams, TrainingParams, WindowParams
from vb_keras.schema import LabelSchema


def load_embedder(path: str = "", flag: str = "--embedder") -> embedders.SavedModelEmbedder:
    """The embedder `path` names (a local directory, or a TF Hub / Kaggle handle or URL resolved
    into TFHUB_CACHE_DIR, `hub.resolve`), or (for "") the built-in small Conformer with random
    weights; errors name `flag`."""
    if not path:
        path = embedders.builtin_embedder_dir()
        logging.warning("no --embedder given: using the built-in small Conformer with RANDOM, "
                        "UNTRAINED weights (%s). Its embeddings carry little; pass "
                        "--embedder=/path/to/a/TF-Hub-style/SavedModel for real results.", path)
    else:
        path = hub.resolve(path, flag)
    return embedders.SavedModelEmbedder(path, flag)


def embedding_sequences(embedder, window: WindowParams, data_dir, table: pd.DataFrame,
                        schema: LabelSchema, on_bad_audio: str = "skip",
                        cache_root: str | None = None, progress: bool = True) -> tuple:
    """(sequences, cache info, cache directory) for every clip of `data_dir`, extracting them into
    the cache first if this embedder, window and data have not been seen before."""
    root = cache_root or embedding_cache.default_cache_root()
    directory = embedding_cache.cache_directory(root, embedder, window, data_dir, table)
    if embedding_cache.is_complete(directory):
        logging.info("reusing the embedding cache %s", directory)
    else:
        embedding_cache.extract(embedder, data_dir, table, schema, directory, window, on_bad_audio,
                                progress)
    sequences, info = embedding_cache.load(directory)
    return sequences, info, directory


class WaveformReader:
    """Waveform batches of any split of one data set (the ResNets).

    Args:
      params: the training settings (batch size, crop, seed); `batch_size` resolved
        (`registry.with_defaults`).
      data_dir, table, schema: the data set (`exvo.read_and_split`).
      on_bad_audio: "skip" or "fail".
      report_dir: where bad_audio.csv goes.
      cache_root: unused (the embedding readers' cache).

    Attributes:
      model_settings: what the model builder needs to know from the data (nothing here).
      cache_info, cache_dir: None (no embedding cache).
      train_clip_seconds: the training crop: `params.clip_seconds`, or when that is None, fitted
        to the Train clips' lengths (`pipeline.fitted_clip_seconds`) once the training batches
        are made (None until then).
      recorded: what config.json records of the reader's choices (the crop).
    """

    def __init__(self, params: TrainingParams, data_dir, table: pd.DataFrame, schema: LabelSchema,
                 on_bad_audio: str = "skip", report_dir=None, cache_root: str | None = None):
        del cache_root
        self.params = params
        self.data_dir, self.table, self.schema = data_dir, table, schema
        self.on_bad_audio, self.report_dir = on_bad_audio, report_dir
        self.model_settings = {}
        self.cache_info = self.cache_dir = None
        self.train_clip_seconds = params.clip_seconds

    @property
    def recorded(self) -> dict:
        """What config.json records of this reader's own choices: the training crop, once made."""
        return ({} if self.train_clip_seconds is None
                else {"train_clip_seconds": self.train_clip_seconds})

    def clip_count(self, split: str) -> int:
        """How many clips of `split` there are to read (before any unusable audio is found)."""
        return len(exvo.select_split(self.table, self.schema, split))

    def batches(self, split: str, training: bool, batch_size: int | None = None,
                keep_ids: bool = False, steps_per_epoch: int | None = None,
                first_epoch: int = 0) -> tf.data.Dataset:
        """(features, labels) batches of `split`; training batches are shuffled, cropped and full,
        with `steps_per_epoch` an endless stream of epochs from `first_epoch` on
        (`pipeline.epochs_of`)."""
        clips = pipeline.read_clips(self.data_dir, self.schema, split, self.on_bad_audio,
                                    self.report_dir, table=self.table)
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
        return pipeline.batches(clips, self.schema, pipeline_params, training, keep_ids,
                                steps_per_epoch, first_epoch)


class EmbeddingReader:
    """Embedding-sequence batches of any split of one data set (the conformer heads): the clips'
    window embeddings by `params.embedder`, extracted into the cache first if need be.

    Args: as `WaveformReader`'s; `cache_root` is the root of the embedding caches (default
    `embedding_cache.default_cache_root()`).

    Attributes:
      model_settings: {"embedding_dim": D} for the head builder.
      cache_info, cache_dir: the embedding cache read.
      recorded: what config.json records of the reader's choices (the cache).
    """

    def __init__(self, params: TrainingParams, data_dir, table: pd.DataFrame, schema: LabelSchema,
                 on_bad_audio: str = "skip", report_dir=None, cache_root: str | None = None):
        del report_dir   # bad audio is listed in the cache
        self.params = params
        self.data_dir, self.table, self.schema = data_dir, table, schema
        embedder = load_embedder(params.embedder)
        self._sequences, self.cache_info, self.cache_dir = embedding_sequences(
            embedder, params.window(), data_dir, table, schema, on_bad_audio, cache_root)
        self.model_settings = {"embedding_dim": int(self.cache_info["dimension"])}

    @property
    def recorded(self) -> dict:
        """What config.json records of this reader's own choices: the embedding cache read."""
        return {"embedding_cache": dict(self.cache_info, directory=self.cache_dir)}

    def clip_count(self, split: str) -> int:
        """How many clips of `split` have embeddings."""
        rows = exvo.select_split(self.table, self.schema, split)
        return int(rows[self.schema.id_column].isin(self._sequences.keys()).sum())

    def batches(self, split: str, training: bool, batch_size: int | None = None,
                keep_ids: bool = False, steps_per_epoch: int | None = None,
                first_epoch: int = 0) -> tf.data.Dataset:
        """(features, labels) batches of `split`; training batches are shuffled and full, with
        `steps_per_epoch` an endless stream of epochs from `first_epoch` on
        (`pipeline.epochs_of`)."""
        rows = exvo.select_split(self.table, self.schema, split)
        if rows.empty:
            raise UserInputError(f"{self.data_dir}: no {split} clips")
        clips = embedding_cache.clips_from_cache(rows, self._sequences, self.schema)
        return embedding_cache.sequence_batches(clips, self.schema,
                                                batch_size or self.params.batch_size, training,
                                                self.params.seed, keep_ids, steps_per_epoch,
                                                first_epoch)
