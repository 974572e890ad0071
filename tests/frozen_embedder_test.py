"""vb_keras.families.frozen_embedder: the settings of a head on a frozen embedder (section 2.2)."""

import os

import pytest

from conftest import run_main
from vb_keras.families import base, frozen_embedder
from vb_keras.families.frozen_embedder import FrozenEmbedderConfig
from vb_keras.params import WindowParams


def test_a_local_embedder_is_recorded_absolute_and_a_handle_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert FrozenEmbedderConfig(embedder="models/yamnet").embedder == os.path.join(
        str(tmp_path), "models", "yamnet")      # a rerun from elsewhere finds it
    handle = "https://tfhub.dev/google/trillsson3/1"
    assert FrozenEmbedderConfig(embedder=handle).embedder == handle
    assert FrozenEmbedderConfig().embedder == ""   # the built-in Conformer


def test_the_windows_are_the_papers_and_checked():
    assert FrozenEmbedderConfig().window() == WindowParams(2.5, 0.5)   # section 2.2
    with pytest.raises(ValueError):
        FrozenEmbedderConfig(window_seconds=1.0, min_tail_seconds=2.0)


def test_where_the_cache_lives_does_not_bind_a_resumed_run():
    config = FrozenEmbedderConfig(embedding_cache="/a")
    assert config.to_dict()["embedding_cache"] == "/a"
    assert "embedding_cache" not in base.binding_fields(config)


def test_the_family_trains_heads_with_the_papers_batch():
    family = frozen_embedder.FAMILY
    assert family.batch_size == 128 and family.learning_rate == 3e-4
    assert "conformer_autopool" in family.model_names and not family.switch


if __name__ == "__main__":
    run_main()
