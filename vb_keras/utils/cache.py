"""Where vb_keras keeps what it makes once and reuses: $VB_KERAS_CACHE, else ~/.cache/vb_keras.

Below it: demo-v<N>/ (the generated demo data), embedders/ (the built-in Conformer, exported) and
embeddings/ (per-window embedding caches, one directory per cache key).
"""

import os


def cache_root() -> str:
    return os.environ.get("VB_KERAS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "vb_keras")
