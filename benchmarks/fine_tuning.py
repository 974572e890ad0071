#!/usr/bin/env python3
"""A fine-tuning step's cost per clip against resnet18's, both in one run on one machine.

Both sides train the package's own models, built by their families as bin/train builds them and
compiled with the trainer's losses, weights and optimizer, on the same batch of 2 s clips (the
crop fitted to EmoGator's and EmoDB's bursts) with the families' default batch sizes: resnet18
from scratch (section 2.1, batches of 64) against `conformer_autopool` with a pre-trained embedder
fine-tuned under it (`--fine_tune`, batches of 32: every step runs the embedder forward and
backward on raw audio). Prints clips per second of each and their ratio; the peer is resnet18,
whose cost sets what a user waits for today. Target: fine-tuning at least as fast per clip.

  python benchmarks/fine_tuning.py [--embedder ../shared/models/efficientat_mn04_hub] [--steps 6]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.families import registry  # noqa: E402
from vb_keras.families.fine_tuned_embedder import FineTunedEmbedderConfig  # noqa: E402
from vb_keras.keys import NUM_SAMPLES, WAVEFORM  # noqa: E402
from vb_keras.params import SAMPLE_RATE, TrainingParams  # noqa: E402
from vb_keras.schema import LabelSchema  # noqa: E402
from vb_keras.training import compiling  # noqa: E402

CLIP_SECONDS, CLASSES, EMOTIONS = 2.0, 30, 30
DEFAULT_EMBEDDER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "..", "shared", "models", "efficientat_mn04_hub")


class _NoSettings:
    model_settings = {}


def clips_per_second(params: TrainingParams, steps: int) -> float:
    params = registry.with_defaults(params)
    keras.utils.set_random_seed(0)
    schema = LabelSchema(emotion_columns=tuple(f"e{i}" for i in range(EMOTIONS)),
                         class_column="c", age_column="",
                         classes=tuple(str(i) for i in range(CLASSES)))
    model = registry.build_model(params, _NoSettings(), schema, schema.tasks)
    compiling.compile_for_tasks(model, schema.tasks, registry.optimizer(params),
                                loss_weights=params.loss_weights)
    batch, samples = params.batch_size, int(CLIP_SECONDS * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    inputs = {WAVEFORM: rng.uniform(-0.5, 0.5, (batch, samples)).astype(np.float32),
              NUM_SAMPLES: np.full(batch, samples, np.int32)}
    labels = {"emotion": rng.random((batch, EMOTIONS)).astype(np.float32),
              "country": np.eye(CLASSES, dtype=np.float32)[rng.integers(0, CLASSES, batch)]}
    data = tf.data.Dataset.from_tensors((inputs, labels)).repeat()
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)          # warm-up: tracing
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    return steps * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                        help="a TF Hub Reusable SavedModel (default: shared EfficientAT mn04)")
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    sides = {
        "resnet18": TrainingParams(model="resnet18"),
        "fine-tuned conformer_autopool": TrainingParams(
            model="conformer_autopool", family=FineTunedEmbedderConfig(embedder=args.embedder)),
    }
    rates = {}
    for label, params in sides.items():
        rates[label] = clips_per_second(params, args.steps)
        print(f"{label} (batch {registry.with_defaults(params).batch_size}, {CLIP_SECONDS:g} s "
              f"clips): {rates[label]:.1f} clips/s")
    ratio = rates["fine-tuned conformer_autopool"] / rates["resnet18"]
    print(f"ratio fine-tuning / resnet18, clips per second: {ratio:.2f}x (target >= 1.0x); "
          f"cost per clip: {1 / ratio:.2f}x resnet18's")


if __name__ == "__main__":
    main()
