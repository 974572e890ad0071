import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import REPO_ROOT, run_main
from vb_keras.utils import atomic
from vb_keras.utils.atomic import atomic_directory
from vb_keras.errors import NoSpaceError, UserInputError


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
        from vb_keras.utils.atomic import atomic_directory
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


def _holder(code, directory):
    """A process that runs `code` (which takes the lock on `directory`), says "held" and sleeps."""
    script = textwrap.dedent(f"""
        import time
        from vb_keras.utils import atomic
        with {code}:
            print("held", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": REPO_ROOT})
    assert process.stdout.readline().strip() == "held"
    return process


def _dead_pid():
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("kind", ["owned_directory", "atomic_directory"])
def test_a_second_writer_is_refused_and_a_killed_ones_lock_is_gone(tmp_path, kind):
    target = str(tmp_path / "out")
    holder = _holder(f"atomic.{kind}({target!r})", target)
    try:
        with pytest.raises(UserInputError, match=rf"^--out: {target} is being written by another "
                                                 rf"process \(pid {holder.pid}\)"):
            with getattr(atomic, kind)(target, "--out"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with getattr(atomic, kind)(target, "--out") as directory:   # the kernel released the lock
        open(os.path.join(directory, "a.txt"), "w").write("x")
    assert (tmp_path / "out" / "a.txt").read_text() == "x"


def test_owned_directory_is_reentrant_and_leaves_no_lock_file(tmp_path):
    with atomic.owned_directory(tmp_path / "run", "--model_dir"):
        with atomic.owned_directory(tmp_path / "run", "--model_dir"):
            pass
        assert os.path.isfile(tmp_path / "run" / atomic.LOCK_FILE)
    assert os.listdir(tmp_path / "run") == []


def test_a_waiting_writer_goes_on_once_the_other_ends(tmp_path):
    target = str(tmp_path / "cache")
    holder = _holder(f"atomic.owned_directory({target!r})", target)
    threading.Timer(1.0, holder.kill).start()
    started = time.time()
    with atomic.owned_directory(target, wait=True):
        assert time.time() - started >= 0.5
    holder.wait()


def test_bad_output_paths_are_one_line_errors(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a").write_text("x")
    with pytest.raises(UserInputError, match=f"^--model_dir: {afile} is a file, not a directory$"):
        atomic.owned_directory(afile, "--model_dir").__enter__()
    with pytest.raises(UserInputError, match=f"^--export_dir: cannot create {afile}/1: {afile} is "
                                             "a file$"):
        atomic.atomic_directory(afile / "1", "--export_dir").__enter__()
    with pytest.raises(UserInputError, match=f"^--out_dir: {tmp_path / 'full'} exists and is not "
                                             "empty$"):
        atomic.atomic_directory(tmp_path / "full", "--out_dir").__enter__()
    with pytest.raises(UserInputError, match=f"^--output: {tmp_path} is a directory, not a file$"):
        atomic.check_output_path(tmp_path, "--output", directory=False)
    with pytest.raises(UserInputError, match="^--model_dir: cannot create /proc/vb_keras/run"):
        atomic.owned_directory("/proc/vb_keras/run", "--model_dir").__enter__()
    assert sorted(os.listdir(tmp_path)) == ["file", "full"]


def test_the_next_writer_removes_scratch_of_dead_writers_only(tmp_path):
    target = tmp_path / "out"
    dead, alive = f"{_dead_pid()}.0", atomic._writer_tag()
    leftovers = [f".out.partial-{dead}-abcd_123", ".out.partial-x1y2z3w4",   # dead; before tags
                 f".other.partial-{dead}-abcd_123"]                           # another target's
    for name in leftovers:
        (tmp_path / name).mkdir()
        (tmp_path / name / "big").write_text("x")
    with atomic_directory(target) as scratch:
        open(os.path.join(scratch, "a"), "w").write("x")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".other.partial-{dead}-abcd_123", "out"]
    # write_file's scratch files: a dead writer's go, a live one's (this process's) stay.
    for tag in (dead, alive):
        (tmp_path / f".info.json.{tag}-abcdefgh.tmp").write_text("half")
    atomic.write_json(tmp_path / "info.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir() if "info" in p.name) == [
        f".info.json.{alive}-abcdefgh.tmp", "info.json"]


def test_a_file_is_flushed_to_the_disk_before_its_rename_and_the_directory_after(tmp_path,
                                                                                monkeypatch):
    """A crash of the machine (unlike a killed program) loses what the kernel had not written:
    without the fsync a renamed file could be empty after a power loss."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync", os.readlink(
        f"/proc/self/fd/{fd}"))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append(("replace", str(b))),
                                                     real_replace(a, b))[1])
    path = str(tmp_path / "out.json")
    atomic.write_json(path, {"a": 1})
    (_, scratch), replaced, synced_directory = calls
    assert scratch.startswith(str(tmp_path / ".out.json.")) and scratch.endswith(".tmp")
    assert replaced == ("replace", path) and synced_directory == ("fsync", str(tmp_path))


