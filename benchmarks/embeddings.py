#!/usr/bin/env python3
"""Frozen-embedder costs of section 2.2, each next to a peer measured in the same run.

1. Extraction: seconds of audio embedded per second by the built-in `small` Conformer and by the
   pre-trained YAMNet export (../shared/models/yamnet_hub, when present), through the same path as
   bin/extract_embeddings (2.5 s windows, batches of 64 windows). Peer: the ResNet18 task model's
   own forward pass (front end included) on the same audio: the cost of section 2.1's model per
   second of audio.
2. Head epochs from the cache: one epoch of conformer_autopool (multitask, batch 128, Adam 3e-4) on
   a cache the size of HUME-VB's training split (20,000 clips of HUME-VB-like durations; synthetic
   1024-d embeddings). Peer: embedding those clips on the fly each epoch instead, estimated from
   the extraction rate of (1) (YAMNet's when present, else the small Conformer's).

3. With --student=DIR (an export of a distilled run, bin/export_embedder --weights=<bin/pretrain
   --teacher run>): its extraction rate against its teacher's (yamnet_hub), measured alike: the
   speed-up distillation buys.

  python benchmarks/embeddings.py [--clips 20000] [--audio_seconds 160] [--student DIR]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras.keys import NUM_SAMPLES, WAVEFORM  # noqa: E402
from vb_keras.models import embedders, losses  # noqa: E402
from vb_keras.data import embedding_cache  # noqa: E402
from vb_keras.utils import windows  # noqa: E402
from vb_keras.models import heads, multitask  # noqa: E402
from vb_keras.params import WindowParams  # noqa: E402
from vb_keras.schema import HUME_VB  # noqa: E402

YAMNET = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.pardir,
                      "shared", "models", "yamnet_hub")
WINDOW = WindowParams()
SCHEMA = HUME_VB.with_classes(["0", "1", "2", "3"])


def clips(audio_seconds, rng):
    """Clips of 1-4 s (HUME-VB's typical range) adding up to about `audio_seconds`."""
    result, total = [], 0.0
    while total < audio_seconds:
        seconds = rng.uniform(1.0, 4.0)
        result.append((rng.normal(0, 0.1, int(seconds * 16000))).astype(np.float32))
        total += seconds
    return result, total


def extraction_rate(embedder, audio, total_seconds):
    pieces = np.concatenate([windows.clip_windows(clip, WINDOW).numpy() for clip in audio])
    embedder(pieces[:embedding_cache.WINDOWS_PER_BATCH])   # trace and warm up
    start = time.perf_counter()
    for i in range(0, len(pieces), embedding_cache.WINDOWS_PER_BATCH):
        np.asarray(embedder(pieces[i:i + embedding_cache.WINDOWS_PER_BATCH]))
    return total_seconds / (time.perf_counter() - start)


def resnet_rate(audio, total_seconds):
    model = multitask.build_model("resnet18", SCHEMA)
    forward = tf.function(lambda f: model(f, training=False), reduce_retracing=True)
    batches = []
    for i in range(0, len(audio), 32):
        group = audio[i:i + 32]
        length = max(len(clip) for clip in group)
        batches.append({WAVEFORM: np.stack([np.pad(c, (0, length - len(c))) for c in group]),
                        NUM_SAMPLES: np.array([len(c) for c in group], np.int32)})
    forward(batches[0])
    start = time.perf_counter()
    for batch in batches:
        forward(batch)
    return total_seconds / (time.perf_counter() - start)


def head_epoch_seconds(num_clips, rng):
    # HUME-VB-like durations (log-normal around 2 s, 0.5-10 s, mean about 2.2 s) and their windows.
    durations = np.clip(rng.lognormal(np.log(2.0), 0.4, num_clips), 0.5, 10.0)
    counts = [WINDOW.num_windows(int(seconds * 16000)) for seconds in durations]
    sequences = {f"{i:06d}": rng.normal(0, 1, (n, 1024)).astype(np.float32)
                 for i, n in enumerate(counts)}
    rows = pd.DataFrame({"File_ID": list(sequences), "Subject_ID": "s", "Split": "Train",
                         "Country": rng.integers(0, 4, num_clips).astype(str),
                         "Age": rng.uniform(18, 40, num_clips), "labelled": True,
                         **{name: rng.random(num_clips) for name in SCHEMA.emotion_columns}})
    batches = embedding_cache.sequence_batches(
        embedding_cache.clips_from_cache(rows, sequences, SCHEMA), SCHEMA, 128, training=True)
    model = heads.build_head_model("conformer_autopool", 1024, SCHEMA)
    model.compile(keras.optimizers.Adam(3e-4, epsilon=1e-8),
                  loss={"emotion": losses.NegativeMeanCCC(),
                        "country": keras.losses.CategoricalCrossentropy(),
                        "age": keras.losses.MeanSquaredError()},
                  loss_weights={"emotion": 5.0, "country": 0.05, "age": 0.05})
    model.fit(batches.take(2), epochs=1, verbose=0)           # trace
    start = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0)
    return time.perf_counter() - start, float(durations.sum())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20000, help="clips in the synthetic cache")
    parser.add_argument("--audio_seconds", type=float, default=160.0,
                        help="audio per extraction measurement")
    parser.add_argument("--student", default="", help="a distilled student's export, timed "
                        "against yamnet_hub")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    audio, total = clips(args.audio_seconds, rng)
    print(f"extraction on {len(audio)} clips, {total:.0f} s of audio (2.5 s windows, batches of "
          f"{embedding_cache.WINDOWS_PER_BATCH}):")
    resnet = resnet_rate(audio, total)
    print(f"  peer: ResNet18 task model forward   {resnet:8.0f} s of audio/s")
    rates = {}
    small = embedders.SavedModelEmbedder(embedders.builtin_embedder_dir())
    rates["small"] = extraction_rate(small, audio, total)
    print(f"  small Conformer (random weights)     {rates['small']:8.0f} s of audio/s  "
          f"({rates['small'] / resnet:.2f}x the ResNet18 forward)")
    if os.path.isfile(os.path.join(YAMNET, "saved_model.pb")):
        yamnet = embedders.SavedModelEmbedder(YAMNET)
        rates["yamnet"] = extraction_rate(yamnet, audio, total)
        print(f"  yamnet_hub (pre-trained, 1024-d)     {rates['yamnet']:8.0f} s of audio/s  "
              f"({rates['yamnet'] / resnet:.2f}x the ResNet18 forward)")
    else:
        print(f"  yamnet_hub: {YAMNET} absent, skipped")
    if args.student:
        student = embedders.SavedModelEmbedder(args.student)
        rate = extraction_rate(student, audio, total)
        versus = (f"{rate / rates['yamnet']:.2f}x yamnet_hub's rate" if "yamnet" in rates
                  else f"{rate / resnet:.2f}x the ResNet18 forward")
        print(f"  student {args.student} ({student.dimension}-d) {rate:8.0f} s of audio/s  "
              f"({versus})")
    seconds, audio_seconds = head_epoch_seconds(args.clips, rng)
    rate = rates.get("yamnet", rates["small"])
    on_the_fly = audio_seconds / rate
    print(f"conformer_autopool epoch on a {args.clips:,}-clip cache: {seconds:.1f} s; embedding the "
          f"same ~{audio_seconds / 3600:.1f} h of audio every epoch instead would add "
          f"~{on_the_fly:.0f} s ({on_the_fly / seconds:.0f}x the cached epoch)")


if __name__ == "__main__":
    main()
