#!/usr/bin/env python3
r"""Decodes, resamples to 16 kHz and writes a data set once as sharded TFRecords.

The training pipeline then reads --output_dir as its --data_dir, far faster than decoding audio
files. Unusable audio is skipped and listed in <output_dir>/bad_audio.csv (or stops the run with
--on_bad_audio=fail).

  bin/prepare_data --data_dir=/data/hume_vb --output_dir=/data/hume_vb_tfrecords
"""

from absl import flags

if __package__:  # installed: vb_prepare_data
    from . import choices, common_flags
else:            # a checkout: bin/prepare_data
    import choices
    import common_flags

common_flags.define_data_flags()
flags.DEFINE_string("output_dir", None, "Directory for the TFRecord shards (must not hold a "
                    "prepared set).")
common_flags.define_deprecated_alias("out_dir", "output_dir")
flags.DEFINE_list("splits", list(choices.SPLITS), "Splits to write.")
common_flags.define_on_bad_audio_flag("<output_dir>/bad_audio.csv")
flags.DEFINE_integer("workers", 0, "Decoding threads (0: the number of cores + 2).", lower_bound=0)
common_flags.mark_required("output_dir")
flags.register_validator("splits", lambda splits: set(splits) <= set(choices.SPLITS),
                         message=f"each split must be one of {', '.join(choices.SPLITS)}")
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from vb_keras.data import prepare   # pylint: disable=import-outside-toplevel  (TensorFlow)
    data_dir, table, schema = common_flags.read_data(FLAGS)
    counts = prepare.prepare(table, schema, FLAGS.output_dir, source=f"{data_dir} "
                             f"(split scheme {FLAGS.split_scheme})", splits=FLAGS.splits,
                             on_bad_audio=FLAGS.on_bad_audio, workers=FLAGS.workers)
    print(f"wrote {', '.join(f'{n} {split}' for split, n in counts.items())} clips to "
          f"{FLAGS.output_dir}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