def test_a_failed_write_leaves_no_scratch(tmp_path):
    """`baseline --output_json=<a directory>` once left .x.*.tmp beside it."""
    target = tmp_path / "x"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        atomic.write_json(str(target), {"a": 1})
    with pytest.raises(ZeroDivisionError):
        atomic.write_file(str(tmp_path / "y"), lambda stream: 1 / 0)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


@pytest.fixture
def small_file_system(tmp_path):
    """A 1 MB tmpfs at tmp_path/full (mounting needs root: skipped where it is not allowed)."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"a full file system needs a small tmpfs, and mount is not permitted here "
                    f"({mounted.stderr.strip() or mounted.returncode})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_file_system_is_one_line_naming_it_and_the_file_and_leaves_nothing(
        small_file_system):
    path = str(small_file_system / "big.bin")
    with pytest.raises(NoSpaceError, match=rf"^no space left on {small_file_system} \(tmpfs\) "
                                           rf"while writing {path}; free some space"):
        atomic.write_file(path, lambda stream: stream.write(b"x" * (2 << 20)), binary=True)
    assert os.listdir(small_file_system) == []
    # Weights are refused before h5py writes them (it crashes on a full disk): what they need is
    # known from their variables.
    import keras
    model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024)])
    with pytest.raises(NoSpaceError, match=r"while writing .*/m\.weights\.h5 \(2 MB needed, 1 MB "
                                           r"free\)"):
        atomic.write_weights(model, str(small_file_system / "m.weights.h5"))
    assert os.listdir(small_file_system) == []
    atomic.write_text(str(small_file_system / "small.txt"), "fits")   # once there is room


def test_read_json_names_an_empty_or_cut_file_in_one_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("")
    with pytest.raises(UserInputError, match=rf"^{path}: cannot be read as the settings: it is "
                                             r"empty$"):
        atomic.read_json(str(path), "the settings")
    path.write_text('{"training": {"epo')
    with pytest.raises(UserInputError, match=rf"^{path}: cannot be read: not JSON \(Unterminated"):
        atomic.read_json(str(path))


def test_an_output_directory_is_claimed_and_a_foreign_one_refused(tmp_path):
    fresh, foreign, recorded = tmp_path / "fresh", tmp_path / "foreign", tmp_path / "recorded"
    for directory, names in ((foreign, ["notes.txt"]), (recorded, ["config.json"])):
        directory.mkdir()
        for name in names:
            (directory / name).write_text("x")
    with atomic.owned_directory(str(fresh), "--out", claim=lambda d: False):
        pass
    assert os.listdir(fresh) == [atomic.OUTPUT_MARK]
    with atomic.owned_directory(str(fresh), "--out", claim=lambda d: False):   # its own again
        (fresh / "result").write_text("x")
    with pytest.raises(UserInputError, match=rf"^--out: {foreign} is not empty \(it holds "
                                             r"notes.txt\) and was not made by vb_keras"):
        with atomic.owned_directory(str(foreign), "--out", claim=lambda d: False):
            pass
    assert os.listdir(foreign) == ["notes.txt"]
    # One the program recognises as its own (written before marks existed) is claimed.
    with atomic.owned_directory(str(recorded), "--out", claim=lambda d: os.path.isfile(
            os.path.join(d, "config.json"))):
        pass
    assert sorted(os.listdir(recorded)) == [atomic.OUTPUT_MARK, "config.json"]


def test_a_process_scratch_is_its_temporary_directory_and_a_dead_ones_is_removed(tmp_path,
                                                                                 monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "vb_keras-999999999.1-abcdefgh"    # (no such pid)
    dead.mkdir()
    (dead / "__autograph_generated_file1.py").write_text("x")
    other = tmp_path / "someone_elses"
    other.mkdir()
    with atomic.process_scratch() as folder:
        assert tempfile.gettempdir() == folder == os.environ["TMPDIR"]
        assert os.path.dirname(folder) == str(tmp_path) and not dead.exists()
        assert subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                              capture_output=True, text=True).stdout.strip() == folder
        tempfile.mkstemp()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["someone_elses"]
    assert tempfile.gettempdir() == str(tmp_path)


if __name__ == "__main__":
    run_main()
