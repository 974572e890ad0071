#!/usr/bin/env python3
"""Latency and throughput of an exported ResNet18 SavedModel next to the Keras model's own predict.

Exports a (randomly initialised: speed does not depend on the weights) multitask ResNet18 the way
bin/export does, then on this CPU, in the same run:
  latency:    one 3 s clip per call, median and 95th percentile over --calls calls;
  throughput: batches of 64 clips of 3 s, clips per second over --batches batches;
for (a) the SavedModel's serving_default signature (what TF Serving runs) and (b) the Keras model's
`predict`, on the same inputs. Prints the ratios (SavedModel / Keras).

  python benchmarks/serving.py [--calls 50] [--batches 4]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.keys import NUM_SAMPLES, SIGNATURE, WAVEFORM  # noqa: E402
from vb_keras.serving import export  # noqa: E402
from vb_keras.models import multitask  # noqa: E402
from vb_keras.params import TrainingParams  # noqa: E402
from vb_keras.schema import HUME_VB  # noqa: E402

SCHEMA = HUME_VB.with_classes(["China", "South Africa", "United States", "Venezuela"])
SAMPLES = 3 * 16000


def timings(call, inputs, repeats):
    call(inputs)   # warm up (tracing, allocation)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(inputs)
        seconds.append(time.perf_counter() - start)
    return np.asarray(seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50, help="single-clip calls for latency")
    parser.add_argument("--batches", type=int, default=4, help="batches of 64 for throughput")
    args = parser.parse_args()
    model = multitask.build_model("resnet18", SCHEMA)
    servable = export.Servable([export.Member(model, TrainingParams(model="resnet18"))], SCHEMA,
                               {"emotion": np.full(10, 0.2), "country": 2, "age": 26.0})
    with tempfile.TemporaryDirectory() as root:
        path = export.export(servable, os.path.join(root, "resnet18"), verify=False)
        signature = tf.saved_model.load(path).signatures[SIGNATURE]
        rng = np.random.default_rng(0)

        def inputs(batch):
            return {WAVEFORM: rng.uniform(-0.5, 0.5, (batch, SAMPLES)).astype(np.float32),
                    NUM_SAMPLES: np.full(batch, SAMPLES, np.int32)}

        def saved(features):
            return signature(**{key: tf.constant(value) for key, value in features.items()})

        def keras_predict(features):
            return model.predict(features, batch_size=len(features[NUM_SAMPLES]), verbose=0)

        one, many = inputs(1), inputs(64)
        saved_one, keras_one = timings(saved, one, args.calls), timings(keras_predict, one,
                                                                         args.calls)
        saved_many = timings(saved, many, args.batches)
        keras_many = timings(keras_predict, many, args.batches)
    print(f"one 3 s clip per call ({args.calls} calls):")
    for name, values in (("SavedModel", saved_one), ("Keras predict", keras_one)):
        print(f"  {name:14s} median {np.median(values) * 1e3:7.1f} ms   95th percentile "
              f"{np.percentile(values, 95) * 1e3:7.1f} ms")
    print(f"  ratio (SavedModel / Keras): median {np.median(saved_one) / np.median(keras_one):.2f}x")
    rate_saved = 64 / np.median(saved_many)
    rate_keras = 64 / np.median(keras_many)
    print(f"batches of 64 clips of 3 s ({args.batches} batches):")
    print(f"  SavedModel {rate_saved:7.1f} clips/s   Keras predict {rate_keras:7.1f} clips/s   "
          f"ratio {rate_saved / rate_keras:.2f}x")


if __name__ == "__main__":
    main()
