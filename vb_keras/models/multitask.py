"""The task model: waveform -> front end -> trunk -> pooling -> named task outputs.

Outputs are always named `emotion` (linear, one unit per emotion column), `country` (softmax over the
schema's classes) and `age` (linear, one unit), section 2.1; a single-task model (MTL "No" in Table 1)
has only its own, and a model of data that labels only some tasks (`LabelSchema.tasks`) only theirs.
Trunks come from a small registry that names the valid choices when asked for an
unknown one.
"""

from typing import Sequence

import keras
import numpy as np

from vb_keras import params
from vb_keras.keys import NUM_SAMPLES, WAVEFORM
from vb_keras.models import features
from vb_keras.models import resnet
from vb_keras import tasks as vb_tasks
from vb_keras.schema import TASKS, LabelSchema


# Under a mixed precision policy (e.g. mixed_bfloat16) the front end and the task layers stay float32:
# FFTs and logs need the range, and the losses the precision.
_FLOAT32 = "float32"


def _resnet(depth):
    def build(waveform, num_samples, frontend):
        normalized = features.WaveformNormalization(frontend.normalization, name="normalize",
                                                    dtype=_FLOAT32)(waveform, num_samples)
        log_mel = features.LogMelSpectrogram.from_params(frontend, name="log_mel",
                                                         dtype=_FLOAT32)(normalized)
        image = keras.layers.Reshape((-1, frontend.num_mel_bins, 1), name="image")(log_mel)
        frames = features.FrameCounts.from_params(frontend, name="frames", dtype=_FLOAT32)(
            num_samples)
        feature_map = resnet.resnet_trunk(image, depth, num_frames=frames)
        return resnet.MaskedGlobalAveragePooling(resnet.TIME_STRIDE, name="pool")(feature_map, frames)
    return build


# name -> (builder(waveform, num_samples, frontend) -> pooled embedding, front end)
TRUNKS = {
    "resnet18": (_resnet(18), params.RESNET_FRONTEND),
    "resnet34": (_resnet(34), params.RESNET_FRONTEND),
    "resnet50": (_resnet(50), params.RESNET_FRONTEND),
}


def check_model_name(name: str) -> str:
    if name not in TRUNKS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(sorted(TRUNKS))}")
    return name


def build_model(name: str, schema: LabelSchema, tasks: Sequence[str] = TASKS, dropout: float = 0.3,
                initial_biases: dict | None = None) -> keras.Model:
    """Builds a task model (call inside `strategy.scope()` when distributing).

    Args:
      name: a key of TRUNKS.
      schema: the label schema, with classes.
      tasks: the outputs to build; all three is the multitask model with hard parameter sharing.
      dropout: rate of the dropout between the pooled trunk output and the task layers (section 2.1;
        the paper does not give the rate).
      initial_biases: optional starting biases per task, e.g. the training means of the emotions and
        the median training age, so training does not spend its first steps finding the label scale.

    Returns:
      A functional model on {"waveform": float32 [batch, samples] (16 kHz, [-1, 1]),
      "num_samples": int32 [batch]} returning a dict keyed by task name.
    """
    build_trunk, frontend = TRUNKS[check_model_name(name)]
    tasks = vb_tasks.canonical(tasks)
    waveform = keras.Input((None,), name=WAVEFORM)
    num_samples = keras.Input((), dtype="int32", name=NUM_SAMPLES)
    embedding = build_trunk(waveform, num_samples, frontend)
    embedding = keras.layers.Dropout(dropout, name="dropout")(embedding)
    outputs = task_outputs(embedding, schema, tasks, initial_biases)
    return keras.Model({WAVEFORM: waveform, NUM_SAMPLES: num_samples}, outputs,
                       name=f"{name}_{'_'.join(tasks)}")


def task_outputs(embedding, schema: LabelSchema, tasks: Sequence[str],
                 initial_biases: dict | None = None) -> dict:
    """The task layers on a shared embedding [batch, D]: one float32 dense layer per task, named by
    the task (section 2.1; the conformer heads of section 2.2 use the same ones).

    Args:
      embedding: a Keras tensor [batch, D].
      schema: the label schema (emotion columns and classes size the layers).
      tasks: the tasks to build, in any order; outputs come back in canonical order.
      initial_biases: optional starting biases per task (see `build_model`).
    """
    initial_biases = initial_biases or {}

    def bias(task):
        value = initial_biases.get(task)
        if value is None:
            return "zeros"
        return keras.initializers.Constant(np.asarray(value, np.float32).tolist())

    outputs = {}
    for name in vb_tasks.canonical(tasks):
        task = vb_tasks.task(name)
        outputs[name] = keras.layers.Dense(task.units(schema), activation=task.activation,
                                           bias_initializer=bias(name), name=name,
                                           dtype=_FLOAT32)(embedding)
    return outputs
