"""What a long run shows while it runs: on a terminal, one status line rewritten in place with
every other line (what the stack says, the log) printed above it; elsewhere (a pipe, a file,
CI) plain lines, the status only every so often, so a log is not a wall of them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import IO, Any, cast

CLEAR_LINE = "\r\x1b[2K"
PLAIN_EVERY_S = 10.0


class LiveConsole:
    def __init__(
        self,
        out: IO[str],
        *,
        live: bool,
        plain_every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self.live = live
        self._every = plain_every_s
        self._clock = clock
        self._status = ""
        self._next_plain = 0.0

    @classmethod
    def for_terminal(cls, out: IO[str]) -> LiveConsole:
        """Live where `out` is a terminal that can move its cursor."""
        return cls(out, live=out.isatty() and shutil.get_terminal_size().columns > 0)

    def say(self, line: str) -> None:
        """A line of its own, kept above the status."""
        self._write(f"{CLEAR_LINE if self._shown else ''}{line}\n{self._drawn()}")

    def status(self, line: str) -> None:
        """Where the run stands: rewritten in place, or a plain line now and then."""
        if self.live:
            self._status = line
            self._write(f"{CLEAR_LINE}{self._drawn()}")
        elif self._clock() >= self._next_plain:
            self._next_plain = self._clock() + self._every
            self._write(f"{line}\n")

    def close(self) -> None:
        """The last status stays on the screen as a line of its own."""
        if self._shown:
            self._write("\n")
        self._status = ""

    def above(self, stream: IO[str]) -> IO[str]:
        """`stream` (stderr, the log's, on the same terminal) writing above the status."""
        # A stand-in for the stream: it writes through to it, and hands it all else.
        return cast(IO[str], _Above(self, stream)) if self.live else stream

    @property
    def _shown(self) -> bool:
        return self.live and bool(self._status)

    def _drawn(self) -> str:
        """The status cut to the terminal's width: a wrapped line would not be cleared."""
        if not self._shown:
            return ""
        width = max(shutil.get_terminal_size().columns - 1, 10)
        return self._status if len(self._status) <= width else self._status[: width - 1] + "…"

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


class _Above:
    def __init__(self, console: LiveConsole, stream: IO[str]) -> None:
        self._console = console
        self._stream = stream

    def write(self, text: str) -> int:
        console = self._console
        if console._shown:
            console._write(CLEAR_LINE)
        self._stream.write(text)
        self._stream.flush()
        if console._shown and text.endswith("\n"):
            console._write(console._drawn())
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, ...
        return getattr(self._stream, name)
