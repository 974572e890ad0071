"""What pyproject.toml cannot say: bin/ is installed as the package vb_keras_bin, so the programs
also run as vb_<name> ([project.scripts]). Everything else is in pyproject.toml."""

import setuptools

setuptools.setup(
    packages=setuptools.find_packages(include=["vb_keras", "vb_keras.*"]) + ["vb_keras_bin"],
    package_dir={"vb_keras_bin": "bin"},
)
