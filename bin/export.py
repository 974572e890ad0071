#!/usr/bin/env python3
r"""Exports trained models as a SavedModel for TF Serving (raw audio in, emotion/country/age out).

  bin/export --model_dir=runs/demo_resnet18_emotion_country_age   # -> saved_models/demo_res.../1
  # The paper's submission (section 3.3) as one servable: two single-task models + median age.
  bin/export --model_dir=runs/resnet34_emotion,runs/resnet34_country \
      --output_dir=saved_models/exvo

Writes `<output_dir>/<version>/` (TF Serving's layout; the next version by default), atomically, and
only after a fresh process has reloaded it and reproduced the Keras models on sample audio. Tasks no
model covers answer with the naive prediction of the models' training data (--median_age overrides
the age).
"""

import os

from absl import flags

if __package__:  # installed: vb_export
    from . import common_flags
else:            # a checkout: bin/export
    import common_flags

from vb_keras.errors import UserInputError
from vb_keras.schema import AGE
from vb_keras.utils import atomic

flags.DEFINE_list("model_dir", None, "One model directory, or several (one per task) to combine.")
flags.DEFINE_string("output_dir", None, "The export root (TF Serving's model directory); versions "
                    "go below it. Default: saved_models/<name of the (first) model directory>.")
common_flags.define_deprecated_alias("export_dir", "output_dir")
flags.DEFINE_integer("version", None, "Version number (default: the next one).", lower_bound=1)
# The naive fallback is fitted on the Train split of this data.
common_flags.define_data_flags(schema_flags=False)
common_flags.define_trust_flag()   # (a conformer head's embedder is loaded)
flags.DEFINE_float("median_age", None, "Age answered when no model predicts age (default: the "
                   "median training age; the paper's submission used 26.0).")
common_flags.mark_required("model_dir")
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import exvo
    from vb_keras.evaluation import baseline
    from vb_keras.serving import export
    from vb_keras.training.runs import TrainedRun
    export_root = FLAGS.output_dir or os.path.join(
        "saved_models", os.path.basename(os.path.normpath(FLAGS.model_dir[0])))
    atomic.check_output_path(export_root, "--output_dir")   # before loading any model
    members, first = [], None
    for model_dir in FLAGS.model_dir:
        run = TrainedRun.finished(model_dir)
        if first is None:
            first = run
        elif (run.schema.emotion_columns, run.schema.classes) != (
                first.schema.emotion_columns, first.schema.classes):
            raise UserInputError(f"--model_dir: {model_dir} was trained on another label schema")
        members.append(export.Member(run.model, run.params))
    schema = first.schema
    data_dir, table, _ = common_flags.read_trained_data(FLAGS, first, FLAGS.model_dir[0])
    naive = baseline.fit_naive(exvo.select_split(table, schema, "Train"), schema)
    if FLAGS.median_age is not None:
        schema.check_tasks([AGE], "--median_age")   # no age output without age labels
        naive[AGE] = FLAGS.median_age
    servable = export.Servable(members, schema, naive)
    path = export.export(servable, export_root, FLAGS.version,
                         description=" + ".join(member.name for member in members),
                         data_dir=data_dir)
    for task, owner in sorted(servable.owners.items()):
        print(f"{task}: {members[owner].name}")
    for task in sorted(set(schema.tasks) - set(servable.owners)):
        print(f"{task}: naive prediction")
    print("exported and verified in a fresh process (TF2 and TF Serving's session loader): "
          f"{path}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
