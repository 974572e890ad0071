"""Embedder handles (vb_keras.models.hub): local directories, and published models fetched through
tensorflow_hub, here from a SavedModel tarball served on 127.0.0.1 (no other network is used)."""

import contextlib
import functools
import http.server
import os
import sys
import tarfile
import threading

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_main
from vb_keras.errors import UserInputError
from vb_keras.models import embedders, hub


def _write_tiny_embedder(directory):
    """A TF-Hub-style SavedModel: audio_samples [batch, time] -> {"embedding": [batch, 2]}."""
    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
        def embed(self, audio_samples):
            return {"embedding": tf.stack([tf.reduce_mean(audio_samples, axis=1),
                                           tf.reduce_max(audio_samples, axis=1)], axis=1)}
    module = Tiny()
    tf.saved_model.save(module, directory, signatures={"serving_default": module.embed})
    return directory


@contextlib.contextmanager
def _serving(directory):
    """An HTTP server for `directory` on 127.0.0.1 (a free port); yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    cache = str(tmp_path / "tfhub_cache")
    monkeypatch.setenv("TFHUB_CACHE_DIR", cache)
    return cache


def test_runs_record_local_paths_absolute_and_handles_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hub.recorded("models/x") == str(tmp_path / "models" / "x")
    assert hub.recorded("https://tfhub.dev/google/trillsson3/1") == \
        "https://tfhub.dev/google/trillsson3/1"
    assert hub.recorded("") == ""


def test_a_local_directory_is_used_in_place(tmp_path):
    assert hub.resolve(str(tmp_path)) == str(tmp_path)
    with pytest.raises(UserInputError, match=r"^--teacher: .*missing is not a directory"):
        hub.resolve(str(tmp_path / "missing"), flag="--teacher")


def test_a_compressed_saved_model_url_is_fetched_once_into_the_hub_cache(tmp_path, hub_cache):
    model = _write_tiny_embedder(str(tmp_path / "tiny"))
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "tiny.tar.gz", "w:gz") as archive:
        for name in os.listdir(model):
            archive.add(os.path.join(model, name), arcname=name)
    with _serving(str(served)) as url:
        path = hub.resolve(f"{url}/tiny.tar.gz")
    assert os.path.commonpath([path, hub_cache]) == hub_cache
    # --embedder takes the URL as it takes a directory (here from the cache, the server gone).
    embedder = embedders.load(f"{url}/tiny.tar.gz")
    assert embedder.path == os.path.abspath(path) and embedder.dimension == 2
    # So does the Python API's SavedModelEmbedder.
    assert embedders.SavedModelEmbedder(f"{url}/tiny.tar.gz").path == embedder.path
    audio = np.array([[0.1, 0.3, -0.2, 0.6]], np.float32)
    np.testing.assert_allclose(embedder(audio).numpy(), [[0.2, 0.6]], rtol=1e-6)
    # Resolved again with the server gone: read from the cache, offline.
    assert hub.resolve(f"{url}/tiny.tar.gz") == path
    assert not [name for name in os.listdir(hub_cache) if name.endswith((".lock", ".tmp"))]


def test_a_handle_that_cannot_be_fetched_is_one_line_naming_it(tmp_path, hub_cache):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "junk.tar.gz").write_bytes(b"not a tarball")
    with _serving(str(tmp_path / "served")) as url:
        with pytest.raises(UserInputError, match=r"^--embedder: cannot fetch .*/missing: HTTP 404"):
            hub.resolve(f"{url}/missing")
        with pytest.raises(UserInputError, match=r"^--embedder: .*junk\.tar\.gz is not a "
                                                 r"compressed SavedModel"):
            hub.resolve(f"{url}/junk.tar.gz")
    # The server is gone now: nothing listens on its port.
    with pytest.raises(UserInputError, match=r"^--embedder: cannot reach .* check the network") as error:
        hub.resolve(f"{url}/other.tar.gz")
    assert "\n" not in str(error.value)


def test_a_handle_without_tensorflow_hub_installed_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)   # import fails, as when not installed
    with pytest.raises(UserInputError, match=r"^--teacher: fetching https://tfhub.dev/x/1 needs "
                                             r"tensorflow-hub.*pip install 'vb_keras\[hub\]'"):
        hub.resolve("https://tfhub.dev/x/1", flag="--teacher")


if __name__ == "__main__":
    run_main()
