"""The model families, in one place (TF Model Garden's backbones/factory.py): which family a model
is, its settings as `TrainingParams.family`, and each family's builder, reader and preprocessor.
Nothing else branches on the family; a new family is one module and one entry in FAMILIES.

  ResNets (section 2.1):           waveform -> log-mel -> ResNet trunk        `resnets`
  heads on a frozen embedder (2.2): cached window embeddings -> head          `frozen_embedder`
  heads on a fine-tuned embedder:   waveform -> windows -> embedder -> head   `fine_tuned_embedder`
                                    (the same --model names, with --fine_tune)
"""

import dataclasses

import keras

from vb_keras.errors import UserInputError
from vb_keras.families import fine_tuned_embedder, frozen_embedder, resnets
from vb_keras.families.base import DataSource, ModelFamily
from vb_keras.params import TrainingParams

FAMILIES = (resnets.FAMILY, frozen_embedder.FAMILY, fine_tuned_embedder.FAMILY)
MODEL_NAMES = tuple(dict.fromkeys(name for entry in FAMILIES for name in entry.model_names))
# The boolean flags that pick a family for model names several families cover (--fine_tune).
SWITCHES = tuple(entry.switch for entry in FAMILIES if entry.switch)
_BY_TYPE = {entry.type: entry for entry in FAMILIES}

# Fields of configs written before the families had configs of their own (flat TrainingParams).
_FLAT_FAMILY_FIELDS = ("clip_seconds", "embedder", "window_seconds", "min_tail_seconds")


def family_for(model: str, switches: dict | None = None, flag: str = "--model") -> ModelFamily:
    """The family of model `model`, given the switches set ({"fine_tune": True}, ...).

    Raises:
      UserInputError: an unknown name (naming `flag` and the valid names), or a switch that no
        family of `model` answers to.
    """
    candidates = [entry for entry in FAMILIES if model in entry.model_names]
    if not candidates:
        raise UserInputError(f"{flag}: unknown model {model!r}; choose one of "
                             f"{', '.join(MODEL_NAMES)}")
    chosen = [name for name, value in (switches or {}).items() if value]
    for name in chosen:
        if not any(entry.switch == name for entry in candidates):
            raise UserInputError(f"--{name}: not available for {model} (only for "
                                 f"{', '.join(_switched_models(name))})")
    for entry in candidates:
        if entry.switch and entry.switch in chosen:
            return entry
    return next(entry for entry in candidates if not entry.switch)


def _switched_models(switch: str) -> tuple:
    return tuple(name for entry in FAMILIES if entry.switch == switch
                 for name in entry.model_names)


def run_name(params: TrainingParams) -> str:
    """What default run folders call the model: its name, and the switch that chose its family if
    one did (`conformer_autopool_fine_tune`), so that a frozen and a fine-tuned run of one head
    never meet in one folder."""
    switch = family_of(params).switch
    return f"{params.model}_{switch}" if switch else params.model


def family_of(params: TrainingParams) -> ModelFamily:
    """The family of `params`: its family config's, or for none, `params.model`'s default one."""
    if params.family is None:
        return family_for(params.model)
    entry = _BY_TYPE[type(params.family).TYPE]
    if params.model not in entry.model_names:
        raise UserInputError(f"--model: {params.model} is not one of the {entry.name} "
                             f"({', '.join(entry.model_names)})")
    return entry


def with_defaults(params: TrainingParams) -> TrainingParams:
    """`params` with its family's defaults for the settings left None (the family config, the
    batch size, the learning rate).

    Raises:
      UserInputError: an unknown model, or a family config of another family.
    """
    entry = family_of(params)
    if params.family is None:
        params = dataclasses.replace(params, family=entry.config())
    if params.batch_size is None:
        params = dataclasses.replace(params, batch_size=entry.batch_size)
    if params.learning_rate is None:
        params = dataclasses.replace(params, learning_rate=entry.learning_rate)
    return params


