"""The names shared across modules: model input keys, feature keys and SavedModel signatures.

Defined once so that the data pipelines, the models, the embedders and the servable agree on them.
"""

# The waveform models' inputs (section 2.1), the audio pipeline's features, and the servable's
# inputs: float32 [batch, samples] at 16 kHz in [-1, 1], and int32 [batch] true lengths.
WAVEFORM, NUM_SAMPLES = "waveform", "num_samples"
# The conformer heads' inputs (section 2.2), the embedding cache's features: float32 [batch,
# windows, D] window embeddings and int32 [batch] valid windows; EXTRA: per-clip extra inputs
# (section 3.1).
EMBEDDINGS, NUM_WINDOWS, EXTRA = "embeddings", "num_windows", "extra"
# A clip's id, added to the features when predictions are written (never a model input).
FILE_ID = "file_id"

# The signature a servable, and a TF-Hub-style embedder, answer on.
SIGNATURE = "serving_default"
# The servable's output beside the class probabilities: the most probable class's name, string
# [batch] (TF Serving clients read names, not indices into assets/classes.txt).
CLASS_NAME = "country_name"
# The embedder signature's input and output (TRILLsson's convention on TF Hub).
AUDIO_SAMPLES, EMBEDDING = "audio_samples", "embedding"
