"""`dev`: the whole local stack until Ctrl-C (`localstack/dev.py`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from starter.cli.base import PROG, Exit
from starter.cli.commands import Commands, Formatter, offline


async def dev(args: argparse.Namespace) -> Exit:
    from localstack.dev import run_dev  # the stack's imports are only needed here

    return Exit(await run_dev(fresh=args.fresh, policy=args.policy))


def add_parser(commands: Commands) -> None:
    sub = commands.add_parser(
        "dev",
        help="the whole local stack (Temporal, PostgreSQL, simulator, gateway, worker)",
        description="Starts the Temporal dev server (Web UI on :8233, state in .data/dev so a "
        "restart continues the orders in flight), the embedded PostgreSQL with migrations and "
        "the demo company, the platform simulator, the push gateway and a worker; Ctrl-C stops "
        "everything.",
        epilog=f"""examples:
  {PROG} dev
  {PROG} dev --fresh --policy localstack/demo_policy.toml""",
        formatter_class=Formatter,
    )
    sub.add_argument("--fresh", action="store_true", help="start from nothing")
    sub.add_argument("--policy", type=Path, help="policy file for the worker (ORDERFLOW_POLICY)")
    offline(sub, dev)
