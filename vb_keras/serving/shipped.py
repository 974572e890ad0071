"""The model vb_keras ships ready to predict, so that a user can try it without training one.

`saved_models/emogator/` is a TF Serving servable (a version directory holding a SavedModel):
`conformer_autopool` on the pre-trained EfficientAT embedder, fine-tuned on EmoGator's vocal
bursts (30 emotion categories: an intensity per category and the most likely category). How it was
trained, what it reaches and what it is not for: docs/model_card.md.

From a checkout it is read in place; `pip install .` installs `saved_models/` as the package
`vb_keras_models`, so an installed `vb_predict` finds it too.
"""

import importlib.util
import os

NAME = "emogator"


def servable_root() -> str | None:
    """The shipped servable's export root (its versions below it), or None where it is not
    installed."""
    spec = importlib.util.find_spec("vb_keras_models")
    candidates = [os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "saved_models", NAME)]
    if spec is not None and spec.submodule_search_locations:
        candidates = [os.path.join(location, NAME)
                      for location in spec.submodule_search_locations] + candidates
    for candidate in candidates:
        if os.path.isdir(candidate) and any(name.isdigit() for name in os.listdir(candidate)):
            return candidate
    return None
