"""Optimisers for fine-tuning: a smaller learning rate for pre-trained layers than for new ones.

Fine-tuning recipes give the pre-trained part of a model a smaller learning rate than the layers
trained from scratch on top of it ("discriminative fine-tuning", Howard & Ruder, ACL 2018; wav2vec
2.0 and HuBERT fine-tuning likewise keep the pre-trained encoder's updates small), so that the
task's first, noisy gradients do not wash out what pre-training learnt. Keras 3 has no per-variable
learning rate, so `ScaledAdam` multiplies Adam's for the variables whose path matches a pattern.
"""

import re

import keras


@keras.saving.register_keras_serializable(package="vb_keras")
class ScaledAdam(keras.optimizers.Adam):
    """Adam, with the learning rate multiplied by `scale` for the variables whose path
    (`keras.Variable.path`, e.g. "embedder/block1_kernel") matches `pattern` (`re.search`).

    Args:
      pattern: regular expression over variable paths.
      scale: the learning-rate multiplier for those variables (e.g. 0.1).
      **kwargs: Adam's (learning_rate, epsilon, ...).
    """

    def __init__(self, pattern: str = "", scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.pattern = pattern
        self.scale = float(scale)
        self._scaled_keys = set()

    def build(self, var_list):
        super().build(var_list)
        # Keyed as the update step sees them (the backend variable, not the Keras wrapper).
        self._scaled_keys = {self._var_key(variable) for variable in var_list
                             if self.pattern and re.search(self.pattern, variable.path)}

    @property
    def scaled_count(self) -> int:
        """How many of the optimised variables get the scaled learning rate."""
        return len(self._scaled_keys)

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._scaled_keys:
            learning_rate = learning_rate * self.scale
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "pattern": self.pattern, "scale": self.scale}
