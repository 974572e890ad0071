"""A training run's directory read back (`trainer.train` wrote it), once, for every program.

`TrainedRun` holds what config.json records (the training settings, the schema with its classes,
the data and split it was trained on, the best epoch) and loads model.keras on first use.
"""

import functools
import re

import keras

from vb_keras.data import exvo
from vb_keras.errors import UserInputError
from vb_keras.families import registry
from vb_keras.params import TrainingParams
from vb_keras.schema import LabelSchema
from vb_keras.utils import run_directory
from vb_keras.utils.run_directory import RunDirectory


class TrainedRun:
    """A run directory: its config.json, and its model.keras (lazily, `model`).

    Use `TrainedRun.finished(model_dir)` for a run that must have ended (model.keras written);
    `TrainedRun(model_dir)` reads the config.json of any run that has started training.
    """

    def __init__(self, model_dir):
        self.model_dir = model_dir
        self.directory = RunDirectory(model_dir)
        if not self.directory.has_config():
            raise UserInputError(f"--model_dir: {model_dir} holds no {run_directory.CONFIG_FILE} "
                                 "(not a directory bin/train wrote)")
        self.config = self.directory.read_config()

    @classmethod
    def finished(cls, model_dir) -> "TrainedRun":
        """The run in `model_dir`, which must hold a trained model.

        Raises:
          UserInputError: model.keras is missing.
        """
        if not RunDirectory(model_dir).is_finished():
            raise UserInputError(f"--model_dir: {model_dir} holds no trained model "
                                 f"({run_directory.MODEL_FILE} missing)")
        return cls(model_dir)

    @functools.cached_property
    def params(self) -> TrainingParams:
        """The training settings the run was trained with (family defaults resolved)."""
        return registry.params_from_dict(self.config["training"])

    @functools.cached_property
    def schema(self) -> LabelSchema:
        """The label schema, with the classes fitted on its Train split."""
        return LabelSchema(**self.config["schema"])

    @property
    def tasks(self) -> tuple:
        return self.params.tasks

    @property
    def name(self) -> str:
        """The model and its tasks, e.g. "resnet18 (emotion+country+age)"."""
        return f"{self.params.model} ({'+'.join(self.tasks)})"

    @property
    def data_dir(self) -> str | None:
        """The data directory the run was trained on (absolute), if recorded."""
        return self.config.get("data_dir")

    @property
    def settings(self) -> dict:
        """The extra settings the run recorded (bin/train: the command line, the split flags)."""
        return self.config.get("settings", {})

    @property
    def split_settings(self) -> dict:
        """The split settings (`exvo.SPLIT_DEFAULTS`'s keys) the run recorded, else the defaults."""
        return {name: self.settings.get(name, default)
                for name, default in exvo.SPLIT_DEFAULTS.items()}

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights model.keras holds (None before the run ended)."""
        return self.config.get("best_epoch")

    @functools.cached_property
    def model(self) -> keras.Model:
        """model.keras, loaded on first use.

        Raises:
          UserInputError: it is missing, or cannot be loaded (one line naming the file).
        """
        path = self.directory.model_file
        if not self.directory.is_finished():
            raise UserInputError(f"--model_dir: {self.model_dir} holds no trained model "
                                 f"({run_directory.MODEL_FILE} missing)")
        try:
            # (compile=False: programs only predict with it, and model.keras holds no optimizer
            # state, which a compiled load would build and warn about)
            return keras.models.load_model(path, compile=False)
        except (TypeError, ValueError) as error:
            # Keras's safe_mode refuses code stored in the file (a Lambda layer's bytecode) with a
            # ValueError; a layer class nobody registered fails with a TypeError whose useful part
            # lies hundreds of characters in. Say which file and why, in one line.
            raise UserInputError(f"{path}: cannot be loaded ({load_error_reason(error)})") from None


def load_error_reason(error: Exception) -> str:
    """One line from Keras's error on loading a model file.

    A class Keras cannot find ("Could not locate class 'X'", deep inside a TypeError that starts
    with the model's whole config) is named, with what registers the package's classes.
    """
    text = str(error).strip()
    unknown = re.search(r"Could not locate (class|function) '([^']+)'", text)
    if unknown:
        return (f"Keras could not locate {unknown.group(1)} '{unknown.group(2)}': the package's own "
                "layers and losses register on `import vb_keras.models`; code of your own must be "
                "imported (and registered) before loading")
    return text.splitlines()[0] if text else type(error).__name__
