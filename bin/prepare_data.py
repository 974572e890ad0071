#!/usr/bin/env python3
"""Decodes, resamples to 16 kHz and writes a data set once as sharded TFRecords.

The training pipeline then reads --out_dir as its --data_dir, far faster than decoding audio files.
Unusable audio is skipped and listed in <out_dir>/bad_audio.csv (or stops the run with
--on_bad_audio=fail).

  bin/prepare_data --data_dir=/data/hume_vb --out_dir=/data/hume_vb_tfrecords
"""

from absl import flags

if __package__:  # installed: vb_prepare_data
    from . import common_flags
else:            # a checkout: bin/prepare_data
    import common_flags

from vb_keras.data import exvo, prepare

common_flags.define_data_flags()
flags.DEFINE_string("out_dir", None, "Directory for the TFRecord shards (must not hold a prepared set).")
flags.DEFINE_list("splits", list(exvo.SPLITS), "Splits to write.")
flags.DEFINE_enum("on_bad_audio", "skip", ["skip", "fail"],
                  "skip: leave out unusable clips and list them in bad_audio.csv; fail: stop.")
flags.DEFINE_integer("workers", 0, "Decoding threads (0: the number of cores + 2).", lower_bound=0)
flags.mark_flag_as_required("out_dir")
flags.register_validator("splits", lambda splits: set(splits) <= set(exvo.SPLITS),
                         message=f"each split must be one of {', '.join(exvo.SPLITS)}")
# --help lists the key flags of the main module: make the shared flags defined above key here.
flags.adopt_module_key_flags(common_flags)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    data_dir, table, schema = common_flags.read_data(FLAGS)
    counts = prepare.prepare(table, schema, FLAGS.out_dir, source=f"{data_dir} "
                             f"(split scheme {FLAGS.split_scheme})", splits=FLAGS.splits,
                             on_bad_audio=FLAGS.on_bad_audio, workers=FLAGS.workers)
    print(f"wrote {', '.join(f'{n} {split}' for split, n in counts.items())} clips to "
          f"{FLAGS.out_dir}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
