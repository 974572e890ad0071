#!/usr/bin/env python3
r"""The paper's naive baseline (Table 1, first row) on any split of a data set.

Fits on Train (majority class, median age, mean emotion intensities), predicts the same for every clip
of --split, prints a Table-1-style row and writes the evaluation JSON.

  bin/baseline --split=Val --output_json=/tmp/naive_val.json
  bin/baseline --data_dir=../shared/data/emodb --split=Test \
      --emotion_columns=Anger,Boredom,Disgust,Fear,Happiness,Sadness,Neutral --class_column=Sex
"""

from absl import flags

if __package__:  # installed: vb_baseline
    from . import choices, common_flags
else:            # a checkout: bin/baseline
    import choices
    import common_flags

from vb_keras.utils import atomic

common_flags.define_data_flags()
flags.DEFINE_enum("split", "Val", choices.SPLITS, "Split to evaluate on (Test must be labelled).")
flags.DEFINE_string("output_json", None, "Where to write the evaluation JSON (optional).")
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.output_json:   # before the work
        atomic.check_output_path(FLAGS.output_json, "--output_json", directory=False)
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import exvo
    from vb_keras.evaluation import baseline, scoring
    data_dir, table, schema = common_flags.read_data(FLAGS)
    naive = baseline.fit_naive(exvo.select_split(table, schema, "Train"), schema)
    split = exvo.select_split(table, schema, FLAGS.split)
    y_true = scoring.labels_from_table(split, schema)
    result = scoring.evaluate(y_true, baseline.naive_predictions(naive, len(split)), schema,
                                 FLAGS.split)
    fitted = []   # (the emotions always predict their training means)
    if "country" in naive:
        fitted.append(f"majority class {schema.classes[naive['country']]!r}")
    if "age" in naive:
        fitted.append(f"median age {naive['age']:.1f}")
    if not fitted:
        fitted.append("mean training emotion intensities")
    print(f"naive baseline on {FLAGS.split} ({result.n_clips} clips): {', '.join(fitted)}")
    print(scoring.table_header(schema))
    print(scoring.table_row("NAIVE", "—", result))
    if FLAGS.output_json:
        scoring.write_json(result, FLAGS.output_json)
        print(f"wrote {FLAGS.output_json}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
