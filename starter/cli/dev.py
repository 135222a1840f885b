"""`dev`: the whole local stack until Ctrl-C (`localstack/dev.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from starter.cli.base import PROG, Exit
from starter.cli.commands import Commands, offline


async def dev(args: argparse.Namespace) -> Exit:
    from localstack.dev import as_the_local_stack, run_dev  # only needed here

    with as_the_local_stack():
        return Exit(
            await run_dev(
                fresh=args.fresh,
                policy=args.policy,
                free_ports=args.free_ports,
                json_logs=args.json_logs,
            )
        )


def add_parser(commands: Commands) -> None:
    sub = commands.add_parser(
        "dev",
        help="the whole local stack (Temporal, PostgreSQL, simulator, gateway, worker)",
        description="Starts the Temporal dev server (Web UI on :8233, state in .data/dev so a "
        "restart continues the orders in flight), the embedded PostgreSQL with migrations and "
        "the demo company, the platform simulator, the push gateway and a worker; Ctrl-C stops "
        "everything it started, also while starting. The console shows one line per event; "
        "the JSON log goes to .data/dev/orderflow.jsonl.",
        epilog=f"""examples:
  {PROG} dev
  {PROG} dev --fresh --policy localstack/demo_policy.toml
  {PROG} dev --free-ports --json-logs""",
    )
    sub.add_argument("--fresh", action="store_true", help="start from nothing")
    sub.add_argument("--policy", type=Path, help="policy file for the worker (ORDERFLOW_POLICY)")
    sub.add_argument(
        "--free-ports",
        action="store_true",
        help="any free port for every server, not 7233, 8233, 8080, 8082 and 8090",
    )
    sub.add_argument(
        "--json-logs", action="store_true", help="JSON lines on the console too (as in the file)"
    )
    offline(sub, dev)
