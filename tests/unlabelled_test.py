"""Unlabelled audio for pre-training (vb_keras.data.unlabelled): data directories of any columns,
prepared TFRecords, audio files and folders, bad audio skipped and reported."""

import os

import numpy as np
import pandas as pd
import pytest

from conftest import run_main, tone, write_wav
from vb_keras.data import unlabelled
from vb_keras.errors import UserInputError


def test_every_row_of_a_data_directory_counts_whatever_its_labels(tiny_demo):
    table = unlabelled.data_dir_files(tiny_demo)
    info = pd.read_csv(os.path.join(tiny_demo, "data_info.csv"))
    assert len(table) == len(info)   # Train, Val and Test alike
    assert all(os.path.isfile(path) for path in table["path"])


def test_files_and_folders_and_a_bad_file_reported(tmp_path):
    folder = tmp_path / "bursts"
    (folder / "sub").mkdir(parents=True)
    write_wav(str(folder / "a.wav"), 0.2 * np.sin(np.arange(8000, dtype=np.float32) / 5))
    write_wav(str(folder / "sub" / "b.wav"), 0.1 * np.ones(24000, np.float32))
    (folder / "broken.wav").write_bytes(b"not audio")
    waveforms = unlabelled.waveforms_of(audio=[str(folder)], report_dir=str(tmp_path))
    assert sorted(len(w) for w in waveforms) == [8000, 24000]
    assert "broken" in open(tmp_path / "bad_audio.csv").read()
    with pytest.raises(UserInputError, match="^--audio: .*missing does not exist"):
        unlabelled.waveforms_of(audio=[str(tmp_path / "missing")])
    with pytest.raises(UserInputError, match="name the audio"):
        unlabelled.waveforms_of()


def test_batches_crop_pad_and_count_valid_samples():
    waveforms = [np.full(n, 1000, np.int16) for n in (3000, 16000, 20000)]
    batch = next(iter(unlabelled.batches(waveforms, 3, 16000, training=False)))
    assert batch["waveform"].shape == (3, 16000)
    assert sorted(batch["num_samples"].numpy()) == [3000, 16000, 16000]
    train = list(unlabelled.batches(waveforms, 2, 16000, seed=1))
    assert len(train) == 1 and train[0]["waveform"].shape == (2, 16000)   # full batches only
    held_in, held_out = unlabelled.split_off(list(range(45)))
    assert held_out == [19, 39] and len(held_in) == 43
    assert unlabelled.split_off([1, 2]) == ([1, 2], [])


def test_audio_files_from_folders_and_files(tmp_path):
    write_wav(str(tmp_path / "a" / "x.wav"), tone(0.5))
    write_wav(str(tmp_path / "a" / "deep" / "y.wav"), tone(0.5))
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    single = write_wav(str(tmp_path / "z.wav"), tone(0.5))
    table = unlabelled.audio_files([str(tmp_path / "a"), single])
    assert list(table.File_ID) == [os.path.join("deep", "y"), "x", "z"] or \
        sorted(table.File_ID) == sorted([os.path.join("deep", "y"), "x", "z"])
    with pytest.raises(UserInputError, match="--audio: .*nowhere does not exist"):
        unlabelled.audio_files([str(tmp_path / "nowhere")])
    with pytest.raises(UserInputError, match="two files give the id 'z'"):
        unlabelled.audio_files([single, single])


def test_a_data_directory_id_naming_a_file_outside_its_audio_folder_is_refused(tmp_path):
    (tmp_path / "outside").mkdir()
    write_wav(str(tmp_path / "outside" / "secret.wav"), tone())
    data_dir = tmp_path / "data"
    (data_dir / "wav").mkdir(parents=True)
    write_wav(str(data_dir / "wav" / "1.wav"), tone())
    (data_dir / "data_info.csv").write_text("File_ID,Split\n[1],Train\n[../../outside/secret],Train\n")
    with pytest.raises(UserInputError, match=r"data_info\.csv: line 3 \(File_ID "
                                             r"\[\.\./\.\./outside/secret\]\): climbs out of "):
        unlabelled.data_dir_files(str(data_dir))


if __name__ == "__main__":
    run_main()
