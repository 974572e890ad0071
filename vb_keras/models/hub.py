"""Where a frozen embedder comes from: a local directory, or a published model named as TF Hub users
name it, resolved through `tensorflow_hub` into its usual cache.

Accepted (issue 14):
  /models/trillsson                          a local SavedModel directory, used in place
  https://tfhub.dev/google/trillsson3/1      a TF Hub handle (tfhub.dev now redirects to Kaggle)
  https://www.kaggle.com/models/...          a Kaggle Models URL with a TF Hub-compatible download
  https://host/path/model.tar.gz             any URL of a compressed SavedModel (a .tar.gz of its files)
  gs://bucket/model.tar.gz                   the same on Google Cloud Storage

A remote model is downloaded once into `TFHUB_CACHE_DIR` (tensorflow_hub's default when unset: a
`tfhub_modules` folder in the system's temporary directory) and read from there afterwards, offline.
tensorflow_hub downloads into a scratch folder and renames it into place, under a lock file, so a
killed download leaves no half-made model behind.
"""

import os
import tarfile
import urllib.error

from vb_keras.errors import UserInputError

REMOTE_PREFIXES = ("http://", "https://", "gs://")


def is_remote(handle: str) -> bool:
    """True for a handle that names a published model rather than a local directory."""
    return handle.startswith(REMOTE_PREFIXES)


def recorded(handle: str) -> str:
    """`handle` as a run records it: a local path made absolute (so that a rerun from elsewhere
    finds it), a remote handle as given (it resolves to the same cached copy)."""
    if not handle or is_remote(handle):
        return handle or ""
    return os.path.abspath(handle)


def resolve(handle: str, flag: str = "--embedder") -> str:
    """The local directory of the SavedModel `handle` names, downloading it first if it is remote.

    Raises:
      UserInputError (one line naming `flag`): a local path that is not a directory, a remote model
        that cannot be fetched (no network, unknown host, HTTP error) or is not a compressed
        SavedModel.
    """
    if not is_remote(handle):
        if not os.path.isdir(handle):
            raise UserInputError(f"{flag}: {handle} is not a directory (nor a TF Hub handle or "
                                 "URL: those start with https://, http:// or gs://)")
        return handle
    try:   # (an optional dependency, for remote handles only: pyproject.toml's `hub` extra)
        import tensorflow_hub   # pylint: disable=import-outside-toplevel
    except ImportError as error:   # tensorflow-hub absent, or its tf_keras
        raise UserInputError(f"{flag}: fetching {handle} needs tensorflow-hub, which is not "
                             f"installed or does not load ({error}): pip install 'vb_keras[hub]', "
                             "or download the model and pass its directory") from None
    try:
        path = tensorflow_hub.resolve(handle)
    except urllib.error.HTTPError as error:
        raise UserInputError(f"{flag}: cannot fetch {handle}: HTTP {error.code} "
                             f"{error.reason}") from None
    except urllib.error.URLError as error:
        raise UserInputError(f"{flag}: cannot reach {handle} ({error.reason}); check the network, "
                             "or download the model and pass its directory") from None
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserInputError(f"{flag}: {handle} is not a compressed SavedModel ({reason})") from None
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise UserInputError(f"{flag}: {handle} unpacked into {path}, which holds no "
                             "saved_model.pb: the archive must hold the SavedModel's files at its top")
    return path
