"""Models: ResNet trunks (section 2.1) and heads on frozen Conformer embeddings (section 2.2), under
named task outputs.

Importing this package registers every custom layer and the loss with Keras, so a saved
`model.keras` loads with plain `keras.models.load_model` after `import vb_keras.models`.
"""

from vb_keras.models import losses  # noqa: F401  (registers NegativeMeanCCC)
from vb_keras.models import conformer, heads, multitask, quantizer, resnet  # noqa: F401  (registers layers)
