"""The session watchdog ends a session that would otherwise wait forever, with every stack
dumped and a non-zero exit, in bounded time: a pytest run of its own, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.watchdog import EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]
INI = """\
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def _session(
    tmp_path: Path, test_source: str, *, timeout: int | None = None, **limits: str
) -> tuple[int, str, float]:
    (tmp_path / "pytest.ini").write_text(INI, encoding="utf-8")
    (tmp_path / "test_stuck.py").write_text(textwrap.dedent(test_source), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), **limits}
    env["ORDERFLOW_TEST_WATCHDOG_FILE"] = str(tmp_path / "dump.txt")
    plugins = ["-p", "tests.watchdog", "-p", "no:cacheprovider"]
    plugins += ["-p", "no:timeout"] if timeout is None else [f"--timeout={timeout}"]
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-q", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - began


def test_a_task_that_ignores_cancellation_ends_the_session_with_its_stack(tmp_path: Path) -> None:
    """The hang seen at the end of a session: the session's event loop, closing, waits for a
    task that swallows every cancellation."""
    code, output, took = _session(
        tmp_path,
        """
        import asyncio

        async def stubborn_listener():
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    pass  # the defect: cancellation ignored

        async def test_leaves_a_stubborn_task_behind():
            asyncio.get_running_loop().create_task(stubborn_listener())
        """,
        ORDERFLOW_TEST_TEARDOWN_LIMIT="3",
        ORDERFLOW_TEST_SESSION_LIMIT="60",
    )
    assert code == EXIT_CODE, output
    assert took < 45, f"the watchdog took {took:.0f} s"
    assert "_cancel_all_tasks" in output  # the hang came after the test: the loop closing
    assert "did not end within 3 s of its last test" in output
    assert "unfinished asyncio task" in output and "stubborn_listener" in output
    assert "--- threads ---" in output
    assert "stubborn_listener" in (tmp_path / "dump.txt").read_text(encoding="utf-8")


def test_a_test_that_blocks_its_thread_is_cut_at_the_session_limit(tmp_path: Path) -> None:
    code, output, took = _session(
        tmp_path,
        """
        import time

        def wait_for_a_lock_nobody_holds():
            while True:
                time.sleep(1)

        def test_blocks():
            wait_for_a_lock_nobody_holds()
        """,
        ORDERFLOW_TEST_SESSION_LIMIT="4",
    )
    assert code == EXIT_CODE, output
    assert took < 40, f"the watchdog took {took:.0f} s"
    assert "passed its limit of 4 s" in output
    assert "wait_for_a_lock_nobody_holds" in output  # the main thread's stack


def test_a_limit_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    code, output, _ = _session(
        tmp_path, "def test_nothing():\n    assert True\n", ORDERFLOW_TEST_SESSION_LIMIT="soon"
    )
    assert code == 4, output  # pytest's usage-error exit
    assert "ORDERFLOW_TEST_SESSION_LIMIT='soon'" in output


def test_a_test_about_to_time_out_shows_what_it_awaits(tmp_path: Path) -> None:
    """pytest-timeout's own traceback shows the event loop idle; the tasks show the wait."""
    code, output, took = _session(
        tmp_path,
        """
        import asyncio

        async def wait_for_a_push_that_never_comes():
            await asyncio.Event().wait()

        async def test_waits():
            await wait_for_a_push_that_never_comes()
        """,
        timeout=8,
    )
    assert code == 1, output  # failed by its own timeout, the session goes on
    assert took < 45, f"the test took {took:.0f} s to fail"
    assert "is about to time out; its asyncio tasks follow" in output
    assert "wait_for_a_push_that_never_comes" in output
    assert "Timeout (>8.0s)" in output
