"""`orderctl dev`: the whole local stack, up until Ctrl-C.

The Temporal dev server keeps its state in `.data/dev/temporal.db`, so stopping and starting
again continues the orders in flight; `--fresh` starts from nothing. The simulator pushes to
the gateway as the platform would; create orders on it with
`curl -X POST http://127.0.0.1:8090/sim/orders -d '{}'`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from localstack.devstack import StackError, StackOptions, dev_stack


def _say(line: str) -> None:
    print(f"orderctl dev: {line}", flush=True)


async def run_dev(fresh: bool = False, policy: Path | None = None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with dev_stack(StackOptions(fresh=fresh, policy=policy), say=_say) as stack:
            _say(f"Temporal {stack.temporal.address}, Web UI {stack.temporal.ui_url}")
            _say(f"gateway {stack.gateway.url}, simulator {stack.sim.url}")
            _say(f"database {stack.db.dsn}")
            _say(f"staff API {stack.api_url}; sign in as the Xuhui kitchen's manager with")
            _say(f"  DATABASE_URL='{stack.db.dsn}' orderctl admin token issue M-001")
            _say("  orderctl login --token <the token it printed>")
            _say("ready; Ctrl-C stops everything")
            await stop.wait()
            _say("stopping")
    except StackError as err:
        print(f"orderctl dev: {err}", file=sys.stderr)
        return 1
    return 0
