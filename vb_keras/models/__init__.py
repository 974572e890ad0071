"""Models: ResNet trunks (section 2.1), heads on Conformer or other embedder window embeddings
(section 2.2) and pre-trained embedders fine-tuned under them, under named task outputs.

Importing this package registers every custom layer, loss and optimizer with Keras, so a saved
`model.keras` loads with plain `keras.models.load_model` after `import vb_keras.models`.
"""

from vb_keras.models import losses, optimizers  # noqa: F401  (registers the losses, ScaledAdam)
from vb_keras.models import conformer, heads, multitask, quantizer, resnet  # noqa: F401  (layers)
from vb_keras.models import trainable_embedder  # noqa: F401  (registers its layers)
