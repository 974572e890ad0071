"""Heads on a pre-trained embedder fine-tuned end to end (`--fine_tune`): the section 2.2 heads
over the same windows, but the embedder's own weights are trained with the head, from raw audio.

The recipe, from the fine-tuning literature and chosen by measurement on EmoGator and EmoDB
(docs/user_guide.md, "Fine-tuning a pre-trained embedder"):
  1. heads first: the head is trained on the frozen embedder's cached window embeddings (the
     frozen-embedder family's run, kept in the run's warmup/ folder), which costs seconds an epoch
     (ULMFiT's gradual unfreezing, Howard & Ruder 2018; "linear probing then fine-tuning", Kumar et
     al., ICLR 2022: a random head's first gradients would otherwise distort the features);
  2. then the whole model from raw audio, the embedder at a tenth of the head's learning rate
     (discriminative learning rates: `optimizers.ScaledAdam`), on random training crops;
  3. early stopping on Val as for every family.
Only TF Hub Reusable SavedModels can be fine-tuned (`trainable_embedder.TrainableEmbedder`); the
servable is the whole model on raw audio, exported like a ResNet's.
"""

import dataclasses
from typing import Optional

import keras

from vb_keras.errors import UserInputError
from vb_keras.families import frozen_embedder, resnets, waveform_input
from vb_keras.families.base import FamilyConfig, ModelFamily, setting
from vb_keras.models import heads, optimizers, trainable_embedder

# The embedder layer's name: its variables' paths start with it (`ScaledAdam`'s pattern).
EMBEDDER_LAYER = "embedder"


@dataclasses.dataclass(frozen=True)
class FineTunedEmbedderConfig(frozen_embedder.FrozenEmbedderConfig):
    """The settings of a head on a fine-tuned embedder.

    Attributes:
      embedder, window_seconds, min_tail_seconds, embedding_cache: as `FrozenEmbedderConfig`'s.
      clip_seconds: the training crop (as `ResNetConfig`'s); None: fitted to the Train clips.
      embedder_learning_rate_scale: the embedder's learning rate over the head's.
      trainable_embedder_variables: a regular expression choosing which of the embedder's
        trainable variables are trained (`re.search` on their names); "" all of them.
      warmup: train the head on the frozen embedder's cached embeddings first.
    """
    TYPE = "fine_tuned_embedder"
    clip_seconds: Optional[float] = resnets.clip_seconds_setting()
    embedder_learning_rate_scale: float = setting(
        0.1, "Fine-tuning: the embedder's learning rate as a fraction of --learning_rate (the "
        "head's).", lower_bound=0)
    trainable_embedder_variables: str = setting(
        "", "Fine-tuning: a regular expression choosing which of the embedder's trainable "
        "variables are trained (re.search on their names, e.g. 'block(9|1[0-9])' for the last "
        "blocks of a network named by block); empty: all of them.")
    warmup: bool = setting(
        True, "Fine-tuning: train the head on the frozen embedder's cached embeddings first "
        "(--nowarmup: start fine-tuning from a random head).")

    def __post_init__(self):
        super().__post_init__()
        resnets.check_clip_seconds(self.clip_seconds)

    def frozen(self) -> frozen_embedder.FrozenEmbedderConfig:
        """The same embedder and windows, frozen (the warm-up's settings)."""
        return frozen_embedder.FrozenEmbedderConfig(self.embedder, self.window_seconds,
                                                    self.min_tail_seconds, self.embedding_cache)


def build(params, schema, tasks, initial_biases=None) -> keras.Model:
    config = params.family
    embedder = trainable_embedder.TrainableEmbedder(
        config.embedder, config.trainable_embedder_variables, name=EMBEDDER_LAYER)
    return trainable_embedder.build_model(params.model, embedder, config.window(), schema, tasks,
                                          initial_biases, params.dropout)


def optimizer(params) -> keras.optimizers.Optimizer:
    return optimizers.ScaledAdam(f"^{EMBEDDER_LAYER}/", params.family.embedder_learning_rate_scale,
                                 learning_rate=params.learning_rate, epsilon=params.epsilon)


def warmup(params):
    """The frozen-embedder run that starts the head (None with `warmup` off): the same head,
    tasks, losses and seed on the same embedder's cached embeddings, with that family's batch,
    learning rate and default schedule (until Val stops improving: an epoch there takes
    seconds)."""
    if not params.family.warmup:
        return None
    return dataclasses.replace(params, family=params.family.frozen(), batch_size=None,
                               learning_rate=None, epochs=None, early_stopping_patience=None)


def check(params) -> None:
    """Refuses, before any work, an embedder that cannot be fine-tuned (not a Reusable
    SavedModel), the built-in random Conformer included (`--embedder` is needed)."""
    if not params.family.embedder:
        raise UserInputError("--embedder: --fine_tune needs a pre-trained embedder (a TF Hub "
                             "Reusable SavedModel such as ../shared/models/efficientat_mn04_hub); "
                             "the built-in Conformer has random weights")
    trainable_embedder.load_reusable(params.family.embedder)


def initialize(model: keras.Model, warm_model: keras.Model) -> None:
    """Starts the head inside `model` from the warm-up run's trained head: every layer of the
    warm-up model that has weights (the pooling, the task layers, and with
    `--task_weighting=uncertainty` the learnt task weights) into `model`'s layer of that name."""
    targets = {layer.name: layer for layer in _layers(model) if layer.weights}
    for layer in _layers(warm_model):
        if layer.weights and layer.name in targets:
            targets[layer.name].set_weights(layer.get_weights())


def _layers(model: keras.Model):
    """The layers of `model` and of the models nested in it."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


FAMILY = ModelFamily(
    name="heads on a fine-tuned embedder", config=FineTunedEmbedderConfig,
    model_names=tuple(sorted(heads.HEADS)), build=build, reader=waveform_input.WaveformReader,
    preprocessor=waveform_input.WaveformInputs.from_params,
    # Every step runs the embedder forward and backward on raw audio, in batches of 32. The head
    # learns at 1e-3 and the embedder at 1e-4: on EmoGator, 3e-4 and 3e-5 reached after 5 epochs
    # what these did after 2 (docs/results.md).
    batch_size=32, demo_epochs=3, learning_rate=1e-3, switch="fine_tune", optimizer=optimizer,
    warmup=warmup,
    initialize=initialize, check=check)
