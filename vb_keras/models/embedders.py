"""Frozen audio embedders (section 2.2): one loading path for any TF-Hub-style SavedModel.

The convention is TRILLsson's on TF Hub: a SavedModel whose `serving_default` signature maps
`audio_samples` float32 [batch, time] (16 kHz, in [-1, 1]) to `{"embedding": float32 [batch, D]}`.
CAP12, TRILLsson, the YAMNet export in `shared/models/yamnet_hub`, and the project's own Conformer
(`export_conformer_embedder`, bin/export_embedder) all load through `SavedModelEmbedder`.

`hub.KerasLayer` is a tf_keras (Keras 2) layer and fails inside Keras 3 models, so the SavedModel is
loaded with `tf.saved_model.load` and called as a concrete signature.
"""

import hashlib
import json
import logging
import os

import keras
import tensorflow as tf

from vb_keras import params
from vb_keras.keys import AUDIO_SAMPLES, EMBEDDING, NUM_SAMPLES, SIGNATURE
from vb_keras.models import features, hub
from vb_keras.utils import atomic, model_safety
from vb_keras.utils.atomic import atomic_directory
from vb_keras.utils.cache import cache_root
from vb_keras.errors import UserInputError
from vb_keras.models import conformer, heads, hub

# Written next to an exported embedder: what it is, so identities and logs can say so.
EMBEDDER_INFO = "vb_keras_embedder.json"
# The linear layer a distilled Conformer maps its embedding into the teacher's space with.
PROJECTION = "distillation_projection"


class SavedModelEmbedder:
    """A TF-Hub-style audio embedder loaded from a SavedModel: a local directory, or a TF Hub /
    Kaggle handle or URL, which is fetched once into the TF Hub cache (`hub.resolve`) and read there.

    Attributes:
      path: the local directory.
      dimension: D, the embedding size.
      identity: a string that changes whenever the model does (the SavedModel fingerprint), used in
        embedding cache keys so a changed embedder never reuses stale embeddings.
      description: one line for logs (e.g. that an embedder is untrained).
    """

    def __init__(self, path: str, flag: str = "--embedder"):
        path = hub.resolve(path, flag)   # a local directory stays as it is
        self.path = os.path.abspath(path)
        loaded = load_saved_model(path, flag)
        self._signature, self.dimension = embedding_signature(loaded, path, flag)
        self.saved_model = loaded   # keeps the variables alive; an export tracks it
        self.identity = _fingerprint(self.path)
        self.description = _description(self.path)

    def __call__(self, audio_samples) -> tf.Tensor:
        """float32 [batch, time] at 16 kHz in [-1, 1] -> float32 [batch, D]."""
        return self._signature(**{AUDIO_SAMPLES: tf.convert_to_tensor(audio_samples, tf.float32)}
                               )[EMBEDDING]


def load(handle: str = "", flag: str = "--embedder") -> SavedModelEmbedder:
    """The embedder `handle` names (a local directory, or a TF Hub / Kaggle handle or URL
    downloaded once into TFHUB_CACHE_DIR, `hub.resolve`), or (for "") the built-in small Conformer
    with random weights; errors name `flag`."""
    if not handle:
        handle = builtin_embedder_dir()
        logging.warning("no %s given: using the built-in small Conformer with RANDOM, UNTRAINED "
                        "weights (%s). Its embeddings carry little; pass %s=/path/to/a/TF-Hub-"
                        "style/SavedModel for real results.", flag, handle, flag)
    else:
        handle = hub.resolve(handle, flag)
    return SavedModelEmbedder(handle, flag)


