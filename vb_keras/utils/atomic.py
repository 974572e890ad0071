"""Output directories that one process owns, and that appear whole or not at all.

Ownership: a program writing an output directory holds an exclusive lock on it (`owned_directory`,
and `atomic_directory` for its target), so a second program pointed at the same output stops at
once with a one-line error naming the directory and the other process, instead of both writing into
it. The lock is an `fcntl.flock` on a small file, which the kernel releases when its process ends: a
killed run never leaves a stale lock behind.

Atomicity: everything vb_keras writes as a directory (demo data, prepared TFRecords, exports) is built
in a scratch directory beside the target and renamed into place only when complete: a run killed
halfway leaves no partial result that a later run (or TF Serving) would mistake for a finished one.
Scratch left by a killed writer (`.NAME.partial-*` directories, `.NAME.*.tmp` files) is removed by
the next writer of the same target; a live writer's never is.

Durability: a file is flushed to the disk (`fsync`) before it is renamed into place, and the
directory after, so a crash of the machine (a power loss), not only of the program, leaves the old
file or the new one, never an empty or partial one under the final name.

Paths given by the user are checked first (`check_output_path`), so a file where a directory is
wanted, or an unwritable place, is a one-line `UserInputError` naming the flag and path. A write
that finds no space left on its file system removes its scratch and raises `NoSpaceError`, one
line naming the file system and the file; weights are checked against the free space before
h5py writes them (h5py crashes the process when its file system fills up mid-write).
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile

import numpy as np

from vb_keras.errors import NoSpaceError, UserInputError

LOCK_FILE = ".vb_keras.lock"   # inside a directory written in place (`owned_directory`)
# Marks a directory that a program writes in place as its own (`owned_directory`'s `claim`).
OUTPUT_MARK = ".vb_keras_output"

# Lock files this process holds: path -> [file descriptor, depth]. Re-entering a lock this process
# already holds is allowed (flock would refuse a second descriptor of the same process).
_HELD = {}


def _prefix(label) -> str:
    return f"{label}: " if label else ""


def check_output_path(path, label=None, directory: bool = True):
    """Raises a one-line UserInputError unless `path` can be written as a directory (or, with
    `directory=False`, as a file). Creates nothing.

    Args:
      label: the flag the path came from (e.g. "--model_dir"), named in the message.
    """
    prefix = _prefix(label)
    if os.path.lexists(path):
        if directory and not os.path.isdir(path):
            raise UserInputError(f"{prefix}{path} is a file, not a directory")
        if not directory and os.path.isdir(path):
            raise UserInputError(f"{prefix}{path} is a directory, not a file")
        writable = os.path.join(path, "") if directory else os.path.dirname(os.path.abspath(path))
        if not os.access(writable, os.W_OK | os.X_OK):
            raise UserInputError(f"{prefix}{writable.rstrip(os.sep) or os.sep} is not writable")
        return
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise UserInputError(f"{prefix}cannot create {path}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserInputError(f"{prefix}cannot create {path}: {ancestor} is not writable")


def _make_directory(path, label):
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserInputError(f"{_prefix(label)}cannot create {path} "
                             f"({error.strerror or error})") from None


@contextlib.contextmanager
def owned_directory(directory, label=None, wait: bool = False, claim=None):
    """Creates `directory` if needed and holds it exclusively while the block runs; yields it.

    Another process holding it makes this raise a UserInputError naming it and that process, or,
    with `wait=True` (for shared caches, where the other process's result is as good), wait for it.
    The lock is `directory/.vb_keras.lock`; it is released (and the file removed) on leaving, and
    released by the kernel if the process dies.

    Args:
      claim: for an output directory written in place (a run directory): a function telling
        whether a directory that lacks the mark `.vb_keras_output` is one such a program wrote
        before marks existed. A non-empty directory that is neither marked nor recognised is
        refused (a UserInputError naming it and what it holds): vb_keras never writes into a
        directory it did not make. Otherwise the mark is written (the directory is claimed).
    """
    check_output_path(directory, label)
    _make_directory(directory, label)
    with _hold(os.path.join(directory, LOCK_FILE), directory, label, wait):
        if claim is not None:
            _claim(directory, label, claim)
        yield directory


def _claim(directory, label, recognise):
    """Marks `directory` as vb_keras's output, unless it holds things vb_keras did not write."""
    if os.path.isfile(os.path.join(directory, OUTPUT_MARK)):
        return
    entries = sorted(set(os.listdir(directory)) - {LOCK_FILE})
    if entries and not recognise(directory):
        shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4
                                          else "")
        raise UserInputError(f"{_prefix(label)}{directory} is not empty (it holds {shown}) and "
                             "was not made by vb_keras; pass a new or empty directory")
    write_text(os.path.join(directory, OUTPUT_MARK), "an output directory of vb_keras\n")


