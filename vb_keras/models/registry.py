"""The model families, in one place: what differs between the ResNets and the conformer heads.

In the style of TF Model Garden's backbones/factory.py: one frozen `ModelFamily` per family, and
`family(name)` to find a model's. A family says which model names it covers, how to build one, what
it reads in training and evaluation (`readers`), what a servable puts in front of it
(`audio_inputs`), and its default settings. Training, evaluation, export and the programs ask the
family instead of branching on it; a new family is one more entry in FAMILIES.

  ResNets (section 2.1):         waveform -> log-mel -> ResNet trunk, batches of 64.
  conformer heads (section 2.2): window embeddings of a frozen embedder -> head, batches of 128.
"""

import dataclasses
from typing import Callable

import keras

from vb_keras.errors import UserInputError
from vb_keras.models import audio_inputs, heads, multitask, readers
from vb_keras.params import TrainingParams


def _build_resnet(name, schema, tasks, dropout, initial_biases) -> keras.Model:
    return multitask.build_model(name, schema, tasks, dropout, initial_biases=initial_biases)


def _build_head(name, schema, tasks, dropout, initial_biases, embedding_dim) -> keras.Model:
    return heads.build_head_model(name, embedding_dim, schema, tasks, initial_biases,
                                  dropout=dropout)


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One model family.

    Attributes:
      name: what logs and help call it.
      model_names: the --model values it covers, in --help order.
      build: (name, schema, tasks, dropout, initial_biases, **reader.model_settings) -> an
        uncompiled Keras model (call inside `strategy.scope()`).
      reader: (params, data_dir, table, schema, on_bad_audio, report_dir, cache_root) -> a reader
        of the split batches it trains and is evaluated on (`readers`).
      audio_inputs: params -> what the servable puts in front of the model (`audio_inputs`).
      batch_size: its default global batch size.
      demo_epochs: its default epochs on the embedded demo data (bin/ programs).
    """
    name: str
    model_names: tuple
    build: Callable
    reader: Callable
    audio_inputs: Callable
    batch_size: int
    demo_epochs: int


RESNETS = ModelFamily(
    name="ResNets", model_names=tuple(sorted(multitask.TRUNKS)), build=_build_resnet,
    reader=readers.WaveformReader, audio_inputs=audio_inputs.WaveformInputs.from_params,
    # Section 2.1: batches of 64. The demo data (1,200 training clips) is learnt in a few epochs.
    batch_size=64, demo_epochs=8)
CONFORMER_HEADS = ModelFamily(
    name="conformer heads", model_names=tuple(sorted(heads.HEADS)), build=_build_head,
    reader=readers.EmbeddingReader, audio_inputs=audio_inputs.EmbedderInputs.from_params,
    # Section 2.2: batches of 128. From cached embeddings an epoch takes about a second, so the
    # demo gets more of them.
    batch_size=128, demo_epochs=40)

FAMILIES = (RESNETS, CONFORMER_HEADS)
MODEL_NAMES = tuple(name for entry in FAMILIES for name in entry.model_names)
_BY_NAME = {name: entry for entry in FAMILIES for name in entry.model_names}


def family(name: str, flag: str = "--model") -> ModelFamily:
    """The family of model `name`.

    Raises:
      UserInputError: an unknown name, naming `flag` and the valid names.
    """
    if name not in _BY_NAME:
        raise UserInputError(f"{flag}: unknown model {name!r}; choose one of "
                             f"{', '.join(MODEL_NAMES)}")
    return _BY_NAME[name]


def with_defaults(params: TrainingParams) -> TrainingParams:
    """`params` with its family's defaults for the settings left None (the batch size).

    Raises:
      UserInputError: an unknown model.
    """
    entry = family(params.model)
    if params.batch_size is None:
        params = dataclasses.replace(params, batch_size=entry.batch_size)
    return params


def split_reader(params: TrainingParams, data_dir, table, schema, on_bad_audio: str = "skip",
                 report_dir=None, cache_root: str | None = None):
    """The reader of `params.model`'s family for one data set (`ModelFamily.reader`)."""
    return family(params.model).reader(with_defaults(params), data_dir, table, schema,
                                       on_bad_audio, report_dir, cache_root)


def build_model(params: TrainingParams, reader, schema, tasks,
                initial_biases: dict | None = None) -> keras.Model:
    """`params.model` on what `reader` found in the data (e.g. the embedding dimension)."""
    return family(params.model).build(params.model, schema, tasks, params.dropout, initial_biases,
                                      **reader.model_settings)
