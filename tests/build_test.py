"""BUILD stays true to the code (tools/bazel/check_deps.py): every vb_keras module a target's files
import is among its transitive deps, and every library, program and test file has a target. Bazel
itself runs only in CI; this catches a missing dep in the ordinary test run."""

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT, run_main

CHECK = os.path.join(REPO_ROOT, "tools", "bazel", "check_deps.py")


@pytest.mark.skipif(not os.path.isfile(os.path.join(REPO_ROOT, "BUILD")),
                    reason="no BUILD beside the tests (an installed copy)")
def test_every_import_is_a_declared_dep_and_every_file_has_a_target():
    process = subprocess.run([sys.executable, CHECK], capture_output=True, text=True, timeout=120)
    assert process.returncode == 0, process.stdout + process.stderr
    assert " 0 problem(s)" in process.stdout


if __name__ == "__main__":
    run_main()
