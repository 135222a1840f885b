"""What orderctl writes reaches a person's terminal: control characters in the data it shows
(a customer's remark, a name, a push's body) are written as `\\uNNNN`, so text from outside
can neither move the cursor, retitle the window, hide or reorder lines nor ring the bell."""

from __future__ import annotations

import re
from typing import IO, Any

# C0 controls but tab and newline, DEL, the C1 controls (CSI, OSC, ... as single characters),
# and the bidirectional overrides and isolates that reorder what is shown.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """Each control character as `\\uNNNN`: readable as text, and inside a JSON string (the
    `--json` output) the same character read back."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class PrintableStream:
    """A text stream that writes `printable` text to the one it wraps."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(printable(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno, ...
        return getattr(self._stream, name)
