"""`orderctl dev`: the whole local stack, up until Ctrl-C.

The Temporal dev server keeps its state in `.data/dev/temporal.db`, so stopping and starting
again continues the orders in flight; `--fresh` starts from nothing. The simulator pushes to
the gateway as the platform would; create orders on it with
`curl -X POST http://127.0.0.1:8090/sim/orders -d '{}'`.

Ctrl-C (SIGINT) or SIGTERM stops every piece the stack started, also while it is starting;
the console shows one readable line per event, the JSON log goes to `.data/dev/orderflow.jsonl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Final

from infra.logging import configure_logging, get_logger
from infra.settings import settings
from localstack.devstack import StackError, StackOptions, dev_stack

LOG_FILE: Final = "orderflow.jsonl"
"""The stack's JSON log, in its data folder: every line, tracebacks whole."""
CONSOLE_LEVEL: Final = "WARNING"
"""The console shows the services' trouble; the file has everything from ORDERFLOW_LOG_LEVEL."""

_log = get_logger("localstack.dev")


def _say(line: str) -> None:
    print(f"orderctl dev: {line}", flush=True)
    _log.info(line)


@contextlib.contextmanager
def as_the_local_stack() -> Iterator[None]:
    """This process is the local stack (`orderctl dev`, the demo), whatever ORDERFLOW_DEV says:
    the development secrets, the development customer key and plaintext payloads are allowed
    here (`infra.fail_closed`), the migrations the stack applies included."""
    configured = settings()
    local = replace(configured, deployment=replace(configured.deployment, dev=True))
    with settings.replaced(local):
        yield


def log_to(data_dir: Path, *, json_logs: bool = False, stream: IO[str] | None = None) -> Path:
    """The console (`stream`, default stderr) in one readable line per event (JSON with
    `json_logs`), the JSON lines in the stack's data folder. Returns the file."""
    log_file = data_dir / LOG_FILE
    configure_logging(
        CONSOLE_LEVEL,
        stream=stream,
        console="json" if json_logs else "human",
        file=log_file,
        file_level=settings().logging.level,
    )
    return log_file


def stack_options(
    fresh: bool = False, policy: Path | None = None, *, free_ports: bool = False
) -> StackOptions:
    options = StackOptions(fresh=fresh, policy=policy)
    if free_ports:  # beside a stack on the usual ports, or in a test
        options = replace(
            options,
            temporal_port=None,
            ui_port=None,
            gateway_port=None,
            api_port=None,
            simulator_port=None,
        )
    return options


async def run_dev(
    fresh: bool = False,
    policy: Path | None = None,
    *,
    free_ports: bool = False,
    json_logs: bool = False,
) -> int:
    options = stack_options(fresh, policy, free_ports=free_ports)
    log_file = log_to(options.data_dir, json_logs=json_logs)
    _say(f"JSON log in {log_file}")
    stop = asyncio.Event()
    starting = asyncio.current_task()
    assert starting is not None
    ready = False

    def interrupt() -> None:
        """Ready: leave the wait below. Starting: cancel the start, which stops what began."""
        if ready:
            stop.set()
        elif not stop.is_set():
            stop.set()
            _say("stopping what was started")
            starting.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        async with dev_stack(options, say=_say) as stack:
            _say(f"Temporal {stack.temporal.address}, Web UI {stack.temporal.ui_url}")
            if stack.codec_url:
                _say(f"the Web UI decodes payloads through {stack.codec_url}")
            _say(f"gateway {stack.gateway.url}, simulator {stack.sim.url}")
            _say(f"database {stack.db.dsn}")
            _say(f"staff API {stack.api_url}; sign in as the Xuhui kitchen's manager with")
            _say(f"  DATABASE_URL='{stack.db.dsn}' orderctl admin token issue M-001")
            _say("  orderctl login --token <the token it printed>")
            ready = True
            _say("ready; Ctrl-C stops everything")
            await stop.wait()
            _say("stopping")
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
        starting.uncancel()
        _say("stopped before it was ready")  # as asked: not a failure
        return 0
    except StackError as err:
        _log.info("the stack did not start", error=str(err))  # the file has the story
        print(f"orderctl dev: {err}", file=sys.stderr)
        return 1
    except Exception:  # stopped by now: one line on the console, the traceback in the file
        _log.exception("the stack stopped on an error")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    _say("stopped")
    return 0
