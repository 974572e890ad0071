#!/usr/bin/env python3
"""Trains a vocal-burst model (Belanich et al., 2022, section 2) and evaluates it on Val.

  bin/train --model=resnet18                                  # multitask, on the demo data
  bin/train --model=resnet34 --tasks=emotion --data_dir=/data/hume_vb_prepared \
      --model_dir=runs/resnet34_emotion --epochs=30
  bin/train --model=conformer_autopool --embedder=/models/trillsson   # section 2.2
  bin/train --flagfile=experiment.flags

The conformer heads train on window embeddings of a frozen embedder, extracted once into a cache
(bin/extract_embeddings does the same ahead of time).

Started again with the same flags, an interrupted run resumes from its last finished epoch.
"""

import os

from absl import flags
from absl import logging

if __package__:  # installed: vb_train
    from . import common_flags
else:            # a checkout: bin/train
    import common_flags

from vb_keras import distribute, evaluation, inputs, training
from vb_keras.models import multitask
from vb_keras.params import TrainingParams
from vb_keras.schema import TASKS

_DEFAULTS = TrainingParams()
# The demo data (1,200 training clips) is learnt in a few epochs: keep its default run short. The
# heads train from cached embeddings in about a second an epoch, so they get more.
DEMO_EPOCHS = {"resnet": 8, "conformer": 40}
# Section 2.2 trains the heads with batches of 128 (the ResNets: 64).
HEAD_BATCH_SIZE = 128

# Model.
flags.DEFINE_enum("model", _DEFAULTS.model, inputs.MODEL_NAMES,
                  "resnet18/34/50 (section 2.1) or a head on frozen embeddings (section 2.2).")
flags.DEFINE_list("tasks", list(TASKS), "Outputs to train: all three is multitask (hard parameter "
                  "sharing); one is a single-task model (MTL 'No' in Table 1).")
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout before the task layers.")
# Embedder (conformer heads).
common_flags.define_embedder_flags()
# Data.
common_flags.define_data_flags()
flags.DEFINE_float("clip_seconds", _DEFAULTS.clip_seconds,
                   "Training clips are randomly cropped or zero-padded to this length.")
flags.DEFINE_enum("on_bad_audio", "skip", ["skip", "fail"],
                  "skip: leave out unusable clips and list them in bad_audio.csv; fail: stop.")
# Optimisation (section 2.1 defaults).
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Passes over the training split (default "
                     f"{_DEFAULTS.epochs}; on the embedded demo data {DEMO_EPOCHS['resnet']} for "
                     f"ResNets, {DEMO_EPOCHS['conformer']} for heads).", lower_bound=1)
flags.DEFINE_integer("batch_size", None, f"Global batch size (default {_DEFAULTS.batch_size} for "
                     f"ResNets, {HEAD_BATCH_SIZE} for the conformer heads).", lower_bound=1)
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Adam learning rate.", lower_bound=0)
flags.DEFINE_float("adam_epsilon", _DEFAULTS.epsilon, "Adam epsilon.", lower_bound=0)
flags.DEFINE_float("emotion_loss_weight", _DEFAULTS.loss_weights[0], "Weight of the emotion loss.",
                   lower_bound=0)
flags.DEFINE_float("country_loss_weight", _DEFAULTS.loss_weights[1], "Weight of the class loss.",
                   lower_bound=0)
flags.DEFINE_float("age_loss_weight", _DEFAULTS.loss_weights[2], "Weight of the age loss.",
                   lower_bound=0)
flags.DEFINE_integer("early_stopping_patience", 0, "Stop after this many epochs without a better "
                     "validation score (0: never).", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seeds weights, shuffling and cropping.")
flags.DEFINE_bool("mixed_bfloat16", False, "Compute the trunk in bfloat16 (faster on CPUs with "
                  "AVX512_BF16 and on TPUs; front end and outputs stay float32).")
# Distribution.
flags.DEFINE_enum("strategy", "auto", distribute.STRATEGIES, "tf.distribute strategy.")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu (or auto).")
# Output and extensions.
flags.DEFINE_string("model_dir", None, "Output directory. Default: runs/<model>_<tasks>.")
flags.DEFINE_list("callbacks", [], "Extra Keras callbacks, as importable module.Class names "
                  "constructed with no arguments.")
flags.register_validator("tasks", lambda tasks: bool(tasks) and set(tasks) <= set(TASKS)
                         and len(set(tasks)) == len(tasks),
                         message=f"--tasks must be distinct names among {', '.join(TASKS)}")
flags.register_validator("dropout", lambda rate: 0 <= rate < 1, message="--dropout must lie in [0, 1)")
flags.register_validator("clip_seconds", lambda seconds: seconds > 0,
                         message="--clip_seconds must be positive")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.tpu)  # first: multi-worker needs it
    schema = common_flags.schema_from_flags(FLAGS)
    data_dir, table, schema = common_flags.read_data(FLAGS, schema)
    head = inputs.is_embedding_model(FLAGS.model)
    epochs = FLAGS.epochs
    if not FLAGS.data_dir and not FLAGS["epochs"].present:
        epochs = DEMO_EPOCHS["conformer" if head else "resnet"]
        logging.info("demo data: training for %d epochs (set --epochs to change)", epochs)
    batch_size = FLAGS.batch_size or (HEAD_BATCH_SIZE if head else _DEFAULTS.batch_size)
    window = common_flags.window_from_flags(FLAGS)
    params = TrainingParams(
        model=FLAGS.model, tasks=multitask.check_tasks(FLAGS.tasks), epochs=epochs,
        batch_size=batch_size, learning_rate=FLAGS.learning_rate, epsilon=FLAGS.adam_epsilon,
        loss_weights=(FLAGS.emotion_loss_weight, FLAGS.country_loss_weight, FLAGS.age_loss_weight),
        dropout=FLAGS.dropout, clip_seconds=FLAGS.clip_seconds,
        early_stopping_patience=FLAGS.early_stopping_patience, seed=FLAGS.seed,
        mixed_bfloat16=FLAGS.mixed_bfloat16,
        embedder=os.path.abspath(FLAGS.embedder) if FLAGS.embedder else "",
        window_seconds=window.window_seconds, min_tail_seconds=window.min_tail_seconds)
    model_dir = FLAGS.model_dir or os.path.join("runs", f"{params.model}_{'_'.join(params.tasks)}")
    result = training.train(
        data_dir, model_dir, table, schema, params, strategy=strategy,
        callbacks=[training.load_callback(spec) for spec in FLAGS.callbacks],
        on_bad_audio=FLAGS.on_bad_audio,
        settings={"flags": FLAGS.flags_into_string(), "split_scheme": FLAGS.split_scheme},
        embedding_cache_root=FLAGS.embedding_cache)
    if distribute.is_chief():
        print(f"model saved in {model_dir}")
        print(evaluation.TABLE_HEADER)
        print(common_flags.table_row(params.model, params.tasks, result.validation))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
