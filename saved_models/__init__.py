"""The models vb_keras ships, installed by `pip install .` as the package `vb_keras_models` (data
only: TF Serving servables; vb_keras.serving.shipped finds them)."""
