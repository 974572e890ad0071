#!/usr/bin/env python3
"""Predicts every clip with an exported model and writes an ExVo submission CSV.

  bin/predict --model=saved_models/exvo --data_dir=/data/hume_vb --split=Test --output=test.csv
  bin/predict --model=saved_models/exvo/3 --audio=clips/ --audio=laugh.flac --output=out.csv \
      --output_json=out.json

--model is a SavedModel written by bin/export, or its export root (the highest version is used).
Audio of any sample rate is resampled to 16 kHz. Files that cannot be decoded are named in a warning
and in bad_audio.csv beside the output, and left out; the other clips are still predicted.
"""

import os
import sys

from absl import flags
from absl import logging

if __package__:  # installed: vb_predict
    from . import common_flags
else:            # a checkout: bin/predict
    import common_flags

from vb_keras.serving import export, prediction
from vb_keras.data import exvo, loading, pipeline, unlabelled
from vb_keras.errors import UserInputError

flags.DEFINE_string("model", None, "An exported SavedModel (or its export root: latest version).")
flags.DEFINE_string("data_dir", None, "A HUME-VB-layout or prepared data directory to predict. "
                    "Default (without --audio): the data the exported models were trained on.")
flags.DEFINE_string("split", "Test", "With --data_dir: the split to predict (labels not needed).")
flags.DEFINE_multi_string("audio", None, "Audio files or folders (searched recursively) to "
                          "predict instead of --data_dir; File_ID is the path without extension.")
flags.DEFINE_string("output", None, "CSV to write: File_ID,<class column>,Age,<emotions>.")
flags.DEFINE_string("output_json", None, "Optional JSON with every output, class probabilities "
                    "included.")
flags.DEFINE_integer("batch_size", 16, "Clips per model call.", lower_bound=1)
common_flags.define_trust_flag()
flags.adopt_module_key_flags(common_flags)
flags.mark_flags_as_required(["model", "output"])
flags.register_validator("split", lambda split: split in exvo.SPLITS,
                         message=f"--split must be one of {', '.join(exvo.SPLITS)}")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.data_dir and FLAGS.audio:
        raise UserInputError("give one of --data_dir (with --split) and --audio, not both")
    prediction.check_outputs(FLAGS.output, FLAGS.output_json)   # before predicting anything
    model = prediction.ExportedModel(FLAGS.model)
    report_dir = os.path.dirname(os.path.abspath(FLAGS.output))
    data_dir = FLAGS.data_dir
    if not data_dir and not FLAGS.audio:
        if not model.data_dir:
            raise UserInputError(f"--model: {model.path} does not record the data it was trained "
                                 "on; give --data_dir (with --split) or --audio")
        if not os.path.isdir(model.data_dir):
            raise UserInputError(f"--data_dir: not given, and {model.data_dir}, the data "
                                 f"{model.path} was trained on, no longer exists; pass --data_dir")
        data_dir = model.data_dir
        print(f"no --data_dir or --audio: predicting {FLAGS.split} of {data_dir}, the data "
              f"{model.path} was trained on (its {export.EXPORT_INFO})", file=sys.stderr)
    if data_dir:
        if model.schema is None:
            raise UserInputError(f"--model: {model.path} carries no label schema "
                                 "(not written by bin/export); use --audio")
        table, schema = exvo.read_and_split(data_dir, model.schema)
        clips = [(clip["file_id"].decode(), clip["audio"] / 32768.0) for clip in
                 pipeline.read_clips(data_dir, schema, FLAGS.split, "skip", report_dir,
                                     table=table).as_numpy_iterator()]
        class_column, id_format = schema.class_column, "[{}]"   # ids as data_info.csv writes them
    else:
        table = unlabelled.audio_files(FLAGS.audio)
        clips, bad = [], []
        for position, result in loading.decode_clips(table, "File_ID", "skip"):
            if isinstance(result, loading.BadClip):
                bad.append(result)
            else:
                clips.append((table["File_ID"].iloc[position], result / 32768.0))
        loading.write_bad_audio_report(bad, report_dir)
        for clip in bad:
            logging.warning("skipped %s: %s", clip.path, clip.reason)
        class_column = model.schema.class_column if model.schema else "Country"
        id_format = "{}"
    if not clips:
        raise UserInputError("no clip could be decoded (see bad_audio.csv)")
    results = prediction.predict_clips(model, clips, FLAGS.batch_size, progress=True)
    submission = prediction.submission_table(model, results, class_column, id_format)
    prediction.write_outputs(submission, results, model, FLAGS.output, FLAGS.output_json)
    print(f"predicted {len(submission)} clips with {model.path}: {FLAGS.output}"
          + (f" and {FLAGS.output_json}" if FLAGS.output_json else ""))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
