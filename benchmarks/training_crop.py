#!/usr/bin/env python3
"""ResNet training steps per second on short clips: the crop fitted to them against a fixed 4 s crop.

Real vocal-burst sets are often shorter than HUME-VB's (EmoGator's and EmoDB's clips last 2 s). Both
sides train the package's multitask ResNet on the same batch of 2 s clips (waveform and true
length, as the pipeline's batches carry them) with the trainer's losses and weights: one side in the
crop training fits without `--clip_seconds` (`pipeline.fitted_clip_seconds`: 2 s here), the peer
zero-padded to the 4 s crop that was the default before. The padding is masked, so both compute the same predictions; the ratio is
what the padding costs. Target: fitted >= 1.5x the 4 s crop.

  python benchmarks/training_crop.py [--depth 18] [--steps 8] [--clip_seconds 2.0]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.data import pipeline  # noqa: E402
from vb_keras.params import SAMPLE_RATE  # noqa: E402
from vb_keras.keys import NUM_SAMPLES, WAVEFORM  # noqa: E402
from vb_keras.models import multitask  # noqa: E402
from vb_keras.schema import HUME_VB  # noqa: E402
from vb_keras.training import compiling  # noqa: E402

BATCH, CLASSES, FIXED_SECONDS = 64, 4, 4.0


def steps_per_second(depth, clip_samples, crop_samples, steps):
    keras.utils.set_random_seed(0)
    schema = HUME_VB.with_classes([str(i) for i in range(CLASSES)])
    model = multitask.build_model(f"resnet{depth}", schema)
    compiling.compile_for_tasks(model, schema.tasks, keras.optimizers.Adam(3e-4, epsilon=1e-8),
                                loss_weights={"emotion": 5.0, "country": 0.05, "age": 0.05})
    rng = np.random.default_rng(0)
    waveform = np.zeros((BATCH, crop_samples), np.float32)
    waveform[:, :clip_samples] = rng.uniform(-0.5, 0.5, (BATCH, clip_samples))
    inputs = {WAVEFORM: waveform, NUM_SAMPLES: np.full(BATCH, clip_samples, np.int32)}
    labels = {"emotion": rng.random((BATCH, schema.num_emotions)).astype(np.float32),
              "country": np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, BATCH)],
              "age": rng.uniform(18, 40, (BATCH, 1)).astype(np.float32)}
    data = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)          # warm-up: tracing
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=18)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--clip_seconds", type=float, default=2.0, help="length of every clip")
    args = parser.parse_args()
    clip_samples = int(args.clip_seconds * SAMPLE_RATE)
    fitted = pipeline.fitted_clip_seconds(np.full(100, clip_samples))
    rates = {}
    for label, seconds in (("fitted", fitted), ("fixed", FIXED_SECONDS)):
        rates[label] = steps_per_second(args.depth, clip_samples, int(seconds * SAMPLE_RATE), args.steps)
        print(f"resnet{args.depth}, {args.clip_seconds:g} s clips in {seconds:g} s crops "
              f"({label}): {rates[label]:.3f} steps/s of {BATCH} clips")
    print(f"ratio fitted / fixed 4 s crop: {rates['fitted'] / rates['fixed']:.2f}x (target >= 1.5x)")


if __name__ == "__main__":
    main()
