#!/usr/bin/env python3
r"""The permutation test of section 3.1 (Belanich et al., 2022): does giving the model the class and
age labels as inputs help it predict the emotions?

  bin/permutation_test --embedder=/models/cap12                       # on the demo data
  bin/permutation_test --data_dir=/data/hume_vb_prepared --embedder=/models/cap12 --trials=50
  bin/permutation_test --data_dir=/data/emodb \
      --emotion_columns=Anger,Boredom,Disgust,Fear,Happiness,Sadness,Neutral --class_column=Sex \
      --embedder=/models/yamnet_hub --trials=50
  bin/permutation_test --conditions=true,incorrect --trials=20 --output_dir=runs/perm_quick

Without --output_dir the results go to runs/<data>_permutation_test (<data>: the name of
--data_dir's directory, or demo).

For each condition (true labels, labels shuffled across Train, incorrect labels) it trains --trials
fresh emotion-only heads with the one-hot class and the standardised age concatenated to the pooled
embedding, scores each on Val (true labels there), and compares the conditions with t-tests. It
writes <output_dir>/permutation_test.json (settings, every trial, summary) and
<output_dir>/permutation_test.png (Figure 1). Started again with the same flags (or more --trials),
it reuses the trials already finished.
"""

import os

from absl import flags

if __package__:  # installed: vb_permutation_test
    from . import choices, common_flags, training_flags
else:            # a checkout: bin/permutation_test
    import choices
    import common_flags
    import training_flags

from vb_keras.analysis import permutation
from vb_keras.data import embedding_cache
from vb_keras.utils import atomic
from vb_keras.models import embedders

# Model.
flags.DEFINE_enum("model", "conformer", choices.HEADS, "The head on the frozen embeddings "
                  "(section 2.2); the paper used 'a Conformer-based model'.")
# Embedder and data.
training_flags.define_family_flags(training_flags.EMBEDDER_FLAGS)
common_flags.define_data_flags()
common_flags.define_trust_flag()   # (an embedder is loaded)
common_flags.define_on_bad_audio_flag("the embedding cache's bad_audio.csv")
# The test.
flags.DEFINE_integer("trials", 50, "Trained models per condition (the paper: 50).", lower_bound=1)
flags.DEFINE_list("conditions", list(choices.PERMUTATION_CONDITIONS),
                  "Conditions to run: true (real class and age), shuffled (each permuted across "
                  "Train), incorrect (a wrong class and age for every Train clip).")
flags.DEFINE_integer("epochs", 30, "Epochs of every trial; each trial is scored after its last "
                     "epoch.", lower_bound=1)
flags.DEFINE_integer("batch_size", 128, "Batch size (section 2.2: 128).", lower_bound=1)
flags.DEFINE_float("learning_rate", 3e-4, "Adam learning rate (section 2.2: 3e-4).")
flags.DEFINE_integer("seed", 0, "Base seed; every condition and trial derives its own from it.",
                     lower_bound=0)
flags.DEFINE_string("output_dir", None, "Where permutation_test.json and permutation_test.png "
                    "go. Default: runs/<data>_permutation_test, <data> the name of --data_dir's "
                    "directory, or demo.")
flags.register_validator(
    "conditions", lambda names: bool(names) and set(names) <= set(choices.PERMUTATION_CONDITIONS)
    and len(set(names)) == len(names),
    message="--conditions must be distinct names among "
            f"{', '.join(choices.PERMUTATION_CONDITIONS)}")
flags.register_validator("learning_rate", lambda rate: rate > 0,
                         message="--learning_rate must be positive")

# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.analysis import permutation
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", f"{common_flags.data_name(FLAGS.data_dir)}_permutation_test")
    atomic.check_output_path(output_dir, "--output_dir")   # before extracting embeddings
    schema = common_flags.schema_from_flags(FLAGS)
    permutation.check_schema(schema)   # before reading data or extracting embeddings
    data_dir, table, schema = common_flags.read_data(FLAGS, schema)
    config = training_flags.frozen_embedder_config(FLAGS)
    window = config.window()
    embedder = embedders.load(config.embedder)
    sequences, cache_info, cache_dir = embedding_cache.sequences(
        embedder, window, data_dir, table, schema, FLAGS.on_bad_audio,
        root=config.embedding_cache)
    data = permutation.data_from_sequences(table, schema, sequences)
    settings = {
        "data_dir": os.path.abspath(data_dir), "split_scheme": FLAGS.split_scheme,
        "moved_val_speakers": FLAGS.moved_val_speakers if FLAGS.split_scheme == "paper" else None,
        "split_seed": FLAGS.split_seed if FLAGS.split_scheme == "paper" else None,
        "embedder": cache_info["embedder"], "embedder_description": embedder.description,
        "embedder_path": config.embedder,
        "window_seconds": window.window_seconds, "min_tail_seconds": window.min_tail_seconds,
        # The cache key hashes the embedder, the window and every clip file: changed data is caught.
        "embedding_cache_key": os.path.basename(os.path.normpath(cache_dir))}
    print(f"permutation test: {FLAGS.model} on {data.embedding_dim}-d embeddings of "
          f"{embedder.description}; {len(data.train)} Train / {len(data.val)} Val clips; "
          f"{FLAGS.trials} trials of {', '.join(FLAGS.conditions)}; {FLAGS.epochs} epochs each",
          flush=True)

    spent = []   # seconds of the trials this process ran, for the ETA

    def report(record, done, total):
        spent.append(record["seconds"])
        left = (total - done) * sum(spent) / len(spent)
        print(f"[{done}/{total}] {record['condition']} trial {record['trial']}: Val mean CCC "
              f"{record['val_mean_ccc']:.4f} ({record['seconds']:.1f} s; about {left / 60:.0f} "
              "min left)", flush=True)

    result = permutation.run(
        output_dir, data, head=FLAGS.model, trials=FLAGS.trials,
        conditions=FLAGS.conditions, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        learning_rate=FLAGS.learning_rate, seed=FLAGS.seed, settings=settings, on_trial=report)
    wanted = permutation.requested_trials(result["trials"], FLAGS.conditions, FLAGS.trials)
    plot = permutation.write_density_plot(
        wanted, os.path.join(output_dir, permutation.PLOT_FILE),
        title=f"{FLAGS.model}: class and age as inputs ({os.path.basename(data_dir.rstrip('/'))})")
    print(permutation.summary_text(result["summary"]))
    print(f"wrote {os.path.join(output_dir, permutation.RESULT_FILE)}")
    print(f"wrote {plot}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
