"""A pre-trained TF-Hub-style embedder inside a Keras model, so that it can be fine-tuned end to end
under the section 2.2 heads.

TF Hub's Reusable SavedModel convention (tensorflow.org/hub/reusable_saved_models) is what makes a
SavedModel fine-tunable: its root object has `variables`, `trainable_variables`,
`regularization_losses` and `__call__(inputs, training)`. YAMNet and EfficientAT in
shared/models, TRILLsson on TF Hub, and bin/export_embedder's Conformers follow it.

`hub.KerasLayer` is a tf_keras (Keras 2) layer and fails inside Keras 3 models, and Keras 3's
`TFSMLayer(trainable=True)` keeps TensorFlow's ':0' in its weight names, which Adam refuses as
slot-variable names (Keras 3.15). `TrainableEmbedder` loads the SavedModel with
`tf.saved_model.load` and wraps each of its variables in a `keras.Variable` that shares it (same
value, no copy) under a Keras-legal name, so Keras optimizers update the embedder's own variables
and `model.keras` saves their fine-tuned values.

  TrainableEmbedder  audio_samples [n, time] -> [n, D], the embedder's `__call__`
  WindowEmbeddings   a padded waveform batch -> the window embeddings [batch, windows, D] of
                     section 2.2 (`windows.embed_windows`), as the embedding cache computes them
  build_model        waveform -> WindowEmbeddings -> a section 2.2 head -> task outputs
"""

import re
from typing import Sequence

import keras
import tensorflow as tf

from vb_keras.utils import windows
from vb_keras.errors import UserInputError
from vb_keras.keys import EMBEDDING, EMBEDDINGS, NUM_SAMPLES, NUM_WINDOWS, WAVEFORM
from vb_keras.models import embedders, heads, hub
from vb_keras.params import WindowParams
from vb_keras.schema import TASKS, LabelSchema

# The embedder computes in float32 whatever the dtype policy: its FFTs and logs need the range.
_FLOAT32 = "float32"


def _keras_name(variable) -> str:
    """A TensorFlow variable's name as Keras allows it (no '/' or ':')."""
    return re.sub(r"[/:]", "_", variable.name.split(":")[0])


def load_reusable(handle: str, flag: str = "--embedder") -> tuple:
    """(the loaded SavedModel, D) of a TF-Hub-style embedder that can be fine-tuned.

    Raises:
      UserInputError: not a TF-Hub-style embedder, or not a Reusable SavedModel (no
        `trainable_variables`, `variables` or `__call__`).
    """
    loaded = embedders.load_saved_model(hub.resolve(handle, flag), flag)
    _, dimension = embedders.embedding_signature(loaded, handle, flag)
    if not (hasattr(loaded, "trainable_variables") and hasattr(loaded, "variables")
            and callable(loaded)):
        raise UserInputError(
            f"{flag}: {handle} cannot be fine-tuned: it is not a TF Hub Reusable SavedModel "
            "(its root has no trainable_variables, variables and __call__); train a head on it "
            "frozen instead (leave out --fine_tune)")
    return loaded, dimension


@keras.saving.register_keras_serializable(package="vb_keras")
class TrainableEmbedder(keras.layers.Layer):
    """A TF Hub Reusable SavedModel embedder as a Keras layer whose variables Keras trains.

    Args:
      handle: a local SavedModel directory, or a TF Hub / Kaggle handle or URL (`hub.resolve`
        downloads it once into TFHUB_CACHE_DIR).
      trainable_pattern: a regular expression; only the embedder's trainable variables whose
        names it finds (`re.search`) are trained, e.g. "block(7|8|9)" for the last blocks of a
        network whose variables are named by block. "" trains every trainable variable.
      flag: the flag that named the embedder, for error messages.

    Call arguments:
      audio_samples: float32 [n, time] at 16 kHz in [-1, 1].
      training: passed to the embedder's `__call__` (dropout, batch statistics).

    Returns:
      float32 [n, D], the embedder's `embedding`.

    Raises:
      UserInputError: the SavedModel is not a TF-Hub-style embedder, or it cannot be fine-tuned
        (not a Reusable SavedModel: no `trainable_variables` or `__call__`), or the pattern
        selects none of its trainable variables.
    """

    def __init__(self, handle: str, trainable_pattern: str = "", flag: str = "--embedder",
                 **kwargs):
        kwargs.setdefault("dtype", _FLOAT32)
        super().__init__(**kwargs)
        self.handle = handle
        self.trainable_pattern = trainable_pattern
        self.flag = flag
        loaded, self.dimension = load_reusable(handle, flag)
        self._embedder = loaded   # tracked: an export saves its functions and variables
        train = {id(variable) for variable in loaded.trainable_variables
                 if re.search(trainable_pattern, variable.name)}
        if not train:
            raise UserInputError(f"{flag}: {handle}: --trainable_embedder_variables="
                                 f"{trainable_pattern!r} selects none of its "
                                 f"{len(loaded.trainable_variables)} trainable variables")
        # keras.Variable(tf.Variable) shares the variable rather than copying it. Under the
        # layer's name, so that their paths say whose they are (e.g. "embedder/block1_kernel"):
        # an optimizer can give them their own learning rate (`optimizers.ScaledAdam`).
        with keras.name_scope(self.name, caller=self):
            self._shared = [keras.Variable(variable, trainable=id(variable) in train,
                                           name=_keras_name(variable))
                            for variable in loaded.variables]
        self.built = True

    def call(self, audio_samples, training=False):
        outputs = self._embedder(tf.cast(audio_samples, tf.float32), training=bool(training))
        return outputs[EMBEDDING] if isinstance(outputs, dict) else outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dimension)

    def get_config(self):
        return {**super().get_config(), "handle": self.handle,
                "trainable_pattern": self.trainable_pattern, "flag": self.flag}


