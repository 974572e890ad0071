import csv
import os

import pandas as pd
import pytest

from conftest import run_main, tone, write_wav
from vb_keras.data import loading
from vb_keras.errors import BadAudioError, UserInputError


def table_of(tmp_path, good=3):
    paths = [write_wav(str(tmp_path / f"{i}.wav"), tone(0.5, 22050), 22050) for i in range(good)]
    paths.insert(1, str(tmp_path / "gone.wav"))
    return pd.DataFrame({"File_ID": [f"c{i}" for i in range(len(paths))], "path": paths})


def test_skip_keeps_order_and_reports_bad_clips(tmp_path):
    results = list(loading.decode_clips(table_of(tmp_path), "File_ID", "skip", workers=2,
                                        progress=False))
    assert [position for position, _ in results] == [0, 1, 2, 3]
    bad = [r for _, r in results if isinstance(r, loading.BadClip)]
    assert [(b.file_id, b.reason) for b in bad] == [("c1", "file not found")]
    good = [r for _, r in results if not isinstance(r, loading.BadClip)]
    assert all(w.dtype == "int16" and len(w) == 8000 for w in good)
    report = loading.write_bad_audio_report(bad, str(tmp_path / "out"))
    with open(report) as stream:
        assert list(csv.reader(stream)) == [["File_ID", "path", "reason"],
                                            ["c1", str(tmp_path / "gone.wav"), "file not found"]]


class Unprintable:
    def __str__(self):
        raise RuntimeError("killed while writing")


def test_the_report_is_written_whole_or_not_at_all(tmp_path):
    """reliability.md: CSV outputs are written to a scratch file and renamed."""
    first = [loading.BadClip("c1", "/a/c1.wav", "file not found")]
    report = loading.write_bad_audio_report(first, str(tmp_path))
    with pytest.raises(RuntimeError, match="killed"):
        loading.write_bad_audio_report(first + [loading.BadClip("c2", "/a/c2.wav", Unprintable())],
                                       str(tmp_path))
    assert os.listdir(tmp_path) == [loading.BAD_AUDIO_REPORT]   # no scratch left
    with open(report) as stream:
        assert len(list(csv.reader(stream))) == 2               # the earlier report, whole


def test_fail_stops_at_the_first_bad_clip(tmp_path):
    with pytest.raises(BadAudioError, match="gone.wav: file not found"):
        list(loading.decode_clips(table_of(tmp_path), "File_ID", "fail", progress=False))


def test_no_report_without_bad_clips_and_bad_mode_rejected(tmp_path):
    assert loading.write_bad_audio_report([], str(tmp_path)) is None
    assert not os.listdir(tmp_path)
    with pytest.raises(UserInputError, match="--on_bad_audio"):
        list(loading.decode_clips(table_of(tmp_path), "File_ID", "ignore"))


if __name__ == "__main__":
    run_main()
