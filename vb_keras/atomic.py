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
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(scratch, 0o777 & ~umask)  # mkdtemp makes it private; give it normal permissions
        yield scratch
        if os.path.isdir(target) and not os.listdir(target):
            os.rmdir(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_json(path, value, indent: int | None = 2) -> str:
    """Writes `value` as JSON to `path` through a scratch file and a rename, so a reader (or a run
    resumed after a kill) never sees half a file. NumPy values are written as lists and numbers."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".", suffix=".tmp",
                                     delete=False) as stream:
        try:
            json.dump(value, stream, indent=indent, default=_jsonable)
        except BaseException:
            os.unlink(stream.name)
            raise
    os.replace(stream.name, path)
    return path


def _jsonable(value):
    return value.tolist() if hasattr(value, "tolist") else str(value)
