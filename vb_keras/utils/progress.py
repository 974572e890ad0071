"""Progress bars with a total and an ETA, on stderr: a program's stdout is for its results."""

import contextlib
import sys

import keras


class Progress:
    """A keras.utils.Progbar over `total` `unit`s that writes to stderr (Progbar writes to stdout)."""

    def __init__(self, total: int, unit: str = "clip"):
        self.total, self.done = total, 0
        with contextlib.redirect_stdout(sys.stderr):   # (it checks the stream's isatty here)
            self._bar = keras.utils.Progbar(total, unit_name=unit)

    def add(self, count: int = 1):
        self.done += count
        self._update(self.done >= self.total)

    def finish(self):
        """Ends the bar's line even short of the total (e.g. unusable clips were left out)."""
        if self.done < self.total:
            self._update(True)

    def _update(self, finalize):
        with contextlib.redirect_stdout(sys.stderr):
            self._bar.update(self.done, finalize=finalize)


def track(items, total: int, size=lambda item: 1, unit: str = "clip"):
    """Yields `items`, advancing a `Progress` of `total` by `size(item)` after each.

    The bar starts when the first item is asked for: a generator never read shows none.
    """
    bar = Progress(total, unit)
    for item in items:
        yield item
        bar.add(size(item))
    bar.finish()
