"""One readable line per event, for a person at a terminal (`orderctl dev`, `make demo`).

JSON lines suit log shippers, not a newcomer watching the local stack: the console gets
`time level logger message key=value ...` instead, and an exception as one line with its type
and message; the full traceback goes to the JSON log file only. Masking runs before this
renderer, as before the JSON one (infra/logging.py), so the console shows no more than the file.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any, Final

from structlog.typing import EventDict, WrappedLogger

_FIRST: Final = ("timestamp", "level", "logger", "event")
_TRACEBACK: Final = "Traceback (most recent call last):"
_BARE: Final = re.compile(r"[^\s\"'=]+")


def one_line_exception(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: `exc_info` becomes `error="ValueError: message"` (the exception's
    type and message, on one line), in place of the traceback `format_exc_info` writes."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple) and len(exc_info) == 3:
        error = exc_info[1]
    else:
        error = None
    if error is not None:
        event_dict["error"] = _describe(error)
    event_dict.pop("stack", None)
    event_dict.pop("stack_info", None)
    return event_dict


def _describe(error: BaseException) -> str:
    name = type(error).__name__
    message = str(error).strip()
    return f"{name}: {message}" if message else name


def short_logger(name: str) -> str:
    """The last two parts of a logger's name, leading underscores dropped:
    `temporalio.worker._workflow` -> `worker.workflow`."""
    return ".".join(part.lstrip("_") for part in name.split(".")[-2:])


def _clock(timestamp: Any) -> str:
    """The local time of day of an ISO timestamp, to the millisecond."""
    try:
        moment = datetime.fromisoformat(str(timestamp).replace("Z", "+00:00"))
    except ValueError:
        return str(timestamp)
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")


def _message(text: str) -> str:
    """The event's message on one line; a traceback written into it (uvicorn writes a failed
    start's so) shortened to its last line, the exception."""
    if _TRACEBACK in text:
        before, _, trace = text.partition(_TRACEBACK)
        last = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "")
        text = f"{before.strip()} {last} (traceback in the log file)".strip()
    return _one_line(text)


def _value(value: Any) -> str:
    if isinstance(value, str):  # quoted (newlines escaped) unless one plain word
        return value if _BARE.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def render_line(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
    """structlog renderer: `12:03:04.567 WARNING worker.workflow message key=value ...`."""
    parts = [
        _clock(event_dict.get("timestamp", "")),
        f"{str(event_dict.get('level', method_name)).upper():<7}",
        short_logger(str(event_dict.get("logger") or "-")),
        _message(str(event_dict.get("event", ""))),
    ]
    parts += [f"{key}={_value(value)}" for key, value in event_dict.items() if key not in _FIRST]
    return " ".join(part for part in parts if part)