def load_saved_model(path: str, flag: str = "--embedder"):
    """`tf.saved_model.load(path)`, with one-line errors naming `flag` for a directory that is
    not a loadable SavedModel, or whose graph holds ops that touch files, processes or the
    network (`model_safety`: a foreign model is untrusted input)."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise UserInputError(f"{flag}: {path} is not a SavedModel directory "
                             "(saved_model.pb missing)")
    model_safety.check_saved_model(os.path.abspath(path), flag)
    try:
        return tf.saved_model.load(os.path.abspath(path))
    except Exception as error:  # pylint: disable=broad-except  (any load failure is bad input)
        raise UserInputError(f"{flag}: cannot load the SavedModel {path}: "
                             f"{str(error).splitlines()[0]}") from None


def embedding_signature(loaded, path, flag="--embedder") -> tuple:
    """(the `serving_default` signature, D) of a TF-Hub-style embedder, checked."""
    signature = loaded.signatures.get(SIGNATURE)
    if signature is None:
        raise UserInputError(f"{flag}: {path} has no {SIGNATURE!r} signature "
                             f"(it has {sorted(loaded.signatures)})")
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if AUDIO_SAMPLES not in inputs or EMBEDDING not in outputs:
        raise UserInputError(
            f"{flag}: {path}: {SIGNATURE} must map {AUDIO_SAMPLES!r} to {{{EMBEDDING!r}: "
            f"...}} (TF-Hub/TRILLsson convention); it maps {sorted(inputs)} to {sorted(outputs)}")
    dimension = outputs[EMBEDDING].shape[-1]
    if dimension is None:
        dimension = int(signature(**{AUDIO_SAMPLES: tf.zeros([1, 16000])})[EMBEDDING].shape[-1])
    return signature, int(dimension)


def _fingerprint(path) -> str:
    try:
        return "saved_model:" + tf.saved_model.experimental.read_fingerprint(path).singleprint()
    except Exception:  # pylint: disable=broad-except  (SavedModels from before TF 2.12 have none)
        digest = hashlib.sha256()
        for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
            file_path = os.path.join(path, name)
            if os.path.isfile(file_path):
                with open(file_path, "rb") as stream:
                    digest.update(stream.read())
        return "sha256:" + digest.hexdigest()


def _description(path) -> str:
    info_path = os.path.join(path, EMBEDDER_INFO)
    if os.path.isfile(info_path):
        with open(info_path) as stream:
            return json.load(stream).get("description", path)
    return path


def build_conformer_embedder(config_name: str = "small", seed: int = 0,
                             output_layer: int | None = None,
                             projection_dim: int = 0) -> keras.Model:
    """The project's Conformer as an embedder: waveform -> int16 scaling -> 80-band log-mel ->
    Conformer encoder -> mean over the output steps of the embedding layer (section 2.2).

    Weights are random (seeded); there is no pre-trained checkpoint to download here
    (`training.pretraining.embedder_from_pretraining` fills them from a bin/pretrain run).
    `output_layer` (default: the configuration's embedding layer) is the block whose output is
    pooled; the encoder inside is named `encoder_name(config_name, output_layer)`.
    `projection_dim` > 0 adds a linear layer (`PROJECTION`) after the mean: a distilled student's
    map into its teacher's space (`training.distillation`).

    Returns:
      A model on `audio_samples` float32 [batch, time] (16 kHz, [-1, 1], every sample valid)
      returning float32 [batch, projection_dim or model_dim].
    """
    if config_name not in conformer.CONFORMER_CONFIGS:
        raise UserInputError(f"unknown Conformer configuration {config_name!r}; choose one of "
                             f"{', '.join(sorted(conformer.CONFORMER_CONFIGS))}")
    config = conformer.CONFORMER_CONFIGS[config_name]
    frontend = params.CONFORMER_FRONTEND
    keras.utils.set_random_seed(seed)
    audio = keras.Input((None,), name=AUDIO_SAMPLES)
    num_samples = keras.layers.Lambda(
        lambda x: tf.fill(tf.shape(x)[:1], tf.shape(x)[1]), name=NUM_SAMPLES)(audio)
    normalized = features.WaveformNormalization(frontend.normalization, name="normalize")(
        audio, num_samples)
    log_mel = features.LogMelSpectrogram.from_params(frontend, name="log_mel")(normalized)
    frames = features.FrameCounts.from_params(frontend, name="frames")(num_samples)
    if output_layer is not None and not 1 <= output_layer <= config.num_layers:
        raise UserInputError(f"--layer: the {config_name} Conformer has layers 1 to "
                             f"{config.num_layers}, not {output_layer}")
    encoder = conformer.build_conformer_encoder(config, output_layer,
                                                name=encoder_name(config_name, output_layer))
    encoded = encoder({"log_mel": log_mel, "num_frames": frames})
    embedding = heads.MaskedMean(name="mean")(encoded["sequence"], encoded["lengths"])
    if projection_dim:
        embedding = keras.layers.Dense(projection_dim, name=PROJECTION)(embedding)
    return keras.Model(audio, embedding, name=f"conformer_{config_name}_embedder")


def encoder_name(config_name: str, output_layer: int | None = None) -> str:
    """The name of the Conformer encoder inside `build_conformer_embedder`'s model."""
    config = conformer.CONFORMER_CONFIGS[config_name]
    return f"conformer_{config_name}_layer{output_layer or config.embedding_layer}"


def export_conformer_embedder(model: keras.Model, export_dir: str, description: str) -> str:
    """Writes `model` (see `build_conformer_embedder`) as a TF-Hub-style SavedModel, atomically.

    The result has the TRILLsson signature, so `SavedModelEmbedder` (and TF Hub) load it like any
    other embedder, and it is a TF Hub Reusable SavedModel (`variables`, `trainable_variables`,
    `regularization_losses`, `__call__(audio_samples, training)` traced for both values of
    `training`), so that `trainable_embedder.TrainableEmbedder` can fine-tune it.
    """
    def call(audio_samples, training=False):
        return {EMBEDDING: model(audio_samples, training=training)}

    spec = tf.TensorSpec([None, None], tf.float32, name=AUDIO_SAMPLES)
    # Keras' ExportArchive, so that TF Serving's session-based loader restores the variables (a
    # Keras 3 model under a plain tf.saved_model.save root reloads in Python without them there).
    archive = keras.export.ExportArchive()
    archive.track(model)   # its root's `variables` and `trainable_variables`
    archive.add_endpoint(name=SIGNATURE, fn=lambda audio_samples: call(audio_samples),
                         input_signature=[spec])
    # The rest of TF Hub's Reusable SavedModel API, on the archive's root object (Keras offers no
    # public hook for attributes that are not signatures).
    root = archive._tf_trackable   # pylint: disable=protected-access
    root.regularization_losses = []
    root.__call__ = tf.function(call, autograph=False)
    for training in (False, True):
        root.__call__.get_concrete_function(spec, training=training)
    with atomic_directory(export_dir) as scratch:
        archive.write_out(scratch, verbose=False)
        atomic.write_json(os.path.join(scratch, EMBEDDER_INFO),
                          {"name": model.name, "dimension": int(model.output.shape[-1]),
                           "description": description})
    return export_dir


def builtin_embedder_dir(config_name: str = "small", seed: int = 0, root: str | None = None) -> str:
    """The project's untrained Conformer, exported once into the cache (`cache.cache_root()`)."""
    directory = os.path.join(root or cache_root(), "embedders",
                             f"conformer_{config_name}_seed{seed}_random_reusable")
    if not os.path.isfile(os.path.join(directory, "saved_model.pb")):
        logging.info("exporting the built-in %s Conformer (random weights) to %s", config_name,
                     directory)
        model = build_conformer_embedder(config_name, seed)
        export_conformer_embedder(
            model, directory, f"vb_keras {config_name} Conformer with RANDOM weights (seed {seed}): "
            "untrained, a stand-in until you pass --embedder=/path/to/CAP12_or_TRILLsson")
    return directory

