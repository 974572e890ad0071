import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import REPO_ROOT, run_main
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


if __name__ == "__main__":
    run_main()
