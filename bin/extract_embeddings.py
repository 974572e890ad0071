#!/usr/bin/env python3
r"""Embeds every clip of a data set with a frozen embedder, once, into the embedding cache.

  bin/extract_embeddings --embedder=/models/trillsson --data_dir=/data/hume_vb_prepared
  bin/extract_embeddings --embedder=../shared/models/yamnet_hub --data_dir=../shared/data/emodb \
      --class_column=Sex --emotion_columns=Anger,Boredom,Disgust,Fear,Happiness,Sadness,Neutral

One embedding per --window_seconds window of each clip (section 2.2). The cache key covers the
embedder, the window settings and the data, so bin/train --model=conformer_* with the same flags finds
it, and a changed embedder or window never reuses it. A killed run resumes at its first missing shard.
"""

from absl import flags

if __package__:  # installed: vb_extract_embeddings
    from . import common_flags, training_flags
else:            # a checkout: bin/extract_embeddings
    import common_flags
    import training_flags

common_flags.define_data_flags()
common_flags.define_trust_flag()   # (an embedder is loaded)
training_flags.define_family_flags(training_flags.EMBEDDER_FLAGS)
common_flags.define_on_bad_audio_flag("the cache's bad_audio.csv")
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import embedding_cache
    from vb_keras.models import embedders
    data_dir, table, schema = common_flags.read_data(FLAGS)
    config = training_flags.frozen_embedder_config(FLAGS)
    embedder = embedders.load(config.embedder)
    sequences, info, directory = embedding_cache.sequences(
        embedder, config.window(), data_dir, table, schema, FLAGS.on_bad_audio,
        config.embedding_cache)
    windows = sum(len(sequence) for sequence in sequences.values())
    print(f"{len(sequences)} clips, {windows} windows of {info['window_seconds']} s, "
          f"{info['dimension']}-d embeddings ({info['unusable']} unusable) in {directory}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