@keras.saving.register_keras_serializable(package="vb_keras")
class WindowEmbeddings(keras.layers.Layer):
    """A padded waveform batch -> its non-overlapping windows, each embedded (section 2.2), the way
    the embedding cache and a frozen-embedder servable window a clip (`windows.embed_windows`).

    Args:
      embedder: a `TrainableEmbedder` (its own layer: trained with the model).
      window_seconds, min_tail_seconds: `WindowParams`.

    Call arguments:
      waveform: float32 [batch, samples], zero beyond each row's length.
      num_samples: int32 [batch] true lengths.

    Returns:
      (float32 [batch, windows, D] embeddings, int32 [batch] valid windows of each clip).
    """

    def __init__(self, embedder: TrainableEmbedder, window_seconds: float = 2.5,
                 min_tail_seconds: float = 0.5, **kwargs):
        kwargs.setdefault("dtype", _FLOAT32)
        super().__init__(**kwargs)
        if isinstance(embedder, dict):
            embedder = keras.saving.deserialize_keras_object(embedder)
        self.embedder = embedder
        self.window = WindowParams(window_seconds, min_tail_seconds)

    def call(self, waveform, num_samples, training=False):
        # Zero beyond each row's length, whatever the caller sent: the last window's padding.
        waveform *= tf.sequence_mask(num_samples, tf.shape(waveform)[1], dtype=waveform.dtype)
        return windows.embed_windows(lambda audio: self.embedder(audio, training=training),
                                     waveform, num_samples, self.window)

    def compute_output_spec(self, waveform, num_samples, training=False):
        return (keras.KerasTensor((waveform.shape[0], None, self.embedder.dimension), "float32"),
                keras.KerasTensor((waveform.shape[0],), "int32"))

    def get_config(self):
        return {**super().get_config(),
                "embedder": keras.saving.serialize_keras_object(self.embedder),
                "window_seconds": self.window.window_seconds,
                "min_tail_seconds": self.window.min_tail_seconds}


def head_name(model: keras.Model) -> str:
    """The name of the head model inside a `build_model` model."""
    return _HEAD_PREFIX + model.name


_HEAD_PREFIX = "head_of_"


def build_model(head: str, embedder: TrainableEmbedder, window: WindowParams,
                schema: LabelSchema, tasks: Sequence[str] = TASKS,
                initial_biases: dict | None = None, dropout: float = 0.0,
                name: str | None = None) -> keras.Model:
    """A section 2.2 head on a trainable embedder, from raw audio (call inside `strategy.scope()`).

    The head is `heads.build_head_model`'s, as one inner model named `head_name(model)`, so a head
    trained on the same embedder's cached embeddings can start it (`head.set_weights`).

    Returns:
      A functional model on {"waveform": float32 [batch, samples] (16 kHz, [-1, 1]),
      "num_samples": int32 [batch]} returning a dict keyed by task name.
    """
    name = name or f"{head}_fine_tuned_{'_'.join(tasks)}"
    waveform = keras.Input((None,), name=WAVEFORM)
    num_samples = keras.Input((), dtype="int32", name=NUM_SAMPLES)
    embedded, counts = WindowEmbeddings(embedder, window.window_seconds, window.min_tail_seconds,
                                        name="window_embeddings")(waveform, num_samples)
    head_model = heads.build_head_model(head, embedder.dimension, schema, tasks, initial_biases,
                                        dropout=dropout, name=_HEAD_PREFIX + name)
    outputs = head_model({EMBEDDINGS: embedded, NUM_WINDOWS: counts})
    return keras.Model({WAVEFORM: waveform, NUM_SAMPLES: num_samples}, outputs, name=name)
