"""What a model family is: one frozen `ModelFamily` entry, and its settings as one frozen config.

In the style of TF Model Garden's one-of configs: `TrainingParams.family` holds the config of the
model's family only (`ResNetConfig`, `FrozenEmbedderConfig`, ...), so a run records and compares
the settings it uses and no other family's. Each config field that a user may set is declared with
`setting`, which carries its --help text: bin/ defines the flags from the configs, so a family's
flags live with the family.
"""

import dataclasses
from typing import Any, Callable, ClassVar, Optional

import pandas as pd

from vb_keras.schema import LabelSchema


def setting(default, help: str, binding: bool = True, lower_bound=None):   # pylint: disable=redefined-builtin
    """A config field that is also a command-line flag of the same name.

    Args:
      default: the field's default (None: chosen from the data or by the family).
      help: the flag's --help text.
      binding: False for a setting that does not change what is trained (e.g. where caches
        live): a resumed run may change it, and runs are compared without it.
      lower_bound: the flag's lower bound, if any.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "binding": binding, "lower_bound": lower_bound})


def binding_fields(config) -> dict:
    """The fields of a family config that a resumed run must keep (see `setting`)."""
    return {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
            if field.metadata.get("binding", True)}


@dataclasses.dataclass(frozen=True)
class DataSource:
    """One data set as the readers see it.

    Attributes:
      data_dir: the data directory (HUME-VB or A-VB layout, or prepared TFRecords).
      table, schema: from `exvo.read_and_split` (split scheme applied, classes fitted).
      on_bad_audio: "skip" (leave unusable clips out, listed in bad_audio.csv) or "fail".
      report_dir: where bad_audio.csv goes (default: beside the data).
    """
    data_dir: str
    table: pd.DataFrame
    schema: LabelSchema
    on_bad_audio: str = "skip"
    report_dir: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """One model family: everything that differs between families, in one place.

    Attributes:
      name: what logs and help call it.
      config: its config dataclass (frozen; `TYPE` names it in config.json; fields from `setting`).
      model_names: the --model values it covers, in --help order.
      build: (params, schema, tasks, initial_biases, **reader.model_settings) -> an uncompiled
        Keras model (called inside `strategy.scope()`).
      reader: (params, DataSource) -> a reader of the split batches it trains and is evaluated
        on: `clip_count(split)`, `batches(split, training, batch_size, keep_ids)`,
        `model_settings` and `recorded` (what config.json records of its own choices).
      preprocessor: params -> what a servable puts in front of the model: `in_graph(waveform,
        num_samples)`, `on_host(clips)` (the way training and evaluation see a clip, to check an
        export against) and `trackables` (what an export must track besides the model).
      batch_size: its default global batch size.
      learning_rate: its default learning rate.
      demo_epochs: its default epochs on the embedded demo data (bin/ programs).
      switch: the name of a boolean flag that selects this family for model names another family
        also covers ("" for none; e.g. --fine_tune).
      optimizer: (params) -> the optimizer to compile with; None: Adam(learning_rate, epsilon).
      warmup: (params) -> the TrainingParams of a run whose trained weights start this model (the
        trainer trains or reuses it in the run's warmup/ folder), or None.
      initialize: (model, warm_model) -> None: starts `model` from the warm-up run's model.
      check: (params) -> None: refuses settings the family cannot train (UserInputError) before
        any work is done; None: nothing to check.
    """
    name: str
    config: type
    model_names: tuple
    build: Callable[..., Any]
    reader: Callable[..., Any]
    preprocessor: Callable[..., Any]
    batch_size: int
    demo_epochs: int
    learning_rate: float = 3e-4   # section 2.1
    switch: str = ""
    optimizer: Optional[Callable[..., Any]] = None
    warmup: Optional[Callable[..., Any]] = None
    initialize: Optional[Callable[..., Any]] = None
    check: Optional[Callable[..., Any]] = None

    @property
    def type(self) -> str:
        return self.config.TYPE


class FamilyConfig:
    """The base of every family config: `TYPE`, the family's name in config.json."""
    TYPE: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"type": self.TYPE, **dataclasses.asdict(self)}
