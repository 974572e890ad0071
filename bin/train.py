#!/usr/bin/env python3
r"""Trains a vocal-burst model (Belanich et al., 2022, section 2) and evaluates it on Val.

  bin/train --model=resnet18                                  # multitask, on the demo data
  bin/train --model=resnet34 --tasks=emotion --data_dir=/data/hume_vb_prepared \
      --model_dir=runs/resnet34_emotion --epochs=30
  bin/train --model=conformer_autopool --embedder=/models/trillsson   # section 2.2
  bin/train --model=conformer_autopool --embedder=../shared/models/efficientat_mn04_hub \
      --fine_tune                                       # the embedder fine-tuned under the head
  bin/train --flagfile=experiment.flags

The conformer heads train on window embeddings of a frozen embedder, extracted once into a cache
(bin/extract_embeddings does the same ahead of time).

Started again with the same flags, an interrupted run resumes from its last finished epoch.
"""

import os

from absl import flags

if __package__:  # installed: vb_train
    from . import choices, common_flags, training_flags
else:            # a checkout: bin/train
    import choices
    import common_flags
    import training_flags
from vb_keras.families import registry   # (TensorFlow: imported by training_flags)
from vb_keras.params import TrainingParams
from vb_keras.schema import TASKS

# Model.
flags.DEFINE_enum("model", TrainingParams().model, registry.MODEL_NAMES,
                  "resnet18/34/50 (section 2.1) or a head on an embedder's window embeddings "
                  "(section 2.2; frozen, or fine-tuned with --fine_tune).")
flags.DEFINE_list("tasks", None, "Outputs to train: several is multitask (hard parameter "
                  "sharing); one is a single-task model (MTL 'No' in Table 1). Default: every task "
                  "the data has labels for (all three unless a column flag is empty).")
# Data.
common_flags.define_data_flags()
common_flags.define_trust_flag()   # (an embedder is loaded)
# Data handling and optimisation (section 2.1 defaults), and the families' own flags (the
# embedder of the conformer heads, the crop of the ResNets, fine-tuning).
training_flags.define_training_flags()
# Distribution.
flags.DEFINE_enum("strategy", "auto", choices.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu (or auto).")
# Output and extensions.
flags.DEFINE_string("model_dir", None, "Output directory (the model directory bin/evaluate and "
                    "bin/export read). Default: runs/<data>_<model>_<tasks>, <data> the name of "
                    "--data_dir's directory, or demo; <model> ends in _fine_tune with --fine_tune.")
flags.DEFINE_list("callbacks", [], "Extra Keras callbacks, as importable module.Class names "
                  "constructed with no arguments.")
flags.register_validator("tasks", lambda tasks: tasks is None or (
                             bool(tasks) and set(tasks) <= set(TASKS)
                             and len(set(tasks)) == len(tasks)),
                         message=f"--tasks must be distinct names among {', '.join(TASKS)}")

# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
flags.adopt_module_key_flags(training_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras import tasks as vb_tasks
    from vb_keras.evaluation import scoring
    from vb_keras.training import distribute, trainer
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)  # first: multi-worker needs it
    schema = common_flags.schema_from_flags(FLAGS)
    tasks = vb_tasks.canonical(FLAGS.tasks or schema.tasks)
    schema.check_tasks(tasks)   # before reading: a task the data lacks is refused at once
    data_dir, table, schema = common_flags.read_data(FLAGS, schema)
    params = training_flags.training_params(FLAGS, FLAGS.model, tasks, FLAGS.seed)
    model_dir = FLAGS.model_dir or os.path.join(
        "runs", f"{common_flags.data_name(FLAGS.data_dir)}_{registry.run_name(params)}_"
        f"{'_'.join(params.tasks)}")
    result = trainer.train(
        data_dir, model_dir, table, schema, params, strategy=strategy,
        callbacks=[trainer.load_callback(spec) for spec in FLAGS.callbacks],
        on_bad_audio=FLAGS.on_bad_audio,
        settings={"flags": FLAGS.flags_into_string(), **common_flags.split_settings(FLAGS)})
    if distribute.is_chief():
        print(f"model saved in {model_dir}")
        print(scoring.table_header(schema))
        print(common_flags.table_row(params.model, params.tasks, result.validation))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
