#!/usr/bin/env python3
"""Seconds of audio per second through vb_keras's log-mel vs librosa, same audio, one run.

librosa computes the same log-mel (1024-point FFT, 64 ms Hann window, 24 ms hop, 128 HTK mel bands
0-8 kHz, magnitude, log(x + 0.001)) clip by clip, the way peer systems prepare features; vb_keras
runs its Keras-layer function on batches inside a tf.function, as in training. Target: >= 5x.

  python benchmarks/frontend.py [--clips 512] [--seconds 3] [--batch 64] [--repeats 3]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import librosa  # noqa: E402  (benchmark-only dependency, in the `test` extra)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from vb_keras import params  # noqa: E402
from vb_keras.models import features

FRONTEND = params.RESNET_FRONTEND


def librosa_log_mel(clip):
    mel = librosa.feature.melspectrogram(
        y=clip, sr=FRONTEND.sample_rate, n_fft=FRONTEND.fft_length,
        hop_length=FRONTEND.hop_length_samples, win_length=FRONTEND.window_length_samples,
        window="hann", center=False, power=1.0, n_mels=FRONTEND.num_mel_bins,
        fmin=FRONTEND.lower_edge_hz, fmax=FRONTEND.upper_edge_hz, htk=True, norm=None)
    return np.log(mel.T + FRONTEND.log_offset)


def best_rate(run, audio_seconds, repeats):
    run()  # warm-up (tracing, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return audio_seconds / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    samples = int(args.seconds * FRONTEND.sample_rate)
    clips = rng.uniform(-0.5, 0.5, (args.clips, samples)).astype(np.float32)
    batches = [tf.constant(clips[i:i + args.batch]) for i in range(0, args.clips, args.batch)]
    audio_seconds = args.clips * args.seconds

    log_mel = tf.function(lambda x: features.log_mel_spectrogram(x, FRONTEND))
    log_mel_xla = tf.function(lambda x: features.log_mel_spectrogram(x, FRONTEND), jit_compile=True)
    ours = best_rate(lambda: [log_mel(b).numpy() for b in batches], audio_seconds, args.repeats)
    ours_xla = best_rate(lambda: [log_mel_xla(b).numpy() for b in batches], audio_seconds,
                         args.repeats)
    theirs = best_rate(lambda: [librosa_log_mel(c) for c in clips], audio_seconds, args.repeats)

    difference = np.max(np.abs(log_mel(batches[0]).numpy()[0] - librosa_log_mel(clips[0])))
    print(f"log-mel of {args.clips} x {args.seconds:g} s clips, {os.cpu_count()} cores, "
          f"TF {tf.__version__}, librosa {librosa.__version__}")
    # librosa builds its HTK filters by interpolating in Hz, tf.signal in mel: a small difference.
    print(f"  same features: max |vb_keras - librosa| = {difference:.1e} (log units)")
    print(f"  vb_keras, batched tf.function (batch {args.batch}): {ours:9.0f} s of audio / s")
    print(f"  vb_keras, same with XLA (jit_compile):     {ours_xla:9.0f} s of audio / s")
    print(f"  librosa, clip by clip:                      {theirs:9.0f} s of audio / s")
    print(f"  ratio: {ours / theirs:.1f}x librosa, {ours_xla / theirs:.1f}x with XLA (target >= 5x)")


if __name__ == "__main__":
    main()
