#!/usr/bin/env python3
"""Clips per second the tf.data pipeline delivers from TFRecords, with the model a no-op.

Writes a prepared set of 3 s clips (synthetic noise, HUME-VB label schema) to a temporary directory,
then times training batches of 64 (shuffle, random crop, labels, prefetch) against a peer: the same
clips decoded one WAV file at a time with soundfile in a Python loop, as simple training scripts do.
Target: >= 2,000 clips/s, so input never limits training on this machine.

  python benchmarks/input_pipeline.py [--clips 2048] [--batches 200]
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.data import pipeline, tfrecord  # noqa: E402
from vb_keras.params import PipelineParams  # noqa: E402
from vb_keras.schema import HUME_VB  # noqa: E402


def write_prepared(directory, clips, samples, rng):
    schema = HUME_VB.with_classes(["0", "1", "2", "3"])
    shards = 4
    writers = [tf.io.TFRecordWriter(tfrecord.shard_path(directory, "Train", i, shards))
               for i in range(shards)]
    wav_dir = os.path.join(directory, "wav")
    os.makedirs(wav_dir)
    for index in range(clips):
        audio = (rng.standard_normal(samples) * 3000).astype(np.int16)
        writers[index % shards].write(tfrecord.serialize_example(
            str(index), f"s{index % 50}", audio, rng.random(10), str(index % 4), 26.0, True))
        soundfile.write(os.path.join(wav_dir, f"{index}.wav"), audio, 16000, subtype="PCM_16")
    for writer in writers:
        writer.close()
    tfrecord.write_info(directory, schema, {"Train": clips}, "benchmark", {"Train": shards})
    return schema


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2048)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    params = PipelineParams(batch_size=args.batch, clip_seconds=3.0)
    with tempfile.TemporaryDirectory() as directory:
        schema = write_prepared(directory, args.clips, 3 * 16000, rng)
        # (training batches as bin/train reads them: epochs of a pass, endless)
        batches = iter(pipeline.batches(pipeline.clips_from_tfrecords(directory, "Train", schema),
                                        schema, params, training=True,
                                        steps_per_epoch=args.clips // args.batch))
        for _ in range(5):  # warm-up: read the clips into memory and prefetch
            next(batches)
        start = time.perf_counter()
        for _ in range(args.batches):
            next(batches)                       # the model is a no-op
        ours = args.batches * args.batch / (time.perf_counter() - start)

        paths = [os.path.join(directory, "wav", f"{i}.wav") for i in range(args.clips)]
        start = time.perf_counter()
        count = 0
        while count < min(args.batches * args.batch, 4 * args.clips):
            batch = np.stack([soundfile.read(paths[(count + i) % args.clips], dtype="float32")[0]
                              for i in range(args.batch)])
            count += len(batch)
        theirs = count / (time.perf_counter() - start)
    print(f"input pipeline, 3 s clips, batch {args.batch}, {os.cpu_count()} cores, TF {tf.__version__}")
    print(f"  vb_keras tf.data from TFRecords:     {ours:8.0f} clips / s (target >= 2,000)")
    print(f"  soundfile WAV loop (Python, 1 thread): {theirs:8.0f} clips / s")
    print(f"  ratio: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
