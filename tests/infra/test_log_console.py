"""The local stack's console: one readable line per event, masked as the JSON lines are, an
exception as one line; the JSON lines, tracebacks whole, in the file."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from infra.log_console import short_logger
from infra.logging import configure_logging, get_logger

PHONE = "13812345678"


@pytest.fixture
def restored() -> Iterator[None]:
    """The logging set-up is put back afterwards, the file closed."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        structlog.reset_defaults()


def _fail(logger_name: str) -> None:
    try:
        raise ValueError(f"no such store for customer_phone={PHONE}\nsecond line")
    except ValueError:
        logging.getLogger(logger_name).exception("push %s failed", "order")
        get_logger("activities.platform").exception("call failed", order_id="27", phone=PHONE)


def test_an_exception_is_one_masked_line_on_the_console_and_whole_in_the_file(
    restored: None, tmp_path: Path
) -> None:
    console = io.StringIO()
    log_file = tmp_path / "dev" / "orderflow.jsonl"
    configure_logging("INFO", stream=console, console="human", file=log_file)
    _fail("temporalio.worker._workflow")
    get_logger("localstack.dev").info("ready", url="http://127.0.0.1:8080", n=2, note="a b")

    lines = console.getvalue().splitlines()
    assert len(lines) == 3
    assert "Traceback" not in console.getvalue() and PHONE not in console.getvalue()
    first, second, third = lines
    assert " ERROR   worker.workflow push order failed " in first
    assert first.endswith('error="ValueError: no such store for customer_phone=138****5678\\n'
                          'second line"')  # fmt: skip
    assert "order_id=27 phone=138****5678 error=" in second
    assert third.endswith("INFO    localstack.dev ready url=http://127.0.0.1:8080 n=2 note=***")

    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [r["event"] for r in records] == ["push order failed", "call failed", "ready"]
    assert records[0]["exception"].startswith("Traceback (most recent call last):")
    assert PHONE not in log_file.read_text()


def test_json_logs_keep_json_on_the_console(restored: None, tmp_path: Path) -> None:
    console = io.StringIO()
    configure_logging("INFO", stream=console, console="json", file=tmp_path / "log.jsonl")
    _fail("uvicorn.error")
    records = [json.loads(line) for line in console.getvalue().splitlines()]
    assert [r["logger"] for r in records] == ["uvicorn.error", "activities.platform"]
    assert "Traceback" in records[0]["exception"]
    in_file = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["exception"] for r in in_file] == [r["exception"] for r in records]


def test_the_console_level_and_the_files_differ(restored: None, tmp_path: Path) -> None:
    """The console shows the services' trouble; the file has every line from its own level."""
    console = io.StringIO()
    log_file = tmp_path / "log.jsonl"
    configure_logging("WARNING", stream=console, console="human", file=log_file, file_level="INFO")
    get_logger("starter.gateway").info("push received")
    get_logger("starter.gateway").warning("push refused", reason="bad sig")
    assert len(console.getvalue().splitlines()) == 1
    assert len(log_file.read_text().splitlines()) == 2
    configure_logging("INFO", stream=console)  # a second set-up replaces the file's handler
    assert str(log_file) not in [
        getattr(h, "baseFilename", "") for h in logging.getLogger().handlers
    ]


def test_a_traceback_written_into_a_message_is_shortened(restored: None) -> None:
    console = io.StringIO()
    configure_logging("INFO", stream=console, console="human")
    logging.getLogger("uvicorn.error").error(
        'Traceback (most recent call last):\n  File "x.py", line 1\nRuntimeError: gone\n'
    )
    [line] = console.getvalue().splitlines()
    assert line.endswith("uvicorn.error RuntimeError: gone (traceback in the log file)")


def test_short_logger_names() -> None:
    assert short_logger("temporalio.worker._workflow") == "worker.workflow"
    assert short_logger("activities") == "activities"
