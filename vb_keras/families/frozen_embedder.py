"""Heads on a frozen embedder (Belanich et al., 2022, section 2.2): each clip's non-overlapping
~2.5 s windows are embedded once by a frozen TF-Hub-style embedder into the embedding cache, and
a head (`heads.HEADS`: mean, FC, LSTM, NetVLAD, AutoPool) is trained on the cached sequences in
batches of 128.

  EmbeddingReader: the cached window embeddings of any split (extracted first if need be);
  EmbedderInputs:  in a servable, the same windows and the frozen embedder, in the graph.
"""

import dataclasses

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from vb_keras.data import embedding_cache, exvo
from vb_keras.utils import windows
from vb_keras.errors import UserInputError
from vb_keras.families.base import DataSource, FamilyConfig, ModelFamily, setting
from vb_keras.keys import EMBEDDINGS, NUM_WINDOWS
from vb_keras.models import embedders, heads, hub
from vb_keras.params import WindowParams

_WINDOW = WindowParams()


@dataclasses.dataclass(frozen=True)
class FrozenEmbedderConfig(FamilyConfig):
    """The settings of a head on a frozen embedder.

    Attributes:
      embedder: the TF-Hub-style embedder (`embedders.load`): a local SavedModel directory (made
        absolute), a TF Hub / Kaggle handle or URL; "" the built-in small Conformer with random
        weights.
      window_seconds, min_tail_seconds: the windows (`WindowParams`).
      embedding_cache: root of the embedding caches (None: `embedding_cache.default_cache_root()`);
        not binding: a rerun may read another copy of the same cache.
    """
    TYPE = "frozen_embedder"
    embedder: str = setting(
        "", "Conformer heads: a TF-Hub-style SavedModel mapping 'audio_samples' [batch, time] at "
        "16 kHz to {'embedding': [batch, D]} (CAP12, TRILLsson, YAMNet, EfficientAT, ...): a local "
        "directory, or a TF Hub / Kaggle handle or URL, or the URL of a compressed SavedModel, "
        "downloaded once into TFHUB_CACHE_DIR. Default: the built-in small Conformer with random "
        "weights.")
    window_seconds: float = setting(
        _WINDOW.window_seconds, "Conformer heads: one embedding per non-overlapping window of "
        "this length.")
    min_tail_seconds: float = setting(
        _WINDOW.min_tail_seconds, "Conformer heads: a last, partial window is kept "
        "(zero-padded) if it holds at least this much audio.")
    embedding_cache: str | None = setting(
        None, "Conformer heads: root of the embedding caches. Default: "
        "$VB_KERAS_CACHE/embeddings or ~/.cache/vb_keras/embeddings.", binding=False)

    def __post_init__(self):
        object.__setattr__(self, "embedder", hub.recorded(self.embedder))
        self.window()   # validates the window settings

    def window(self) -> WindowParams:
        return WindowParams(window_seconds=self.window_seconds,
                            min_tail_seconds=self.min_tail_seconds)


def build(params, schema, tasks, initial_biases=None, embedding_dim=None) -> keras.Model:
    return heads.build_head_model(params.model, embedding_dim, schema, tasks, initial_biases,
                                  dropout=params.dropout)


class EmbeddingReader:
    """Embedding-sequence batches of any split of one data set: the clips' window embeddings by
    the config's embedder, extracted into the cache first if need be.

    Attributes:
      model_settings: {"embedding_dim": D} for the head builder.
      cache_info, cache_dir: the embedding cache read.
      recorded: what config.json records of the reader's choices (the cache).
    """

    def __init__(self, params, source: DataSource):
        self.params = params
        self.source = source
        config = params.family
        embedder = embedders.load(config.embedder)
        self._sequences, self.cache_info, self.cache_dir = embedding_cache.sequences(
            embedder, config.window(), source.data_dir, source.table, source.schema,
            source.on_bad_audio, config.embedding_cache)
        self.model_settings = {"embedding_dim": int(self.cache_info["dimension"])}

    @property
    def recorded(self) -> dict:
        """What config.json records of this reader's own choices: the embedding cache read."""
        return {"embedding_cache": dict(self.cache_info, directory=self.cache_dir)}

    def _rows(self, split) -> pd.DataFrame:
        return exvo.select_split(self.source.table, self.source.schema, split)

    def clip_count(self, split: str) -> int:
        """How many clips of `split` have embeddings."""
        rows = self._rows(split)
        return int(rows[self.source.schema.id_column].isin(self._sequences.keys()).sum())

    def batches(self, split: str, training: bool, batch_size: int | None = None,
                keep_ids: bool = False, steps_per_epoch: int | None = None,
                first_epoch: int = 0) -> tf.data.Dataset:
        """(features, labels) batches of `split`; training batches are shuffled and full, with
        `steps_per_epoch` an endless stream of epochs from `first_epoch` on
        (`pipeline.epochs_of`)."""
        rows = self._rows(split)
        if rows.empty:
            raise UserInputError(f"{self.source.data_dir}: no {split} clips")
        clips = embedding_cache.clips_from_cache(rows, self._sequences, self.source.schema)
        return embedding_cache.sequence_batches(clips, self.source.schema,
                                                batch_size or self.params.batch_size, training,
                                                self.params.seed, keep_ids, steps_per_epoch,
                                                first_epoch)


class EmbedderInputs:
    """What a servable puts in front of a head: windows and the frozen embedder, as the embedding
    cache computes them (`windows.clip_windows`)."""

    def __init__(self, embedder, window: WindowParams):
        self.embedder = embedder
        self.window = window
        self.trackables = (embedder.saved_model,)   # its variables, for the session loader

    @classmethod
    def from_params(cls, params) -> "EmbedderInputs":
        return cls(embedders.load(params.family.embedder), params.family.window())

    def in_graph(self, waveform, num_samples) -> dict:
        """Padded batch (zero beyond each row's length) -> {EMBEDDINGS: [batch, max windows, D],
        NUM_WINDOWS: [batch]}, windowed exactly as the embedding cache windows one clip."""
        embedded, counts = windows.embed_windows(self.embedder, waveform, num_samples,
                                                 self.window)
        return {EMBEDDINGS: embedded, NUM_WINDOWS: counts}

    def on_host(self, clips) -> dict:
        """The clips' sequences as the embedding cache computes them, padded into one batch."""
        sequences = [np.asarray(self.embedder(windows.clip_windows(clip, self.window)))
                     for clip in clips]
        most = max(len(s) for s in sequences)
        return {EMBEDDINGS: np.stack([np.pad(s, ((0, most - len(s)), (0, 0)))
                                      for s in sequences]),
                NUM_WINDOWS: np.array([len(s) for s in sequences], np.int32)}


FAMILY = ModelFamily(
    name="heads on a frozen embedder", config=FrozenEmbedderConfig,
    model_names=tuple(sorted(heads.HEADS)), build=build, reader=EmbeddingReader,
    preprocessor=EmbedderInputs.from_params,
    # Section 2.2: batches of 128. From cached embeddings an epoch takes about a second, so the
    # demo gets more of them.
    batch_size=128, demo_epochs=40)
