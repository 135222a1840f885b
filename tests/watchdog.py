"""A hard limit on the whole test session: past it, every thread's and every asyncio task's
stack is dumped and the process exits non-zero, instead of waiting for CI's limit.

pytest-timeout bounds one test; this bounds what it cannot see: a session fixture's teardown,
an event loop closing on a task that ignores cancellation, a hook that never returns. Loaded
by `tests/conftest.py` (or `-p tests.watchdog`); before it writes, it takes pytest's capture
off standard error, so the dump reaches the terminal and the CI log.

A test that pytest-timeout is about to stop gets its asyncio tasks' stacks written first (in
its captured standard error): the timeout's own traceback shows only the event loop waiting,
not what the test awaited.

`ORDERFLOW_TEST_SESSION_LIMIT` (seconds, default 1800) bounds the session;
`ORDERFLOW_TEST_TEARDOWN_LIMIT` (default 180) bounds what runs after the last test starts its
teardown. The dump also goes to `ORDERFLOW_TEST_WATCHDOG_FILE` when set.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import os
import sys
import threading
import time
from typing import IO

import pytest

EXIT_CODE = 124  # as timeout(1) exits: the run was cut short, not failed by a test
SESSION_LIMIT = "ORDERFLOW_TEST_SESSION_LIMIT"
TEARDOWN_LIMIT = "ORDERFLOW_TEST_TEARDOWN_LIMIT"
DUMP_FILE = "ORDERFLOW_TEST_WATCHDOG_FILE"


def _limit(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise pytest.UsageError(f"{name}={raw!r}: expected a number of seconds") from None


def _task_stacks(out: IO[str]) -> None:
    """Every unfinished task of every loop: the one a hang waits for is among them."""
    for _ in range(5):  # the set may change under us; it is read from another thread
        try:
            tasks = [t for t in list(vars(asyncio.tasks)["_all_tasks"]) if not t.done()]
            break
        except RuntimeError:
            time.sleep(0.01)
    else:
        out.write("(the task set kept changing; no task stacks)\n")
        return
    out.write(f"\n--- {len(tasks)} unfinished asyncio task(s) ---\n")
    for task in tasks:
        try:
            task.print_stack(file=out)
        except Exception as err:  # a task mid-switch must not stop the dump
            out.write(f"{task!r}: stack unreadable ({err})\n")


class Watchdog:
    """One daemon thread that sleeps until the deadline, which only moves earlier."""

    def __init__(self, limit_s: float, config: pytest.Config) -> None:
        self._config = config
        self._deadline = time.monotonic() + limit_s
        self._reason = f"the test session passed its limit of {limit_s:.0f} s ({SESSION_LIMIT})"
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._watch, name="test-watchdog", daemon=True)
        self._thread.start()

    def tighten(self, limit_s: float, reason: str) -> None:
        with self._changed:
            deadline = time.monotonic() + limit_s
            if deadline < self._deadline:
                self._deadline, self._reason = deadline, reason
                self._changed.notify()

    def _watch(self) -> None:
        with self._changed:
            while (left := self._deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            reason = self._reason
        self._bite(reason)

    def _bite(self, reason: str) -> None:
        capture = self._config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            with contextlib.suppress(Exception):  # whatever state it is in, we are leaving
                capture.suspend_global_capture(in_=True)
        text = io.StringIO()
        text.write(f"\n=== watchdog: {reason}; every thread and task follows ===\n")
        _task_stacks(text)
        dump = text.getvalue()
        with os.fdopen(os.dup(2), "w", encoding="utf-8", errors="replace") as err:
            err.write(dump)
            err.write("\n--- threads ---\n")
            err.flush()
            faulthandler.dump_traceback(file=err, all_threads=True)
            err.write(f"=== watchdog: exiting with {EXIT_CODE} ===\n")
            err.flush()
        path = os.environ.get(DUMP_FILE, "").strip()
        if path:
            with open(path, "w", encoding="utf-8") as saved:
                saved.write(dump)
                saved.flush()
                faulthandler.dump_traceback(file=saved, all_threads=True)
        os._exit(EXIT_CODE)


_watchdog: Watchdog | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _watchdog
    if _watchdog is None and not hasattr(config, "workerinput"):
        _watchdog = Watchdog(_limit(SESSION_LIMIT, 1800), config)


TASKS_BEFORE_TIMEOUT_S = 3.0
"""How long before a test's own timeout its tasks' stacks are written."""


def _tasks_of_a_stuck_test(nodeid: str) -> None:
    text = io.StringIO()
    text.write(f"\n=== {nodeid} is about to time out; its asyncio tasks follow ===\n")
    _task_stacks(text)
    with contextlib.suppress(Exception):  # whatever standard error is now, the test goes on
        sys.stderr.write(text.getvalue())
        sys.stderr.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    timeout = _item_timeout(item)
    timer = None
    if timeout > 2 * TASKS_BEFORE_TIMEOUT_S:
        timer = threading.Timer(
            timeout - TASKS_BEFORE_TIMEOUT_S, _tasks_of_a_stuck_test, args=(item.nodeid,)
        )
        timer.daemon = True
        timer.start()
    try:
        return (yield)
    finally:
        if timer is not None:
            timer.cancel()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    """After the last test the session only tears down: that must be quick."""
    if nextitem is None and _watchdog is not None:
        limit = _limit(TEARDOWN_LIMIT, 180)
        _watchdog.tighten(
            limit + _item_timeout(item),
            f"the session did not end within {limit:.0f} s of its last test ({TEARDOWN_LIMIT})",
        )
    return (yield)


def _item_timeout(item: pytest.Item) -> float:
    """A test's own pytest-timeout: its marker, else `--timeout`, else the ini file's."""
    marker = item.get_closest_marker("timeout")
    try:
        if marker is not None and marker.args:
            return float(marker.args[0])
        given = item.config.getoption("timeout", None)
        return float(given if given is not None else item.config.getini("timeout") or 0)
    except (ValueError, TypeError):  # pytest-timeout absent or its value unset
        return 0.0