@contextlib.contextmanager
def owned_by_chief(directory, label=None, chief: bool = True, claim=None):
    """`owned_directory` for the chief of a multi-worker run; another worker (which writes nothing
    there) only creates it, so workers given one directory on a shared file system are not
    refused."""
    if chief:
        with owned_directory(directory, label, claim=claim):
            yield directory
    else:
        check_output_path(directory, label)
        _make_directory(directory, label)
        yield directory


@contextlib.contextmanager
def owned_target(target, label=None, wait: bool = False):
    """Holds `target` (a directory that `atomic_directory` will create) exclusively, like
    `owned_directory`; the lock file is `.NAME.partial-lock` beside it, since the target does
    not exist yet (a hidden name in the family of the scratch directories)."""
    parent, name = os.path.split(os.path.abspath(target))
    check_output_path(parent, label)
    _make_directory(parent, label)
    with _hold(os.path.join(parent, f".{name}.partial-lock"), target, label, wait):
        yield target


@contextlib.contextmanager
def _hold(lock_path, directory, label, wait):
    lock_path = os.path.abspath(lock_path)
    if lock_path in _HELD:
        _HELD[lock_path][1] += 1
        try:
            yield
        finally:
            _HELD[lock_path][1] -= 1
        return
    descriptor = _acquire(lock_path, directory, label, wait)
    _HELD[lock_path] = [descriptor, 1]
    try:
        yield
    finally:
        del _HELD[lock_path]
        with contextlib.suppress(OSError):
            os.unlink(lock_path)   # before unlocking: a waiter then sees a new file, see _acquire
        os.close(descriptor)


def _acquire(lock_path, directory, label, wait) -> int:
    while True:
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise UserInputError(f"{_prefix(label)}cannot write into {directory} "
                                 f"({error.strerror or error})") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                # A file system without locks (some network mounts): write on, unguarded.
                logging.warning("cannot lock %s (%s): a second writer would not be stopped",
                                directory, error.strerror)
                return descriptor
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(descriptor)
                raise
            owner = _read_owner(descriptor)
            if not wait:
                os.close(descriptor)
                raise UserInputError(
                    f"{_prefix(label)}{directory} is being written by another process "
                    f"(pid {owner}); wait for it to finish, or use another directory") from None
            logging.info("waiting for process %s, which is writing %s", owner, directory)
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        # The previous holder removes the file before unlocking: a lock on a removed file guards
        # nothing (a third process may already hold a new one), so start again.
        try:
            current = os.path.samestat(os.fstat(descriptor), os.stat(lock_path))
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, f"{os.getpid()}\n".encode())
            return descriptor
        os.close(descriptor)


