#!/usr/bin/env python3
r"""Evaluates trained models on a split: a Table-1 row, the evaluation JSON and PNG figures.

  bin/evaluate --model_dir=runs/demo_resnet18_emotion_country_age --split=Val
  # The paper's submission (section 3.3): each task from the model trained for it, naive age.
  bin/evaluate --model_dir=runs/resnet34_emotion,runs/resnet34_country \
      --output_dir=runs/submission
  # An exported servable, as TF Serving runs it, with speaker-bootstrap 95% intervals.
  bin/evaluate --saved_model=saved_models/emogator --data_dir=../shared/data/emogator \
      --split=Test --bootstrap=1000 --output_dir=runs/emogator_servable_test

The label schema (columns and classes) comes from the models; a task no model predicts takes the
naive prediction (majority class, median training age, mean training emotions).
"""

import os

from absl import flags

if __package__:  # installed: vb_evaluate
    from . import choices, common_flags
else:            # a checkout: bin/evaluate
    import choices
    import common_flags


from vb_keras.errors import UserInputError
from vb_keras.keys import FILE_ID

flags.DEFINE_list("model_dir", None, "One model directory, or several (one per task) to combine.")
flags.DEFINE_string("saved_model", None, "Instead of --model_dir: an exported SavedModel (or its "
                    "export root), run as TF Serving runs it; needs --output_dir.")
common_flags.define_data_flags(schema_flags=False)
common_flags.define_trust_flag()   # (a conformer head's embedder is loaded)
flags.DEFINE_enum("split", "Val", choices.SPLITS, "Split to evaluate (Test must be labelled).")
flags.DEFINE_string("output_dir", None, "Where eval_<split>.json and the PNGs go. Default: the "
                    "model directory (required with several, and with --saved_model).")
flags.DEFINE_integer("batch_size", 64, "Clips per evaluation batch.", lower_bound=1)
flags.DEFINE_integer("bootstrap", 0, "With N > 0: 95% percentile intervals of each figure from N "
                     "bootstrap resamples of the split's speakers (the data's Subject_ID column), "
                     "printed and written to the evaluation JSON.", lower_bound=0)
flags.DEFINE_string("embedding_cache", None, "Conformer heads: root of the embedding caches "
                    "(default: $VB_KERAS_CACHE/embeddings or ~/.cache/vb_keras/embeddings).")
common_flags.define_on_bad_audio_flag()
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.evaluation import bootstrap, plots, scoring
    from vb_keras.training.runs import TrainedRun
    if bool(FLAGS.model_dir) == bool(FLAGS.saved_model):
        raise UserInputError("--model_dir: give one of --model_dir and --saved_model")
    if FLAGS.saved_model:
        if not FLAGS.output_dir:
            raise UserInputError("--output_dir is required with --saved_model")
        output_dir = FLAGS.output_dir
        y_true, y_pred, ids, split_rows, schema, name = _predict_servable(output_dir)
        names, owners = [name], {task: 0 for task in schema.tasks}
        multitask = len(schema.tasks) > 1
    else:
        if len(FLAGS.model_dir) > 1 and not FLAGS.output_dir:
            raise UserInputError("--output_dir is required with several --model_dir")
        output_dir = FLAGS.output_dir or FLAGS.model_dir[0]
        trained = [TrainedRun.finished(model_dir) for model_dir in FLAGS.model_dir]
        entries = [(run.model, run.schema, run.tasks) for run in trained]
        names = [run.name for run in trained]
        schema = trained[0].schema
        data_dir, table, _ = common_flags.read_trained_data(FLAGS, trained[0], FLAGS.model_dir[0])
        y_true, y_pred, owners, ids, split_rows = _predict_runs(trained, entries, names, schema,
                                                               data_dir, table, output_dir)
        multitask = len(entries) == 1 and len(entries[0][2]) > 1
    result = scoring.evaluate(y_true, y_pred, schema, FLAGS.split)
    intervals = None
    if FLAGS.bootstrap:
        if schema.speaker_column not in split_rows:
            raise UserInputError(f"--bootstrap: the data has no {schema.speaker_column} column "
                                 "to resample speakers by")
        speaker_of = dict(zip(split_rows[schema.id_column], split_rows[schema.speaker_column]))
        intervals = bootstrap.bootstrap(y_true, y_pred, [speaker_of[i] for i in ids],
                                        num_resamples=FLAGS.bootstrap)

    json_path = os.path.join(output_dir, f"eval_{FLAGS.split}.json")
    scoring.write_json(result, json_path, extra=None if intervals is None else {
        "bootstrap": {"resamples": FLAGS.bootstrap, "confidence": 0.95, "by": "speaker",
                      "speakers": len(set(split_rows[schema.speaker_column])),
                      "intervals": {figure: interval.to_dict()
                                    for figure, interval in intervals.items() if interval}}})
    figures = plots.write_evaluation_plots(result, y_true, y_pred, schema.classes, output_dir,
                                           title=" + ".join(names))
    for task, owner in owners.items():
        print(f"{task}: {names[owner] if owner != 'naive' else 'naive prediction'}")
    print(scoring.table_header(schema))
    print(scoring.table_row(" + ".join(names), "YES" if multitask else "NO", result))
    if intervals:
        speakers = len(set(split_rows[schema.speaker_column]))
        print(f"95% intervals ({FLAGS.bootstrap} resamples of the {speakers} speakers): " + ", ".join(
            f"{figure} {interval.estimate:.3f} [{interval.low:.3f}, {interval.high:.3f}]"
            for figure, interval in intervals.items() if interval))
        caveat = bootstrap.few_speakers_caveat(speakers)
        if caveat:
            print(caveat)
    if result.ccc_per_emotion:
        print("per emotion: " + ", ".join(f"{k} {v:.3f}" for k, v in result.ccc_per_emotion.items()))
    print(f"wrote {json_path} and {', '.join(os.path.basename(f) for f in figures)}")


