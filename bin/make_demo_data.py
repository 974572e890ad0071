#!/usr/bin/env python3
r"""Writes the synthetic demo data set in the exact HUME-VB layout (data_info.csv + wav/NNNNN.wav).

Emotion intensities, country, age and speaker traits shape the sound (see vb_keras/data/demo.py), so a
working pipeline learns from it. Deterministic given --seed.

  bin/make_demo_data --output_dir=/tmp/demo --num_clips=2000 --sample_rate=48000
"""

import os

from absl import flags

if __package__:  # installed: vb_make_demo_data
    from . import common_flags
else:            # a checkout: bin/make_demo_data
    import common_flags

from vb_keras.errors import UserInputError
from vb_keras.utils import atomic

flags.DEFINE_string("output_dir", None, "Directory to write (must not already hold a data set).")
common_flags.define_deprecated_alias("out_dir", "output_dir")
flags.DEFINE_integer("num_clips", 2000, "Clips to synthesise.", lower_bound=1)
flags.DEFINE_enum("sample_rate", "16000", ["16000", "48000"], "Sample rate of the WAV files.")
flags.DEFINE_integer("seed", 0, "Random seed.")
common_flags.mark_required("output_dir")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from vb_keras.data import demo   # pylint: disable=import-outside-toplevel
    if os.path.exists(os.path.join(FLAGS.output_dir, "data_info.csv")):
        raise UserInputError(f"--output_dir: {FLAGS.output_dir} already holds a data set")
    # Built in a scratch directory and renamed into place: a kill leaves no half data set, and a
    # directory holding anything else is refused, not written into.
    with atomic.atomic_directory(FLAGS.output_dir, "--output_dir") as scratch:
        demo.write_demo_data(scratch, num_clips=FLAGS.num_clips,
                             sample_rate=int(FLAGS.sample_rate), seed=FLAGS.seed)
    print(f"wrote {FLAGS.num_clips} clips to {FLAGS.output_dir}")


def run():
    common_flags.run(main, tensorflow=False)   # (the demo data is NumPy and libsndfile's work)


if __name__ == "__main__":
    run()