def _read_owner(descriptor) -> str:
    try:
        text = os.pread(descriptor, 64, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "unknown"


# ----------------------------------------------------------------------------- writers' scratch

def _start_time(pid) -> str:
    """The process's start time in clock ticks since boot ("" where /proc is missing): with the pid,
    it tells a live writer from a dead one whose pid was reused."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _writer_tag() -> str:
    """pid.starttime of this process, put into scratch names (see `_is_alive`)."""
    return f"{os.getpid()}.{_start_time(os.getpid()) or 0}"


def _is_alive(tag) -> bool:
    pid, _, start = tag.partition(".")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    now = _start_time(pid)
    return not (now and start not in ("", "0") and now != start)


def _remove_dead_scratch(parent, name):
    """Removes scratch directories of `name` whose writer is dead: `.NAME.partial-<tag>-XXXXXXXX`,
    and those from before tags (`.NAME.partial-XXXXXXXX`), which no live writer can own while this
    process holds the target's lock."""
    pattern = re.compile(rf"\.{re.escape(name)}\.partial-(?:(\d+\.\d+)-)?[a-z0-9_]{{8}}")
    for entry in os.listdir(parent):
        match = pattern.fullmatch(entry)
        if match and (match.group(1) is None or not _is_alive(match.group(1))):
            logging.info("removing %s, left by a killed writer", os.path.join(parent, entry))
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _remove_dead_temporaries(directory, name):
    """Removes `.NAME.<tag>-XXXXXXXX.tmp[.*]` files of `write_file` and `write_with` whose writer
    is dead."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+\.\d+)-[a-z0-9_]{{8}}\.tmp(?:\.[\w.]+)?")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and not _is_alive(match.group(1)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, entry))


@contextlib.contextmanager
def atomic_directory(target, label=None, wait: bool = False):
    """Yields a scratch directory; on success renames it to `target` (which must not exist or be empty).

    On an exception the scratch directory is removed and `target` is left untouched. The target is
    held exclusively meanwhile (`owned_target`; another writer is an error, or with `wait=True`
    waited for), and scratch that killed writers left for it is removed first.

    Raises:
      UserInputError: `target` is a file or a non-empty directory, cannot be created, or another
        process is writing it. `label` (a flag name) is named in the message.
    """
    shown = target
    target = os.path.abspath(target)
    check_output_path(target, label)
    _check_empty(target, shown, label)   # before the work, not at the rename after it
    parent, name = os.path.split(target)
    with owned_target(target, label, wait):
        _check_empty(target, shown, label)   # another writer may have finished it meanwhile
        _remove_dead_scratch(parent, name)
        scratch = tempfile.mkdtemp(prefix=f".{name}.partial-{_writer_tag()}-", dir=parent)
        try:
            os.chmod(scratch, 0o777 & ~_UMASK)  # mkdtemp makes it private; give it normal permissions
            yield scratch
            fsync_tree(scratch)
            if os.path.isdir(target) and not os.listdir(target):
                os.rmdir(target)
            os.replace(scratch, target)
            fsync(parent)
        except BaseException as error:
            raise no_space_error(error, shown) or error
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


# A program's own temporary directory (`process_scratch`), in the system's.
_PROCESS_SCRATCH = "vb_keras-"


@contextlib.contextmanager
def process_scratch():
    """Points this process's temporary files (Python's `tempfile`, and through $TMPDIR its
    children and TensorFlow's C++ code) at a folder of its own in the system's temporary
    directory, `vb_keras-<pid>.<start>-XXXXXXXX`, removed when the block ends. A killed program
    cannot remove it (nor the files TensorFlow's AutoGraph and Keras leave there), so the folders
    of dead processes are removed on entry. Yields the folder."""
    system = tempfile.gettempdir()
    pattern = re.compile(rf"{re.escape(_PROCESS_SCRATCH)}(\d+\.\d+)-[a-z0-9_]{{8}}")
    with contextlib.suppress(OSError):
        for entry in os.listdir(system):
            match = pattern.fullmatch(entry)
            if match and not _is_alive(match.group(1)):
                shutil.rmtree(os.path.join(system, entry), ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"{_PROCESS_SCRATCH}{_writer_tag()}-", dir=system)
    previous = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = folder, folder
    try:
        yield folder
    finally:
        tempfile.tempdir = previous[0]
        if previous[1] is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous[1]
        shutil.rmtree(folder, ignore_errors=True)


def _check_empty(target, shown, label):
    if os.path.isdir(target) and os.listdir(target):
        raise UserInputError(f"{_prefix(label)}{shown} exists and is not empty")


def write_file(path, write, binary: bool = False) -> str:
    """Calls `write(stream)` on a scratch file beside `path`, flushes it to the disk, then renames
    it to `path`, so a reader (or a run resumed after a kill or a crash) never sees half a file.
    Scratch files of `path` left by killed writers are removed; this one is removed if anything
    fails.

    Raises:
      NoSpaceError: the file system is full (nothing is left behind).
    """
    def save(temporary):
        with open(temporary, "wb" if binary else "w",
                  **({} if binary else {"encoding": "utf-8", "newline": ""})) as stream:
            write(stream)
    return write_with(path, save)


def write_with(path, save, suffix: str = "", needed_bytes: int = 0) -> str:
    """Calls `save(scratch_path)` to write a scratch file beside `path` (its name ends in
    `suffix`, for writers that insist on an extension, e.g. ".weights.h5"), flushes it to the
    disk, renames it to `path` and flushes the directory. See `write_file`.

    Args:
      needed_bytes: the size the file will have, if known: a file system with less free space is
        refused before `save` runs (`NoSpaceError`).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    _remove_dead_temporaries(directory, name)
    check_free_space(directory, needed_bytes, path)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.{_writer_tag()}-",
                                             suffix=".tmp" + suffix)
    os.close(descriptor)
    try:
        save(temporary)
        fsync(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)   # mkstemp makes it private
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise no_space_error(error, path) or error
    fsync(directory)
    return path


def fsync(path):
    """Flushes a file's (or a directory's) data to the disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):   # (some file systems)
            raise
    finally:
        os.close(descriptor)


def fsync_tree(directory):
    """Flushes every file and folder under `directory` to the disk (before renaming it into
    place, as `atomic_directory` does)."""
    for root, folders, names in os.walk(directory):
        for name in names:
            if not os.path.islink(os.path.join(root, name)):
                fsync(os.path.join(root, name))
        fsync(root)


# Errors a full file system gives: its own errno, or (from TensorFlow's and h5py's C++ writers,
# which lose the errno) its text.
_NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded", "errno = 28")


def is_out_of_space(error) -> bool:
    """Whether `error` (or an error it was raised from) says a file system is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, NoSpaceError):
            return True
        if isinstance(error, OSError) and error.errno in _NO_SPACE_ERRNOS:
            return True
        if any(text in str(error) for text in _NO_SPACE_TEXTS):
            return True
        error = error.__cause__ or error.__context__
    return False


