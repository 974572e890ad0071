"""vb_keras.utils.cache: where things made once live."""

import os

from conftest import run_main
from vb_keras.utils import cache


def test_the_cache_is_vb_keras_cache_else_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("VB_KERAS_CACHE", str(tmp_path / "mine"))
    assert cache.cache_root() == str(tmp_path / "mine")
    monkeypatch.delenv("VB_KERAS_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache.cache_root() == os.path.join(str(tmp_path), ".cache", "vb_keras")


if __name__ == "__main__":
    run_main()
