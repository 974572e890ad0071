"""vb_keras: multitask vocal-burst modelling with Keras 3 (Belanich et al., ICML 2022 ExVo MultiTask).

Importing the package is cheap: no TensorFlow work, no file access. Modules are imported where used,
e.g. `from vb_keras.evaluation import metrics` or `from vb_keras.data import exvo`; the layout is in
docs/design.md.
"""

__version__ = "0.1.0"
