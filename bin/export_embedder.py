#!/usr/bin/env python3
r"""Exports the project's Conformer (section 2.2) as a TF-Hub-style embedder SavedModel.

  bin/export_embedder --config=small --output_dir=saved_models/embedders/conformer_small
  bin/export_embedder --config=cap12 --weights=cap12.weights.h5 --output_dir=/models/cap12
  bin/export_embedder --weights=runs/pretrain_small --layer=3 --output_dir=/models/bursts_small

The SavedModel's `serving_default` maps `audio_samples` float32 [batch, time] (16 kHz, [-1, 1]) to
{"embedding": [batch, D]} (the TRILLsson convention), so --embedder loads it like any other. Without
--weights the weights are random (seeded): an untrained stand-in, and the export says so. The export
appears whole or not at all.
"""

import os

from absl import flags

if __package__:  # installed: vb_export_embedder
    from . import choices, common_flags
else:            # a checkout: bin/export_embedder
    import choices
    import common_flags

from vb_keras.errors import UserInputError

flags.DEFINE_enum("config", "small", choices.CONFORMER_CONFIGS,
                  "Conformer configuration (cap12: section 2.2's 24 x 1024, embedding of layer 12).")
flags.DEFINE_string("weights", None, "A bin/pretrain output directory (its configuration is "
                    "used, --config is ignored), or a Keras .weights.h5 file of the embedder model "
                    "built by vb_keras.models.embedders.build_conformer_embedder(config). Default: "
                    "random weights.")
flags.DEFINE_integer("layer", None, "The Conformer block whose output is pooled into the embedding "
                     "(1-based). Default: the configuration's embedding layer (cap12: 12, small: 4).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seeds the random weights.")
flags.DEFINE_string("output_dir", None, "Directory to write the SavedModel into (must not exist, "
                    "or be empty).")
common_flags.define_deprecated_alias("export_dir", "output_dir")
common_flags.mark_required("output_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.models import embedders
    from vb_keras.training import pretraining
    if os.path.exists(FLAGS.output_dir) and os.listdir(FLAGS.output_dir):
        raise UserInputError(f"--output_dir: {FLAGS.output_dir} already exists and is not empty")
    if FLAGS.weights and os.path.isdir(FLAGS.weights):
        pretrainer, run = pretraining.load_pretrained(FLAGS.weights)
        model = pretraining.embedder_from_pretrainer(pretrainer, run, FLAGS.layer)
        if not run.finished:
            print(f"{FLAGS.weights}: {run.state} (--max_minutes or a kill): exporting its last "
                  "finished epoch; bin/pretrain with the same flags goes on with it")
        description = (f"vb_keras {model.name} pre-trained by {run.method} in {FLAGS.weights} "
                       f"({run.state}), embedding of layer {FLAGS.layer or 'default'}")
        embedders.export_conformer_embedder(model, FLAGS.output_dir, description)
        print(f"exported {description} ({model.output.shape[-1]}-d, {model.count_params():,} "
              f"parameters) to {FLAGS.output_dir}")
        return
    model = embedders.build_conformer_embedder(FLAGS.config, FLAGS.seed, FLAGS.layer)
    if FLAGS.weights:
        if not os.path.isfile(FLAGS.weights):
            raise UserInputError(f"--weights: {FLAGS.weights} does not exist")
        try:
            model.load_weights(FLAGS.weights)
        except ValueError as error:
            raise UserInputError(f"--weights: {FLAGS.weights} does not fit the {FLAGS.config} "
                                 f"embedder: {str(error).splitlines()[0]}") from None
        description = f"vb_keras {FLAGS.config} Conformer, weights from {FLAGS.weights}"
    else:
        description = (f"vb_keras {FLAGS.config} Conformer with RANDOM weights (seed {FLAGS.seed}):"
                       " untrained")
    embedders.export_conformer_embedder(model, FLAGS.output_dir, description)
    print(f"exported {description} ({model.output.shape[-1]}-d, {model.count_params():,} "
          f"parameters) to {FLAGS.output_dir}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
