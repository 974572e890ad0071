#!/usr/bin/env python3
"""Resampling to 16 kHz: vb_keras's soxr path vs scipy.signal.resample_poly, same audio, one run.

vb_keras resamples decoded clips on the host with libsoxr (`vb_keras.data.audio.resample`, quality
`audio.SOXR_QUALITY`); scipy's polyphase FIR (a Kaiser-windowed filter, its default design) is the
usual peer. Both run on a 1 kHz tone at each input rate; the error is the largest difference from
the exact 16 kHz tone, away from the edges. soxr's "HQ" setting is timed too (the quality choice).

  python benchmarks/resample.py [--seconds 10] [--repeats 5]
"""

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.signal  # noqa: E402
import soxr  # noqa: E402

from vb_keras.data import audio  # noqa: E402

RATES = (48000, 44100, 22050, 8000)
TARGET = 16000
FREQUENCY = 1000.0
EDGE = 400  # output samples left out at each end (filter start-up)


def tone(seconds, rate):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * FREQUENCY * t)).astype(np.float32)


def tone_error(waveform):
    reference = 0.5 * np.sin(2 * np.pi * FREQUENCY * np.arange(len(waveform)) / TARGET)
    return float(np.max(np.abs(waveform[EDGE:-EDGE] - reference[EDGE:-EDGE])))


def best_time(run, repeats):
    result = run()  # warm-up (soxr and scipy build their filters on first use)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def resample_poly(waveform, rate):
    g = math.gcd(rate, TARGET)
    return scipy.signal.resample_poly(waveform, TARGET // g, rate // g).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(f"resampling a {args.seconds:g} s {FREQUENCY:g} Hz tone to 16 kHz, {os.cpu_count()} cores, "
          f"soxr {soxr.__version__} ({audio.SOXR_QUALITY}), scipy {scipy.__version__}")
    ratios = []
    for rate in RATES:
        waveform = tone(args.seconds, rate)
        audio_seconds = len(waveform) / rate
        ours, ours_out = best_time(lambda: audio.resample(waveform, rate, TARGET), args.repeats)
        hq, hq_out = best_time(lambda: soxr.resample(waveform, rate, TARGET, quality="HQ"),
                               args.repeats)
        theirs, theirs_out = best_time(lambda: resample_poly(waveform, rate), args.repeats)
        ratios.append(theirs / ours)
        print(f"  {rate:5d} Hz: vb_keras (soxr {audio.SOXR_QUALITY}) {audio_seconds / ours:8.0f} s "
              f"of audio / s, error {tone_error(ours_out):.1e}; soxr HQ {audio_seconds / hq:8.0f}, "
              f"error {tone_error(hq_out):.1e}; resample_poly {audio_seconds / theirs:8.0f}, "
              f"error {tone_error(theirs_out):.1e}")
    print(f"  ratio: {min(ratios):.1f}x to {max(ratios):.1f}x scipy.signal.resample_poly "
          f"(target >= 1x, with a smaller error)")


if __name__ == "__main__":
    main()
