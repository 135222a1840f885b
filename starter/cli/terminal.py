"""What orderctl writes reaches a person's terminal: control characters in the data it shows
(a customer's remark, a name, a push's body) are written as `\\uNNNN`, so text from outside
can neither move the cursor, retitle the window, hide or reorder lines nor ring the bell.

Colour: a few styles (bold, dim, red, yellow, green), on a terminal only and never with
NO_COLOR set (FORCE_COLOR turns it on elsewhere). Those styles alone pass unescaped, and only
while colour is on: they neither move nor hide anything, so text from outside that carries one
can at worst show in colour. What orderctl styles is escaped before the style goes around it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import IO, Any

from infra.settings import TerminalSettings

# C0 controls but tab and newline, DEL, the C1 controls (CSI, OSC, ... as single characters),
# and the bidirectional overrides and isolates that reorder what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class Style(StrEnum):
    """SGR parameters: styles that neither move nor hide anything."""

    RESET = "0"
    BOLD = "1"
    DIM = "2"
    RED = "31"
    GREEN = "32"
    YELLOW = "33"


_STYLES = re.compile("|".join(re.escape(f"\x1b[{s.value}m") for s in Style))


def printable(text: str) -> str:
    """Each control character as `\\uNNNN`: readable as text, and inside a JSON string (the
    `--json` output) the same character read back."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def colour_wanted(stream: IO[str], terminal: TerminalSettings) -> bool:
    if terminal.no_color:
        return False
    return terminal.force_color or stream.isatty()


class Palette:
    """orderctl's styles, or none: set once where the output stream is known."""

    on = False

    @classmethod
    def styled(cls, text: str, style: Style | None) -> str:
        """`text` escaped, then styled (when colour is on)."""
        shown = printable(text)
        if not cls.on or style is None:
            return shown
        return f"\x1b[{style.value}m{shown}\x1b[{Style.RESET.value}m"


class PrintableStream:
    """A text stream that writes `printable` text to the one it wraps; with `colour`, the
    styles of `Palette` pass as they are (what they surround was escaped already)."""

    def __init__(self, stream: IO[str], *, colour: bool = False) -> None:
        self._stream = stream
        self.colour = colour

    def write(self, text: str) -> int:
        if not self.colour:
            self._stream.write(printable(text))
            return len(text)
        at = 0
        for style in _STYLES.finditer(text):
            self._stream.write(printable(text[at : style.start()]) + style.group())
            at = style.end()
        self._stream.write(printable(text[at:]))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno, ...
        return getattr(self._stream, name)
