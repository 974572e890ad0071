"""Directories that appear whole or not at all.

Everything vb_keras writes as a directory (demo data, prepared TFRecords, later exports) is built in a
scratch directory beside the target and renamed into place only when complete: a run killed halfway
leaves no partial result that a later run (or TF Serving) would mistake for a finished one.
"""

import contextlib
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
