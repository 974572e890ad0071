import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import REPO_ROOT, run_main
from vb_keras import atomic
from vb_keras.atomic import atomic_directory


def test_directory_appears_only_when_complete(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as scratch:
        (open(os.path.join(scratch, "a.txt"), "w")).write("x")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as scratch:
            open(os.path.join(scratch, "a.txt"), "w").write("x")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_sigkill_midway_leaves_no_target(tmp_path):
    target = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, time
        from vb_keras.atomic import atomic_directory
        with atomic_directory({str(target)!r}) as scratch:
            open(os.path.join(scratch, "part"), "w").write("half")
            print("started", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert process.stdout.readline().strip() == "started"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not target.exists()  # only a hidden .out.partial-* scratch directory may remain
    assert all(p.name.startswith(".out.partial-") for p in tmp_path.iterdir())


def test_write_json_replaces_whole_files_and_leaves_no_scratch(tmp_path):
    import json
    import numpy as np
    path = str(tmp_path / "sub" / "info.json")
    atomic.write_json(path, {"a": np.float32(1.5), "b": np.arange(3)})
    assert json.load(open(path)) == {"a": 1.5, "b": [0, 1, 2]}
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        atomic.write_json(path, {"bad": loop})           # fails halfway through writing
    assert json.load(open(path))["a"] == 1.5                # the old file is intact
    assert os.listdir(tmp_path / "sub") == ["info.json"]


if __name__ == "__main__":
    run_main()
