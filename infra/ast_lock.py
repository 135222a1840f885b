"""One `ast.parse` at a time, on the CPython releases where two at once can fail.

CPython 3.11 before 3.11.8 counts the AST constructor's recursion depth in state shared by
every thread (python/cpython#106905, fixed by #113035): two threads building an AST at once,
the GIL released in between, raise `SystemError: AST constructor recursion depth mismatch`.
Formatting any traceback builds one (its `^^^` carets), and a worker formats them on several
threads at once: the workflow threads turning exceptions into failures, the activities, the
logging. In the test session this broke pytest itself mid-report. Workers and the test
session install the lock; on a fixed release it does nothing.
"""

from __future__ import annotations

import ast
import functools
import sys
import threading
from typing import Any

AFFECTED = (3, 11) <= sys.version_info[:3] < (3, 11, 8)

_lock = threading.RLock()


def install() -> bool:
    """Serialise `ast.parse` (idempotent); True when this interpreter needed it."""
    if not AFFECTED or getattr(ast.parse, "_serialised", False):
        return AFFECTED
    unlocked = ast.parse

    @functools.wraps(unlocked)
    def parse(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return unlocked(*args, **kwargs)

    parse._serialised = True  # type: ignore[attr-defined]
    ast.parse = parse
    return True
