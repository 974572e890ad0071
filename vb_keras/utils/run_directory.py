"""A run directory: what `bin/train` (and `bin/pretrain`) write into `--model_dir` / `--output_dir`,
named in one place. The trainer and pre-training write it, `training.runs.TrainedRun` reads a
finished one back, the experiment runner asks whether a run is finished, the plots read its
history: all through this object, so a file is renamed (or a new one added) here alone.

    model.keras          the trained model (best epoch); written last, it marks a finished run
    config.json          the settings actually used, the schema, the data digest, versions
    history.csv          one row per epoch (numbered from 1)
    eval_<split>.json    an evaluation (eval_Val.json at the end of training)
    best.weights.h5      the best epoch's weights (+ .json: which epoch, which figure)
    training_curves.png  the curves of history.csv
    tensorboard/         TensorBoard's logs
    backup/              the whole training state of the last finished epoch; only while unfinished
    warmup/              a run directory of its own: the run that starts this one (fine-tuning)
"""

import dataclasses
import os

from vb_keras.utils import atomic

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"
CURVES_FILE = "training_curves.png"
TENSORBOARD_DIR = "tensorboard"
BACKUP_DIR = "backup"
WARMUP_DIR = "warmup"


@dataclasses.dataclass(frozen=True)
class RunDirectory:
    """The files of the run directory at `path` (which need not exist yet)."""
    path: str

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def model_file(self) -> str:
        return self.file(MODEL_FILE)

    @property
    def config_file(self) -> str:
        return self.file(CONFIG_FILE)

    @property
    def history_file(self) -> str:
        return self.file(HISTORY_FILE)

    @property
    def best_weights_file(self) -> str:
        return self.file(BEST_WEIGHTS_FILE)

    @property
    def curves_file(self) -> str:
        return self.file(CURVES_FILE)

    @property
    def tensorboard_dir(self) -> str:
        return self.file(TENSORBOARD_DIR)

    @property
    def backup_dir(self) -> str:
        return self.file(BACKUP_DIR)

    def eval_file(self, split: str) -> str:
        return self.file(f"eval_{split}.json")

    @property
    def warmup(self) -> "RunDirectory":
        """The run that starts this one (`families.base.ModelFamily.warmup`)."""
        return RunDirectory(self.file(WARMUP_DIR))

    def is_finished(self) -> bool:
        """Whether the run ended: its model file is written last."""
        return os.path.isfile(self.model_file)

    def has_config(self) -> bool:
        return os.path.isfile(self.config_file)

    def read_config(self, what: str = "the run's settings") -> dict:
        """config.json (a one-line error naming it if it cannot be read as `what`)."""
        return atomic.read_json(self.config_file, what)

    def write_config(self, config: dict) -> None:
        atomic.write_json(self.config_file, config)
