"""Progress of a labelled stage ("decoding Train audio", "scoring Val") on stderr: a program's
stdout is for its results.

On a terminal the line is redrawn in place; written to a file (a log, a pipe) it becomes plain
lines, one every `PLAIN_INTERVAL_SECONDS` and one at the end, with no escape codes or carriage
returns. Keras's own `Progbar` cannot do that here: it draws in place whenever the `posix` module
is loaded, that is on every Linux machine, so a log file fills with escape codes and no newlines.
`fit_verbosity` does the same choice for Keras's `fit`.
"""

import sys
import time

# A log gets a line at most this often (and one when the stage ends).
PLAIN_INTERVAL_SECONDS = 30.0
# A terminal's line is redrawn at most this often.
TERMINAL_INTERVAL_SECONDS = 0.1
BAR_WIDTH = 24


def is_terminal(stream) -> bool:
    return hasattr(stream, "isatty") and stream.isatty()


def fit_verbosity(chief: bool = True) -> int:
    """`verbose` for Keras's fit: its progress bar on a terminal, a line per epoch in a log, none
    on a worker that is not the chief."""
    if not chief:
        return 0
    return 1 if is_terminal(sys.stdout) else 2


class Progress:
    """`total` `unit`s of the stage `label`, advanced with `add`.

    Args:
      stream: where to write (default: sys.stderr at construction).
      clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, total: int, unit: str = "clip", label: str = "", stream=None,
                 clock=time.monotonic):
        self.total, self.done, self.unit, self.label = total, 0, unit, label
        self._stream = sys.stderr if stream is None else stream
        self._terminal = is_terminal(self._stream)
        self._clock = clock
        self._start = self._last = clock()
        self._finished = False

    def add(self, count: int = 1):
        self.done += count
        if self.done >= self.total:
            self.finish()
            return
        now = self._clock()
        if now - self._last >= (TERMINAL_INTERVAL_SECONDS if self._terminal
                                else PLAIN_INTERVAL_SECONDS):
            self._last = now
            self._write(self._line(now), end="" if self._terminal else "\n")

    def finish(self):
        """Ends the stage's line even short of the total (e.g. unusable clips were left out)."""
        if self._finished:
            return
        self._finished = True
        self._write(self._line(self._clock(), final=True), end="\n")

    def _line(self, now, final: bool = False) -> str:
        elapsed = now - self._start
        counted = f"{self.done}/{self.total} {self.unit}s"
        prefix = f"{self.label}: " if self.label else ""
        if final:
            return f"{prefix}{counted} in {_duration(elapsed)}"
        share = self.done / self.total if self.total else 1.0
        left = elapsed * (self.total - self.done) / self.done if self.done else None
        eta = f", about {_duration(left)} left" if left is not None else ""
        if self._terminal:
            filled = int(BAR_WIDTH * share)
            return f"{prefix}[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {counted}{eta}"
        return f"{prefix}{counted} ({share:.0%}) after {_duration(elapsed)}{eta}"

    def _write(self, line, end):
        if self._terminal:   # redraw in place: back to the start, clear the old line
            line = "\r\x1b[K" + line
        self._stream.write(line + end)
        self._stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def track(items, total: int, size=lambda item: 1, unit: str = "clip", label: str = ""):
    """Yields `items`, advancing a `Progress` of `total` by `size(item)` after each.

    The line starts when the first item is asked for: a generator never read shows none.
    """
    bar = Progress(total, unit, label)
    for item in items:
        yield item
        bar.add(size(item))
    bar.finish()
