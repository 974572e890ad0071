"""vb_keras: multitask vocal-burst modelling in Keras 3 (Belanich et al., ICML 2022 ExVo MultiTask)."""

import os

import setuptools

PROGRAMS = ("baseline", "evaluate", "experiment", "export", "export_embedder", "extract_embeddings",
            "make_demo_data", "permutation_test", "predict", "prepare_data", "pretrain", "train")

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "README.md"), encoding="utf-8") as readme:
    long_description = readme.read()

setuptools.setup(
    name="vb_keras",
    version="0.1.0",
    description="Multitask vocal burst modelling (emotion, country, age) with Keras 3 and TensorFlow",
    long_description=long_description,
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["vb_keras", "vb_keras.*"]) + ["vb_keras_bin"],
    # bin/ is installed as the package vb_keras_bin, so the programs also run as vb_<name>.
    package_dir={"vb_keras_bin": "bin"},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "tensorflow-hub",
        "numpy",
        "pandas",
        "absl-py",
        "tensorboard",  # TF >= 2.20 no longer installs it; the TensorBoard callback needs it
        "matplotlib",   # the evaluation plots (PNG)
        "scipy",        # the permutation test's t-tests and kernel density estimates
        # libsndfile: 24-bit and float WAV, FLAC, OGG and MP3 (tf.audio.decode_wav reads 16-bit only).
        "soundfile>=0.12",
        "soxr",         # host-side resampling to 16 kHz (libsoxr) where tensorflow-io does not load
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "librosa", "tensorflow-serving-api"],
        # tensorflow-io's kernels load only on the TF 2.16 line (see docs/data.md, Audio).
        "tfio": ["tensorflow==2.16.2", "tensorflow-io==0.37.1"],
    },
    entry_points={"console_scripts": [f"vb_{name} = vb_keras_bin.{name}:run" for name in PROGRAMS]},
)
