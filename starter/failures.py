"""How a failure reaches a person: one line, an exit code scripts rely on, and the HTTP status
the staff API answers with. Shared by the API and `orderctl`, so both say the same thing."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import ValidationError


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_ALLOWED = 4
    UNREACHABLE = 5
    NO_ANSWER = 6
    DENIED = 7
    """No known person (no token, or a bad, expired or revoked one), or not allowed to."""


HTTP_STATUS: dict[Exit, int] = {
    Exit.OK: 200,
    Exit.FAILED: 502,
    Exit.USAGE: 422,
    Exit.NOT_FOUND: 404,
    Exit.NOT_ALLOWED: 409,
    Exit.UNREACHABLE: 503,
    Exit.NO_ANSWER: 504,
    Exit.DENIED: 403,
}
"""The staff API's status for each outcome; 401 is `Exit.DENIED` too (`Failure.http_status`)."""


class Failure(Exception):
    """A failure explained in one line for the person, with the exit code scripts rely on."""

    def __init__(self, message: str, code: Exit, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status or HTTP_STATUS[code]

    def as_json(self) -> dict[str, Any]:
        return {"error": self.message, "code": int(self.code)}


def unauthenticated(message: str) -> Failure:
    """HTTP 401: the request names no known person."""
    return Failure(message, Exit.DENIED, http_status=401)


def forbidden(message: str) -> Failure:
    """HTTP 403: a known person, not allowed to do this."""
    return Failure(message, Exit.DENIED, http_status=403)


def invalid(err: ValidationError) -> str:
    """What pydantic found wrong, one `field.path: message` per finding, values left out."""
    return "; ".join(
        ".".join(str(p) for p in e["loc"]) + ": " + str(e["msg"]).removeprefix("Value error, ")
        if e["loc"]
        else str(e["msg"]).removeprefix("Value error, ")
        for e in err.errors()
    )
