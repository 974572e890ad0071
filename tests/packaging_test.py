"""pyproject.toml describes the package as it is: a console script per program, a license file, an
extra for every optional import of the benchmarks and tests, upper bounds on the major releases
the package depends on."""

import ast
import glob
import importlib.metadata
import os
import re
import sys
import tomllib

import pytest

from conftest import REPO_ROOT, run_main

PYPROJECT = os.path.join(REPO_ROOT, "pyproject.toml")
pytestmark = pytest.mark.skipif(not os.path.isfile(PYPROJECT),
                                reason="no pyproject.toml beside the tests (an installed copy)")


def project():
    with open(PYPROJECT, "rb") as stream:
        return tomllib.load(stream)["project"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_program_is_a_console_script_and_nothing_else_is():
    programs = sorted(os.path.basename(path) for path in glob.glob(os.path.join(REPO_ROOT, "bin",
                                                                                "*"))
                      if os.path.islink(path))
    assert len(programs) == 12
    assert project()["scripts"] == {f"vb_{name}": f"vb_keras_bin.{name}:run" for name in programs}
    for name in programs:
        with open(os.path.join(REPO_ROOT, "bin", f"{name}.py")) as stream:
            tree = ast.parse(stream.read())
        assert "run" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, name


def test_the_license_is_shipped_and_named():
    metadata = project()
    assert metadata["license"] == "Apache-2.0" and metadata["license-files"] == ["LICENSE"]
    with open(os.path.join(REPO_ROOT, "LICENSE")) as stream:
        assert "Apache License" in stream.read(2000)


def test_tensorflow_and_keras_are_bounded_below_their_next_major_release():
    dependencies = {requirement_name(requirement): requirement
                    for requirement in project()["dependencies"]}
    assert "<3" in dependencies["tensorflow"] and "<4" in dependencies["keras"]
    # tensorflow-hub (through tf_keras) caps TensorFlow below its next minor release: optional.
    assert "tensorflow-hub" not in dependencies
    assert "tensorflow-hub" in map(requirement_name, project()["optional-dependencies"]["hub"])


def imported_distributions(pattern):
    """The distributions whose top-level modules the files matching `pattern` import (Python's own
    modules and the project's left out), by installed metadata or, if not installed, by name."""
    by_module = importlib.metadata.packages_distributions()
    local = {"vb_keras", "conftest", "serving_loaders", "permutation_fixtures", "program_runs"}
    names = set()
    for path in glob.glob(os.path.join(REPO_ROOT, pattern)):
        with open(path) as stream:
            tree = ast.parse(stream.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in local:
                    continue
                names.update(name.lower().replace("_", "-") for name in by_module.get(top, [top]))
    return names


@pytest.mark.parametrize("pattern, extra", [("benchmarks/*.py", "bench"), ("tests/*.py", "test")])
def test_every_import_is_a_declared_dependency(pattern, extra):
    metadata = project()
    declared = {requirement_name(requirement) for requirement in
                metadata["dependencies"] + metadata["optional-dependencies"][extra]}
    missing = imported_distributions(pattern) - declared
    assert not missing, sorted(missing)


if __name__ == "__main__":
    run_main()
