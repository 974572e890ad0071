"""What pyproject.toml cannot say: bin/ is installed as the package vb_keras_bin, so the programs
also run as vb_<name> ([project.scripts]), and saved_models/ as vb_keras_models, so that an
installed vb_predict finds the shipped model (docs/model_card.md). Everything else is in
pyproject.toml."""

import setuptools

setuptools.setup(
    packages=setuptools.find_packages(include=["vb_keras", "vb_keras.*"]) + ["vb_keras_bin",
                                                                               "vb_keras_models"],
    package_dir={"vb_keras_bin": "bin", "vb_keras_models": "saved_models"},
    # The shipped servable (a version directory: saved_model.pb, variables/, assets/).
    package_data={"vb_keras_models": ["emogator/**/*"]},
)