def no_space_error(error, path):
    """A `NoSpaceError` naming `path` if `error` says its file system is full, else None."""
    if isinstance(error, NoSpaceError) or not is_out_of_space(error):
        return None
    return NoSpaceError(path, file_system(path))


def file_system(path) -> str:
    """The mount point holding `path` (and its type, where /proc/mounts says), for messages."""
    point = os.path.abspath(path)
    while not os.path.exists(point):
        point = os.path.dirname(point)
    point = os.path.realpath(point)
    while not os.path.ismount(point):
        point = os.path.dirname(point)
    try:
        with open("/proc/mounts") as stream:
            kinds = {fields[1]: fields[2] for fields in (line.split() for line in stream)
                     if len(fields) > 2}
    except OSError:
        kinds = {}
    return f"{point} ({kinds[point]})" if point in kinds else point


def check_free_space(directory, needed_bytes: int, path=None):
    """Raises `NoSpaceError` naming `path` when the file system of `directory` has fewer than
    `needed_bytes` free (plus a margin for the file's own bookkeeping)."""
    if not needed_bytes:
        return
    free = shutil.disk_usage(directory).free
    if free < needed_bytes * 1.05 + (1 << 20):
        raise NoSpaceError(path or directory, file_system(directory),
                           f"{needed_bytes / 2**20:.0f} MB needed, {free / 2**20:.0f} MB free")


def variables_bytes(variables) -> int:
    """The bytes the values of these (Keras) variables take."""
    total = 0
    for variable in variables:
        try:
            size = np.dtype(str(variable.dtype)).itemsize
        except TypeError:   # (e.g. bfloat16 without its NumPy type)
            size = 4
        total += int(np.prod(variable.shape)) * size
    return total


def write_weights(model, path) -> str:
    """`model.save_weights` (optimizer state included, as Keras saves it) to `path` (a
    `.weights.h5` name), atomically and after checking the free space (`write_with`)."""
    optimizer = getattr(model, "optimizer", None)
    needed = variables_bytes(list(model.variables) +
                             (list(optimizer.variables) if optimizer is not None else []))
    return write_with(path, model.save_weights, suffix=".weights.h5", needed_bytes=needed)


def write_json(path, value, indent: int | None = 2) -> str:
    """Writes `value` as JSON atomically (`write_file`). NumPy values become lists and numbers."""
    return write_file(path, lambda stream: json.dump(value, stream, indent=indent,
                                                     default=jsonable))


def write_text(path, text: str) -> str:
    """Writes `text` atomically (`write_file`)."""
    return write_file(path, lambda stream: stream.write(text))


def read_json(path, what: str = ""):
    """The JSON value in `path` (written by `write_json`), or a one-line `UserInputError` naming
    the file when it is not JSON: empty or cut short (a crash of the machine before vb_keras
    flushed its files could leave that), or not a file vb_keras wrote. `what` says what it is
    ("the run's settings"), for the message."""
    try:
        with open(path, encoding="utf-8") as stream:
            return json.load(stream)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = "it is empty" if not os.path.getsize(path) else f"not JSON ({error})"
        raise UserInputError(f"{path}: cannot be read{f' as {what}' if what else ''}: "
                             f"{reason}") from None


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
