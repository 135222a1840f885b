"""What every orderctl command shares: its name, its exit codes, and the failure that carries one.

Kept free of Temporal and argparse so any command module can import it without a cycle.
"""

from __future__ import annotations

from datetime import tzinfo
from enum import IntEnum

from infra.settings import settings

PROG = "orderctl"
CONNECT_TIMEOUT = 5.0  # seconds; an unreachable server should not keep a person waiting
DEFAULT_TIMEOUT = 30.0  # seconds for a worker to answer a query or an update
PARALLEL_QUERIES = 8


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    NOT_ALLOWED = 4
    UNREACHABLE = 5
    NO_ANSWER = 6


class Failure(Exception):
    """A failure explained in one line for the person, with the exit code scripts rely on."""

    def __init__(self, message: str, code: Exit) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def business_zone() -> tzinfo:
    """ORDERFLOW_TIMEZONE (default Asia/Shanghai), read when first used, so that a bad value
    is one clear line from `main`, not an import-time traceback."""
    return settings().business.timezone
