#!/usr/bin/env python3
r"""Reproduces Table 1 of Belanich et al. (2022): a grid of models, multitask and single-task, each
figure with a 95 per cent speaker-bootstrap confidence interval.

  bin/experiment --models=resnet18,conformer_autopool               # demo data: runs/demo_table1
  bin/experiment --data_dir=/data/hume_vb_prepared --embedder=/models/cap12 \
      --output_dir=runs/table1 --seeds=0,1,2                        # all eight models, three seeds

Per model it trains one multitask run (MTL "YES") and, for the single-task row (MTL "NO"), one run
per task, each task scored from its own model. Runs live in <output_dir>/runs/<model>_<tasks>_seed<k>;
a killed grid started again with the same flags reuses finished runs and resumes the unfinished
one. Writes table1_<split>.md/.csv/.json and side_by_side_*.png into --output_dir.
"""

import os

from absl import flags

if __package__:  # installed: vb_experiment
    from . import choices, common_flags, training_flags
else:            # a checkout: bin/experiment
    import choices
    import common_flags
    import training_flags

flags.DEFINE_list("models", list(choices.TABLE1_MODELS), "Models of the grid (Table 1: "
                  "resnet18/34/50 and the five conformer heads).")
flags.DEFINE_list("forms", list(choices.FORMS), "multitask (MTL YES) and/or single_task "
                  "(MTL NO: one model per task).")
flags.DEFINE_list("seeds", ["0"], "One training run per row and seed; with several, the table "
                  "gives mean ± standard deviation over seeds.")
flags.DEFINE_string("split", "Val", "Labelled split the table scores (Table 1: Val).")
flags.DEFINE_integer("bootstrap_resamples", 1000, "Speaker-bootstrap resamples per figure.",
                     lower_bound=1)
flags.DEFINE_float("confidence", 0.95, "Coverage of the bootstrap intervals.", lower_bound=0.5,
                   upper_bound=0.999)
flags.DEFINE_string("output_dir", None, "The grid's folder: runs, tables and figures. Finished "
                    "runs in it are reused. Default: runs/<data>_table1, <data> the name of "
                    "--data_dir's directory, or demo.")
common_flags.define_data_flags()
common_flags.define_trust_flag()   # (an embedder is loaded)
training_flags.define_training_flags(seed=False)
flags.register_validator("seeds", lambda seeds: bool(seeds) and all(
    s.isdigit() for s in seeds) and len(set(seeds)) == len(seeds),
                         message="--seeds must be distinct integers >= 0, e.g. 0,1,2")

# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from vb_keras.analysis import experiment   # pylint: disable=import-outside-toplevel
    rows = experiment.grid_rows(FLAGS.models, FLAGS.forms)
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", f"{common_flags.data_name(FLAGS.data_dir)}_table1")
    recorded = None if FLAGS.data_dir else experiment.recorded_run(output_dir)
    if recorded:   # a rerun of a started grid continues on its data, schema and split
        data_dir, table, schema = common_flags.read_trained_data(
            FLAGS, recorded, f"the grid in {output_dir}")
    else:
        data_dir, table, schema = common_flags.read_data(FLAGS)
    summary = experiment.run_grid(
        data_dir, table, schema, output_dir, rows,
        params_for_model=lambda model: training_flags.training_params(FLAGS, model, (), seed=0),
        seeds=[int(seed) for seed in FLAGS.seeds], split=FLAGS.split,
        num_resamples=FLAGS.bootstrap_resamples, confidence=FLAGS.confidence,
        on_bad_audio=FLAGS.on_bad_audio,
        settings={"flags": FLAGS.flags_into_string(), **common_flags.split_settings(FLAGS),
                  "experiment": output_dir})
    print(summary["markdown"])
    print("wrote " + ", ".join(summary["paths"]))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
