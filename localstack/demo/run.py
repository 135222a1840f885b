"""`make demo`: a business day of Meituan orders through the whole stack, then its summary.

    python -m localstack.demo [--orders N] [--seed S] [--json] [--json-logs] [--keep]
                              [--limit SECONDS]

Starts a fresh local stack (`localstack.devstack`) under the demo policy (deadlines in seconds),
has the simulated platform push N orders for the three demo stores through the gateway, lets
customers cancel, remind, complain and ask for refunds, and lets the simulated staff
(`localstack.staff`) do the human work through the staff API, each with their own token. It
ends when every order is closed, rejected or cancelled, then prints the statistics of the day
(R4.3.1) and checks that the system of record agrees with the workflows (R1.3). Exit status 0
when everything finished and agreed; 1 when orders were still open at the time limit or the
database disagrees.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable

from localstack.console import LiveConsole
from localstack.demo.day import business_day
from localstack.demo.options import POLICY_FILE, DemoOptions, DemoResult
from localstack.demo.report import render
from localstack.demo.summary import summarise
from localstack.dev import as_the_local_stack, log_to
from localstack.devstack import Say, Stack, StackError, StackOptions, dev_stack
from localstack.simulator import RunningSimulator, SimConfig
from localstack.staff import Staff, StaffSettings, signed_in
from meituan.intake import to_platform_order
from schemas.order import PlatformOrder


def sim_config(options: DemoOptions) -> SimConfig:
    return SimConfig(
        seed=options.seed,
        anomaly_rate=options.anomaly_rate,
        confirm_timeout_s=60.0,  # R6.1 the platform cancels what is not accepted in time
        courier_step_s=1.0,
        push_retry_delay_s=1.0,
    )


def order_lookup(running: RunningSimulator) -> Callable[[str], PlatformOrder | None]:
    """The platform's view of an order, as a manager sees it in the merchant console."""

    def lookup(order_id: str) -> PlatformOrder | None:
        sim_order = running.sim.orders.get(int(order_id))
        return to_platform_order(sim_order.current()) if sim_order else None

    return lookup


async def run_demo(
    options: DemoOptions,
    say: Say = print,
    *,
    status: Say | None = None,
    after: Callable[[Stack, DemoResult], Awaitable[None]] | None = None,
) -> DemoResult:
    """The whole demo; `status` shows where the day stands (default: `say`); `after` runs with
    the stack still up (to keep it for the Web UI)."""
    began = time.monotonic()
    stack_options = StackOptions(
        data_dir=options.data_dir,
        database=options.database,
        server_dsn=options.server_dsn,
        pgdata=options.pgdata,
        fresh=True,
        temporal_port=options.temporal_port,
        ui_port=options.ui_port,
        gateway_port=options.gateway_port,
        api_port=options.api_port,
        simulator_port=options.simulator_port,
        sim_config=sim_config(options),
        policy=POLICY_FILE,
    )
    async with dev_stack(stack_options, say) as stack:
        say(
            f"a business day: {options.orders} orders over {options.arrival_window_s:.0f} s "
            f"to stores {', '.join(s.code for s in stack.sim.sim.business.stores)}, "
            f"anomaly rate {options.anomaly_rate:g}, seed {options.seed}"
        )
        async with signed_in(stack.api_url, stack.db.pool) as people:
            staff = Staff(
                people,
                StaffSettings(seed=options.seed),
                lookup=order_lookup(stack.sim),
                business=stack.sim.sim.business,
            )
            day, finished = await business_day(
                stack.sim.sim, stack.client, options, staff, say, status or say
            )
        if not finished:
            say(f"time limit of {options.limit_s:g} s reached with orders still open")
        say("collecting the summary (final status of every order, and the database)")
        result = await summarise(stack, day, staff, finished, options, began)
        if after is not None:
            await after(stack, result)
        return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m localstack.demo", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--orders", type=int, default=50, help="orders in the day (50)")
    parser.add_argument("--seed", type=int, default=7, help="seed of everything random (7)")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help="the services' log lines as JSON on the console too (always in "
        ".data/demo/orderflow.jsonl)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack up until Ctrl-C")
    parser.add_argument(
        "--limit", type=float, default=240.0, help="time limit of the day, seconds (240)"
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    return args


def demo_options(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(orders=args.orders, seed=args.seed, limit_s=args.limit, keep=args.keep)


async def _main(args: argparse.Namespace, console: LiveConsole) -> int:
    options = demo_options(args)
    say: Say = (lambda _: None) if args.json else console.say
    status: Say = (lambda _: None) if args.json else console.status
    main_task = asyncio.current_task()
    assert main_task is not None
    interrupts = 0
    results: list[DemoResult] = []

    def interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1:
            say("stopping (processes are shut down in order)...")
            main_task.cancel()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, interrupt)

    async def show(stack: Stack, result: DemoResult) -> None:
        results.append(result)
        console.close()
        if args.json:
            print(json.dumps(result.summary, ensure_ascii=False, indent=2), flush=True)
        else:
            print(render(result.summary, kept=args.keep), flush=True)
        if args.keep:
            await asyncio.Event().wait()

    try:
        result = await run_demo(options, say, status=status, after=show)
    except asyncio.CancelledError:
        console.close()
        if interrupts and results:
            return results[0].exit_code
        if interrupts:
            print("interrupted", file=sys.stderr)
            return 130
        raise
    except StackError as exc:
        console.close()
        print(f"error: the local stack did not start: {exc}", file=sys.stderr)
        return 2
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A live status line on a terminal, plain lines elsewhere (localstack/console.py).
    console = LiveConsole.for_terminal(sys.stdout)
    # The in-process services' warnings on stderr, one line each; every line in the file.
    log_to(demo_options(args).data_dir, json_logs=args.json_logs, stream=console.above(sys.stderr))
    with as_the_local_stack():
        return asyncio.run(_main(args, console))
