"""User-facing errors: one line that names the file, column or flag at fault and the reason.

Programs in bin/ catch `UserInputError` and print its message instead of a traceback; anything else
is a bug in vb_keras and keeps its traceback.
"""


class UserInputError(ValueError):
    """Bad input from the user: a file, a column, a flag value. The message is one line."""


class BadAudioError(UserInputError):
    """An audio file that cannot be used: missing, empty, truncated, not audio, or silent."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoSpaceError(UserInputError):
    """A file system filled up while a file was written. Not the input's fault, but reported the
    same way, in one line: what was being written is gone again (no half file is left), and
    running the same command once there is space goes on."""

    def __init__(self, path, file_system, detail=""):
        self.path = str(path)
        super().__init__(f"no space left on {file_system} while writing {self.path}"
                         + (f" ({detail})" if detail else "")
                         + "; free some space and run the same command again")
