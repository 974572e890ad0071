"""Progress lines: in place on a terminal, plain periodic lines in a log, always labelled."""

import io

from conftest import run_main
from vb_keras.utils import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_log_gets_plain_labelled_lines_now_and_then_and_one_at_the_end():
    log, clock = io.StringIO(), Clock()
    bar = progress.Progress(400, label="decoding Val audio", stream=log, clock=clock)
    for _ in range(399):
        clock.now += 0.25            # 100 s in all: a line every 30 s
        bar.add()
    clock.now += 0.25
    bar.add()
    text = log.getvalue()
    assert "\r" not in text and "\x1b" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 4, lines   # after 30, 60 and 90 s, and the end
    assert lines[0] == "decoding Val audio: 120/400 clips (30%) after 30 s, about 1 min 10 s left"
    assert lines[-1] == "decoding Val audio: 400/400 clips in 1 min 40 s"


def test_a_terminal_line_is_redrawn_in_place_and_ended_once():
    terminal, clock = Terminal(), Clock()
    bar = progress.Progress(10, unit="chunk", label="teacher embedding", stream=terminal,
                            clock=clock)
    for _ in range(7):
        clock.now += 1
        bar.add()
    bar.finish()                      # short of the total: unusable clips were left out
    bar.finish()
    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.count("\r") == 8
    assert "teacher embedding: [" in text and "7/10 chunks" in text
    assert text.endswith("\r\x1b[Kteacher embedding: 7/10 chunks in 7 s\n")


def test_track_yields_everything_and_counts_by_size():
    log = io.StringIO()
    items = [[1, 2], [3], [4, 5, 6]]
    original, progress.sys.stderr = progress.sys.stderr, log
    try:
        assert list(progress.track(iter(items), 6, size=len, label="scoring Val")) == items
    finally:
        progress.sys.stderr = original
    assert log.getvalue().startswith("scoring Val: 6/6 clips in ")


def test_fit_prints_a_bar_on_a_terminal_a_line_per_epoch_in_a_log_and_nothing_off_the_chief(
        monkeypatch):
    monkeypatch.setattr(progress.sys, "stdout", Terminal())
    assert progress.fit_verbosity() == 1
    monkeypatch.setattr(progress.sys, "stdout", io.StringIO())
    assert progress.fit_verbosity() == 2 and progress.fit_verbosity(chief=False) == 0


if __name__ == "__main__":
    run_main()