def _predict_servable(output_dir):
    """(y_true, y_pred, file ids, the split's rows, schema, name) of the exported SavedModel
    --saved_model on --data_dir's (default: the data it was trained on) split, through its serving
    signature, as TF Serving runs it."""
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import exvo
    from vb_keras.evaluation import scoring
    from vb_keras.serving import prediction
    model = prediction.ExportedModel(FLAGS.saved_model, flag="--saved_model")
    if model.schema is None:
        raise UserInputError(f"--saved_model: {model.path} carries no label schema (not "
                             "written by bin/export)")
    data_dir = FLAGS.data_dir or model.data_dir
    if not data_dir or not os.path.isdir(data_dir):
        raise UserInputError(f"--data_dir: needed ({model.path} names no data directory "
                             "that exists here)")
    table, schema = exvo.read_and_split(data_dir, model.schema, *(
        FLAGS[name].value for name in common_flags.SPLIT_FLAGS))
    split_rows = exvo.select_split(table, schema, FLAGS.split)
    y_true = scoring.labels_from_table(
        split_rows.sort_values(schema.id_column), schema)   # (refuses an unlabelled split)
    results = prediction.predict_split(model, data_dir, table, schema, FLAGS.split,
                                       FLAGS.on_bad_audio, output_dir, FLAGS.batch_size)
    if len(results) != len(split_rows):
        raise UserInputError(f"--data_dir: {len(split_rows) - len(results)} {FLAGS.split} "
                             "clips could not be decoded (see bad_audio.csv); every clip is "
                             "needed to score the split")
    ids, y_pred = prediction.stacked_outputs(results, schema.tasks)
    return y_true, y_pred, ids, split_rows, schema, model.path


def _predict_runs(trained, entries, names, schema, data_dir, table, output_dir):
    """(y_true, y_pred, owners, file ids, the split's rows) of trained runs: each model reads its
    own family's inputs (waveforms, or its embedder's cached sequences), with a progress bar over
    the split's clips on stderr; a task no model predicts takes the naive prediction."""
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import exvo
    from vb_keras.evaluation import baseline, ensemble, scoring
    from vb_keras.families import registry
    from vb_keras.families.base import DataSource
    from vb_keras.utils import progress
    naive = baseline.fit_naive(exvo.select_split(table, schema, "Train"), schema)
    split_rows = exvo.select_split(table, schema, FLAGS.split)
    scoring.labels_from_table(split_rows, schema)   # refuses an unlabelled split up front
    source = DataSource(data_dir, table, schema, FLAGS.on_bad_audio, output_dir)
    readers = [registry.split_reader(registry.with_family_settings(
                   run.params, embedding_cache=FLAGS.embedding_cache), source) for run in trained]
    batches = [progress.track(reader.batches(FLAGS.split, training=False,
                                             batch_size=FLAGS.batch_size, keep_ids=True),
                              reader.clip_count(FLAGS.split),
                              size=lambda batch: len(batch[0][FILE_ID]),
                              label=f"evaluating {FLAGS.split} with {name}")
               for reader, name in zip(readers, names)]
    return (*ensemble.predict(entries, batches, naive), split_rows)


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
