"""Progress for long-running commands: a bar redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time

BAR_WIDTH = 30


class Progress:
    """Shows ``percent`` and a line of text on ``stream`` (a command's self.stdout).

    On a terminal every call redraws one line with a bar; otherwise (a log, a
    pipe, CI) it writes a plain line at most every ``every`` seconds, so logs
    stay readable.
    """

    def __init__(self, stream, *, every: float = 5.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self._last_line = float("-inf")
        self._drawn = False

    def show(self, percent: int, text: str, *, force: bool = False) -> None:
        percent = max(0, min(100, int(percent)))
        if self.tty:
            filled = BAR_WIDTH * percent // 100
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self.stream.write(f"\r[{bar}] {percent:3d}% {text}\033[K", ending="")
            self.stream.flush()
            self._drawn = True
        elif force or time.monotonic() - self._last_line >= self.every:
            self.stream.write(f"{percent}% {text}")
            self._last_line = time.monotonic()

    def close(self) -> None:
        """Ends the bar's line, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("")
            self._drawn = False
