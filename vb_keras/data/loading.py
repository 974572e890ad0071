"""Decoding many clips in parallel, with bad files skipped and reported (or failing fast).

`--on_bad_audio=skip` (the default) drops a clip that cannot be used, counts it and lists it in
`bad_audio.csv` in the output directory; `fail` stops at the first one with its one-line reason.
"""

import concurrent.futures
import csv
import dataclasses
import logging
import os
from typing import Iterator, List, Tuple

import numpy as np
import pandas as pd

from vb_keras.data import audio
from vb_keras.data.exvo import PATH
from vb_keras.errors import BadAudioError, UserInputError
from vb_keras.utils import atomic
from vb_keras.utils import progress as progress_bars

ON_BAD_AUDIO = ("skip", "fail")
BAD_AUDIO_REPORT = "bad_audio.csv"


@dataclasses.dataclass(frozen=True)
class BadClip:
    file_id: str
    path: str
    reason: str


def to_int16(waveform: np.ndarray) -> np.ndarray:
    """[-1, 1] float -> 16-bit PCM, the storage format of TFRecords and in-memory clips.

    Scaled by 32768 (clipped at 32767) like libsndfile and the pipeline's inverse, so 16-bit sources
    round-trip bit-exactly.
    """
    return np.clip(np.round(waveform * 32768.0), -32768, 32767).astype(np.int16)


def decode_clips(table: pd.DataFrame, id_column: str, on_bad_audio: str = "skip",
                 workers: int = 0, progress: bool = True, label: str = "decoding audio"
                 ) -> Iterator[Tuple[int, np.ndarray | BadClip]]:
    """Yields (row position, int16 16 kHz waveform or BadClip) for every row of `table`, in order.

    Decoding runs in a thread pool (libsndfile and TensorFlow release the GIL). With
    on_bad_audio="fail" the first bad clip raises `BadAudioError`. `progress`: the progress of
    `label` on stderr.
    """
    if on_bad_audio not in ON_BAD_AUDIO:
        raise UserInputError(f"--on_bad_audio: {on_bad_audio!r} is not one of {', '.join(ON_BAD_AUDIO)}")
    workers = workers or min(8, (os.cpu_count() or 1) + 2)
    paths, ids = list(table[PATH]), list(table[id_column])
    bar = progress_bars.Progress(len(paths), label=label) if progress and paths else None

    def load(position):
        try:
            return position, to_int16(audio.load(paths[position]))
        except BadAudioError as error:
            if on_bad_audio == "fail":
                raise
            return position, BadClip(ids[position], paths[position], error.reason)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # A bounded window of futures keeps memory flat on large sets while preserving order.
        window = workers * 8
        futures = [pool.submit(load, i) for i in range(min(window, len(paths)))]
        next_position = len(futures)
        for done in range(len(paths)):
            result = futures[done].result()
            futures[done] = None
            if next_position < len(paths):
                futures.append(pool.submit(load, next_position))
                next_position += 1
            if bar is not None:
                bar.add()
            yield result


def write_bad_audio_report(bad: List[BadClip], output_dir, final_dir=None) -> str | None:
    """Writes `bad_audio.csv` (File_ID, path, reason) into `output_dir`; logs the count.

    `final_dir`: where the report will be once `output_dir` (a scratch directory, see
    `atomic.atomic_directory`) is renamed into place; the log names it, since the scratch is gone.
    """
    if not bad:
        return None
    report = os.path.join(output_dir, BAD_AUDIO_REPORT)

    def write(stream):
        writer = csv.writer(stream)
        writer.writerow(["File_ID", "path", "reason"])
        for clip in bad:
            writer.writerow([clip.file_id, clip.path, clip.reason])

    atomic.write_file(report, write)   # a kill leaves the previous report or none, never half
    logging.warning("skipped %d unusable audio file(s); listed in %s (first: %s: %s)", len(bad),
                    os.path.join(final_dir, BAD_AUDIO_REPORT) if final_dir else report,
                    bad[0].path, bad[0].reason)
    return report
