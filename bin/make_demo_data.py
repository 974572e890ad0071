#!/usr/bin/env python3
"""Writes the synthetic demo data set in the exact HUME-VB layout (data_info.csv + wav/NNNNN.wav).

Emotion intensities, country, age and speaker traits shape the sound (see vb_keras/data/demo.py), so a
working pipeline learns from it. Deterministic given --seed.

  bin/make_demo_data --out_dir=/tmp/demo --num_clips=2000 --sample_rate=48000
"""

import os

from absl import flags

if __package__:  # installed: vb_make_demo_data
    from . import common_flags
else:            # a checkout: bin/make_demo_data
    import common_flags

from vb_keras.data import demo
from vb_keras.errors import UserInputError
from vb_keras.utils import atomic

flags.DEFINE_string("out_dir", None, "Directory to write (must not already hold a data set).")
flags.DEFINE_integer("num_clips", 2000, "Clips to synthesise.", lower_bound=1)
flags.DEFINE_enum("sample_rate", "16000", ["16000", "48000"], "Sample rate of the WAV files.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.mark_flag_as_required("out_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if os.path.exists(os.path.join(FLAGS.out_dir, "data_info.csv")):
        raise UserInputError(f"--out_dir: {FLAGS.out_dir} already holds a data set")
    # Built in a scratch directory and renamed into place: a kill leaves no half data set, and a
    # directory holding anything else is refused, not written into.
    with atomic.atomic_directory(FLAGS.out_dir, "--out_dir") as scratch:
        demo.write_demo_data(scratch, num_clips=FLAGS.num_clips,
                             sample_rate=int(FLAGS.sample_rate), seed=FLAGS.seed)
    print(f"wrote {FLAGS.num_clips} clips to {FLAGS.out_dir}")


def run():
    common_flags.run(main)


if __name__ == "__main__":
    run()
