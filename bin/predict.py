#!/usr/bin/env python3
r"""Predicts clips with an exported model: a table on the terminal, or an ExVo submission CSV.

  bin/predict --audio=laugh.wav        # the shipped EmoGator model: a table on stdout
  bin/predict --saved_model=saved_models/exvo --audio=laugh.wav          # a model of your own
  bin/predict --saved_model=saved_models/exvo --data_dir=/data/hume_vb --split=Test \
      --output=test.csv
  bin/predict --saved_model=saved_models/exvo/3 --audio=clips/,laugh.flac --output=out.csv \
      --output_json=out.json

--saved_model is a SavedModel written by bin/export, or its export root (the highest version is
used); without it, the model vb_keras ships (saved_models/emogator, docs/model_card.md): EfficientAT
fine-tuned on EmoGator's vocal bursts, 30 emotion categories. Audio of any sample rate is resampled to 16 kHz. Without --output, each clip's most likely
classes and strongest emotions are printed; with it, the CSV `File_ID,<class column>,Age,<emotions>`
is written. Files that cannot be decoded are named in a warning and in bad_audio.csv beside the
output (or in the current directory), and left out; the other clips are still predicted.
"""

import os
import sys

from absl import flags
from absl import logging

if __package__:  # installed: vb_predict
    from . import choices, common_flags
else:            # a checkout: bin/predict
    import choices
    import common_flags

from vb_keras.errors import UserInputError

flags.DEFINE_string("saved_model", None, "An exported SavedModel (or its export root: the latest "
                    "version). Default: the shipped EmoGator model (docs/model_card.md).")
common_flags.define_deprecated_alias("model", "saved_model")
flags.DEFINE_string("data_dir", None, "A HUME-VB-layout or prepared data directory to predict. "
                    "Default (without --audio): the data the exported models were trained on.")
flags.DEFINE_enum("split", "Test", choices.SPLITS, "With --data_dir: the split to predict (labels "
                  "not needed).")
common_flags.define_path_list(
    "audio", "Audio files and folders (searched recursively) to predict instead of --data_dir. "
    "File_ID is a file's path below the folder given, without extension (sub/03a01Fa for "
    "clips/sub/03a01Fa.wav given clips), or a file's name without extension.")
flags.DEFINE_string("output", None, "CSV to write: File_ID,<class column>,Age,<emotions>. "
                    "Default: a table of the predictions on stdout.")
flags.DEFINE_string("output_json", None, "Optional JSON with every output, class probabilities "
                    "included.")
flags.DEFINE_integer("batch_size", 16, "Clips per model call.", lower_bound=1)
common_flags.define_trust_flag()
flags.DEFINE_integer("top", 3, "Without --output: the strongest emotions shown per clip.",
                     lower_bound=0)
common_flags.define_on_bad_audio_flag("bad_audio.csv beside --output (or in the current "
                                      "directory)")
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    # pylint: disable=import-outside-toplevel  (TensorFlow: after the flags are parsed)
    from vb_keras.data import exvo, loading, unlabelled
    from vb_keras.serving import export, prediction, shipped
    if FLAGS.data_dir and FLAGS.audio:
        raise UserInputError("give one of --data_dir (with --split) and --audio, not both")
    if FLAGS.output:
        prediction.check_outputs(FLAGS.output, FLAGS.output_json)   # before predicting anything
    elif FLAGS.output_json:
        raise UserInputError("--output_json: needs --output (the CSV beside it)")
    saved_model = FLAGS.saved_model
    if not saved_model:
        saved_model = shipped.servable_root()
        if saved_model is None:
            raise UserInputError("--saved_model: not given, and the shipped model "
                                 f"(saved_models/{shipped.NAME}) is not installed")
        if not FLAGS.data_dir and not FLAGS.audio:
            raise UserInputError("--audio: give the clips to predict (or --data_dir)")
        print(f"no --saved_model: predicting with the shipped model, {saved_model} "
              "(docs/model_card.md)", file=sys.stderr)
    model = prediction.ExportedModel(saved_model, flag="--saved_model")
    report_dir = os.path.dirname(os.path.abspath(FLAGS.output)) if FLAGS.output else os.getcwd()
    data_dir = FLAGS.data_dir
    if not data_dir and not FLAGS.audio:
        if not model.data_dir:
            raise UserInputError(f"--saved_model: {model.path} does not record the data it was "
                                 "trained on; give --data_dir (with --split) or --audio")
        if not os.path.isdir(model.data_dir):
            raise UserInputError(f"--data_dir: not given, and {model.data_dir}, the data "
                                 f"{model.path} was trained on, no longer exists; pass --data_dir")
        data_dir = model.data_dir
        print(f"no --data_dir or --audio: predicting {FLAGS.split} of {data_dir}, the data "
              f"{model.path} was trained on (its {export.EXPORT_INFO})", file=sys.stderr)
    if data_dir:
        if model.schema is None:
            raise UserInputError(f"--saved_model: {model.path} carries no label schema "
                                 "(not written by bin/export); use --audio")
        table, schema = exvo.read_and_split(data_dir, model.schema)
        results = prediction.predict_split(model, data_dir, table, schema, FLAGS.split,
                                           FLAGS.on_bad_audio, report_dir, FLAGS.batch_size)
        class_column, id_format = schema.class_column, "[{}]"   # ids as data_info.csv writes them
    else:
        table = unlabelled.audio_files(FLAGS.audio)
        clips, bad = [], []
        for position, result in loading.decode_clips(table, "File_ID", FLAGS.on_bad_audio):
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
    if not results:
        raise UserInputError("no clip could be decoded (see bad_audio.csv)")
    if not FLAGS.output:
        print(prediction.summary_text(model, results, class_column, FLAGS.top))
        return
    submission = prediction.submission_table(model, results, class_column, id_format)
    prediction.write_outputs(submission, results, model, FLAGS.output, FLAGS.output_json)
    print(f"predicted {len(submission)} clips with {model.path}: {FLAGS.output}"
          + (f" and {FLAGS.output_json}" if FLAGS.output_json else ""))


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