def params_to_dict(params: TrainingParams) -> dict:
    """`params` as config.json records them: the family config with its type."""
    values = dataclasses.asdict(params)
    values["family"] = None if params.family is None else params.family.to_dict()
    return values


def params_from_dict(values: dict) -> TrainingParams:
    """TrainingParams from config.json's "training" (`params_to_dict`), also as written before
    families had configs of their own (their fields flat among the others)."""
    values = dict(values)
    family = values.pop("family", None)
    flat = {name: values.pop(name) for name in _FLAT_FAMILY_FIELDS if name in values}
    if family is None:
        entry = family_for(values.get("model", TrainingParams.model))
        fields = {field.name for field in dataclasses.fields(entry.config)}
        family = {"type": entry.type, **{k: v for k, v in flat.items() if k in fields}}
    family = dict(family)
    entry = _BY_TYPE.get(family.pop("type", None))
    if entry is None:
        raise UserInputError(f"unknown model family in a config: {values.get('family')}")
    return TrainingParams(**values, family=entry.config(**family))


def binding_settings(params: TrainingParams) -> dict:
    """The settings a resumed run must keep, as config.json records them: every training field,
    and of the family config (its defaults where none is given) its type and the fields that
    change what is trained."""
    values = params_to_dict(params)
    family = params.family if params.family is not None else family_of(params).config()
    values["family"] = {"type": family.TYPE, **{
        field.name: getattr(family, field.name) for field in dataclasses.fields(family)
        if field.metadata.get("binding", True)}}
    return values


def with_family_settings(params: TrainingParams, **values) -> TrainingParams:
    """`params` with those of `values` that its family config has (others are ignored), e.g. a
    run's embedding cache moved for evaluation; None values are ignored too."""
    params = with_defaults(params)
    fields = {field.name for field in dataclasses.fields(params.family)}
    values = {name: value for name, value in values.items() if name in fields and value is not None}
    return dataclasses.replace(params, family=dataclasses.replace(params.family, **values))


def split_reader(params: TrainingParams, source: DataSource):
    """The reader of `params`'s family for one data set (`ModelFamily.reader`)."""
    params = with_defaults(params)
    return family_of(params).reader(params, source)


def build_model(params: TrainingParams, reader, schema, tasks,
                initial_biases: dict | None = None) -> keras.Model:
    """`params.model` on what `reader` found in the data (e.g. the embedding dimension)."""
    params = with_defaults(params)
    return family_of(params).build(params, schema, tasks, initial_biases,
                                   **reader.model_settings)


def preprocessor(params: TrainingParams):
    """What a servable puts in front of `params`'s model (`ModelFamily.preprocessor`)."""
    params = with_defaults(params)
    return family_of(params).preprocessor(params)


def optimizer(params: TrainingParams) -> keras.optimizers.Optimizer:
    """The optimizer `params`'s model trains with: its family's, else Adam (section 2.1)."""
    params = with_defaults(params)
    entry = family_of(params)
    if entry.optimizer is not None:
        return entry.optimizer(params)
    return keras.optimizers.Adam(params.learning_rate, epsilon=params.epsilon)


def settings() -> tuple:
    """Every family config field that is a flag, once each by name, in registry order:
    (name, dataclasses.Field, the families that have it)."""
    found = {}
    for entry in FAMILIES:
        for field in dataclasses.fields(entry.config):
            if "help" in field.metadata:
                found.setdefault(field.name, (field, []))[1].append(entry)
    return tuple((name, field, tuple(entries)) for name, (field, entries) in found.items())


def config_from_values(entry: ModelFamily, values) -> object:
    """`entry`'s config from a mapping of flag values (`values[name]` for each of its fields).

    Raises:
      UserInputError: a value the config refuses, naming its flag.
    """
    arguments = {field.name: values[field.name] for field in dataclasses.fields(entry.config)}
    try:
        return entry.config(**arguments)
    except ValueError as error:   # (name the setting the message starts with)
        named = sorted((str(error).find(name), name) for name in arguments if name in str(error))
        raise UserInputError(f"--{named[0][1] if named else next(iter(arguments))}: "
                             f"{error}") from None
