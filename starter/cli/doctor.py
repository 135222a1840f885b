"""`doctor`: for engineers, straight on Temporal (not through the staff API): the orders whose
history no longer replays, and `--repair` to reset each to before the task the replay
disagrees with."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from schemas.doctor import OPEN
from starter.cli import format as fmt
from starter.cli.base import CONNECT_TIMEOUT, PROG, Exit, Failure
from starter.cli.commands import Commands, offline

if TYPE_CHECKING:
    from temporalio.client import Client

    from activities.doctor import Stuck


async def doctor(args: argparse.Namespace) -> Exit:
    from activities import doctor as checks
    from infra.temporal import connect_client

    try:
        client = await asyncio.wait_for(connect_client(), CONNECT_TIMEOUT)
    except Exception as err:  # the SDK reports every connection problem as some exception
        raise Failure(f"cannot reach Temporal: {err}", Exit.UNREACHABLE) from None
    stuck = await checks.find_stuck(client, args.query, thorough=args.thorough)
    if args.repair:
        return await _repair(client, stuck, args.json)
    if args.json:
        print(fmt.dumps([s.as_json() for s in stuck]))
    else:
        for s in stuck:
            print(f"{s.workflow_id}: {s.message} (attempt {s.attempts}; reset to {s.reset_to})")
        print(f"{len(stuck)} workflow(s) whose history no longer replays")
    return Exit.FAILED if stuck else Exit.OK


async def _repair(client: Client, stuck: list[Stuck], as_json: bool) -> Exit:
    from activities import doctor as checks

    repairs = [await checks.repair(client, s) for s in stuck]
    if as_json:
        print(fmt.dumps([r.as_json() for r in repairs]))
    else:
        for r in repairs:
            done = f"NOT repaired: {r.error}" if r.error else f"reset, new run {r.new_run_id}"
            print(f"{r.stuck.workflow_id}: {done}")
        print(f"{sum(r.error is None for r in repairs)} of {len(repairs)} repaired")
    return Exit.FAILED if any(r.error for r in repairs) else Exit.OK


def add_parser(commands: Commands) -> None:
    sub = commands.add_parser(
        "doctor",
        help="for engineers: workflows whose history no longer replays, and their repair",
        description="Lists the open workflows whose last workflow task failed with a "
        "non-determinism error (stuck until reset); --repair resets each to the workflow task "
        "that made the first event its replay disagrees with. Talks to Temporal directly "
        "(TEMPORAL_ADDRESS, ...), not through the staff API. Exit 1 while any stays stuck. "
        "The workers do the same on a schedule when ORDERFLOW_DOCTOR_MINUTES is set.",
        epilog=f"""examples:
  {PROG} doctor
  {PROG} doctor --repair --json
  {PROG} doctor --thorough
  {PROG} doctor --query 'WorkflowType="OrderWorkflow" AND ExecutionStatus="Running"'""",
    )
    sub.add_argument(
        "--repair",
        action="store_true",
        help="reset each to before the task its replay disagrees with",
    )
    sub.add_argument("--query", default=OPEN, help="which workflows to look at")
    sub.add_argument(
        "--thorough",
        action="store_true",
        help="describe every workflow of the query, not only those the server reports failing",
    )
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    offline(sub, doctor)
