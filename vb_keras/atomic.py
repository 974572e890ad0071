"""Directories that appear whole or not at all.

Everything vb_keras writes as a directory (demo data, prepared TFRecords, later exports) is built in a
scratch directory beside the target and renamed into place only when complete: a run killed halfway
leaves no partial result that a later run (or TF Serving) would mistake for a finished one.
"""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(target):
    """Yields a scratch directory; on success renames it to `target` (which must not exist or be empty).

    On an exception the scratch directory is removed and `target` is left untouched.
    """
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.partial-", dir=parent)
    try:
        os.chmod(scratch, 0o777 & ~_UMASK)  # mkdtemp makes it private; give it normal permissions
        yield scratch
        if os.path.isdir(target) and not os.listdir(target):
            os.rmdir(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_file(path, write, binary: bool = False) -> str:
    """Calls `write(stream)` on a scratch file beside `path`, then renames it to `path`, so a reader
    (or a run resumed after a kill) never sees half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb" if binary else "w", dir=directory, prefix=".",
                                     suffix=".tmp", delete=False,
                                     **({} if binary else {"encoding": "utf-8"})) as stream:
        try:
            write(stream)
        except BaseException:
            os.unlink(stream.name)
            raise
    os.chmod(stream.name, 0o666 & ~_UMASK)   # NamedTemporaryFile makes it private
    os.replace(stream.name, path)
    return path


def write_json(path, value, indent: int | None = 2) -> str:
    """Writes `value` as JSON atomically (`write_file`). NumPy values become lists and numbers."""
    return write_file(path, lambda stream: json.dump(value, stream, indent=indent,
                                                     default=jsonable))


def write_text(path, text: str) -> str:
    """Writes `text` atomically (`write_file`)."""
    return write_file(path, lambda stream: stream.write(text))


def _read_umask() -> int:
    umask = os.umask(0)   # the only way to read it is to set it, for the whole process
    os.umask(umask)
    return umask


# Read once, at import: setting it around every write would briefly leave other threads (TF's
# checkpoint writers) creating files under umask 0.
_UMASK = _read_umask()


def jsonable(value):
    """json's `default` for NumPy values (arrays and scalars to lists and numbers), else str."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
