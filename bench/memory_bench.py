"""Worker memory with many orders open at once.

    .venv/bin/python -m bench.memory_bench [--orders 1000] [--seed 7]

A fresh dev server, a fresh database with the demo company sized up, the simulator for the
merchant API, and the worker as production runs it: its own process (`python -m
workers.main`, configured from the environment only), so its memory is its own and is read
from /proc. N orders are started as their pushes would start them; each runs its system
steps (recorded, reviewed, stock reserved, accepted on the platform, assigned) and then
waits for a person under the default policy: a takeout order for `mark_ready`, a service
order for `confirm_with_customer`. Once every order waits, the worker holds all of them
(its workflow cache keeps each open order's state in memory). Reported: resident memory
idle, with all N open (after a settling pause), the highest sampled while they were started,
and the kernel's high-water mark of the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client

from bench import common
from localstack.devstack import connect_temporal, wait_for_pollers
from localstack.simulator import SimConfig, serve_simulator
from meituan.intake import order_input
from schemas.contract import TASK_QUEUE, order_workflow_id

GOAL_MB = 300.0
COMPANY_SCALE = 200
WAITING = (
    'WorkflowType="OrderWorkflow" AND ExecutionStatus="Running" AND ('
    '(OrderType="goods" AND OrderStage="in_progress") OR '
    '(OrderType="service" AND OrderStage="assigned"))'
)
"""Orders at their first human step."""
RUNNING = 'WorkflowType="OrderWorkflow" AND ExecutionStatus="Running"'


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


class Sampler:
    """The worker's resident memory every `every` seconds, and the highest seen."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.pid = pid
        self.every = every
        self.highest = 0.0

    def now(self) -> common.Memory:
        memory = common.memory_of(self.pid)
        self.highest = max(self.highest, memory.rss_mb)
        return memory

    async def run(self) -> None:
        while True:
            self.now()
            await asyncio.sleep(self.every)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    async with (
        common.base_stack("memory-bench") as base,
        serve_simulator(
            SimConfig(seed=args.seed, push_base=None, confirm_timeout_s=None, courier_step_s=None)
        ) as platform,
    ):
        await common.scale_company(base.db.pool, COMPANY_SCALE)
        client = await connect_temporal(base.temporal.address, base.temporal.namespace)
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": base.temporal.address,
            "TEMPORAL_NAMESPACE": base.temporal.namespace,
            "DATABASE_URL": base.db.dsn,
            "MEITUAN_BASE_URL": platform.api_base_url,
            "MEITUAN_APP_ID": platform.sim.config.app_id,
            "MEITUAN_APP_SECRET": platform.sim.config.secret,
            "ORDERFLOW_SHUTDOWN_SECONDS": "5",
        }
        env.pop("ORDERFLOW_POLICY", None)
        log = base.folder / "worker.log"
        worker = await common.spawn(["-m", "workers.main"], env, log)
        sampler = Sampler(worker.pid)
        sampling: asyncio.Task[None] | None = None
        try:
            try:
                await wait_for_pollers(client, TASK_QUEUE, within_s=60)
            except Exception as exc:
                raise RuntimeError(f"the worker did not start: {exc}\n{common.tail(log)}") from exc
            await asyncio.sleep(args.settle)
            idle = sampler.now()
            sampling = asyncio.create_task(sampler.run())
            sim = platform.sim
            stores = [s.code for s in sim.business.stores]
            gate = asyncio.Semaphore(32)
            started_at = time.perf_counter()

            async def start(i: int) -> None:
                order = sim.create_order({"app_poi_code": stores[i % len(stores)]}, push=False)
                inp = order_input(order.current(), received_at=datetime.now(UTC))
                async with gate:
                    await client.start_workflow(
                        "OrderWorkflow",
                        inp,
                        id=order_workflow_id(order.order_id),
                        task_queue=TASK_QUEUE,
                    )

            await asyncio.gather(*(start(i) for i in range(args.orders)))
            waiting = 0
            async with asyncio.timeout(args.limit):
                while waiting < args.orders:
                    if worker.returncode is not None:
                        raise RuntimeError(f"the worker exited:\n{common.tail(log)}")
                    await asyncio.sleep(1.0)
                    waiting = await count(client, WAITING)
                    print(f"waiting at a human step: {waiting}", file=sys.stderr, flush=True)
            all_waiting_s = time.perf_counter() - started_at
            await asyncio.sleep(args.settle)
            open_ = sampler.now()
            running = await count(client, RUNNING)
        finally:
            if sampling is not None:
                sampling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampling
            await common.stop_process(worker)
    per_order_kb = (open_.rss_mb - idle.rss_mb) * 1024 / args.orders
    return {
        "orders": args.orders,
        "open_orders": running,
        "worker_rss_mb": {
            "idle": idle.rss_mb,
            "all_open": open_.rss_mb,
            "highest_sampled": round(sampler.highest, 1),
            "peak": open_.peak_mb,
        },
        "per_open_order_kb": round(per_order_kb, 1),
        "seconds_until_all_waiting": round(all_waiting_s, 1),
        "goal_mb": GOAL_MB,
        "machine": common.machine(),
        "total_seconds": round(time.perf_counter() - began, 1),
    }


HEADING = "## Worker memory with open orders"
COLUMNS = (
    "date",
    "command",
    "open orders",
    "idle",
    "all open",
    "peak",
    "per open order",
    "machine",
)
HEADER = f"""{HEADING}

`bench/memory_bench.py` runs the worker as its own process (`python -m workers.main`, its
configuration from the environment), starts N orders that run their system steps and then
wait for a person (takeout at `mark_ready`, service at `confirm_with_customer`, default
policy), and reads the worker's resident memory from /proc: idle, once all N wait (after a
pause to settle), and the peak (kernel high-water mark). Goal: under {GOAL_MB:g} MB at
1,000 open orders.

""" + common.table_head(COLUMNS)


def record(result: dict[str, Any], command: str) -> None:
    rss = result["worker_rss_mb"]
    line = (
        f"| {common.today()} | `{command}` | {result['open_orders']:,} | {rss['idle']:.0f} MB | "
        f"{rss['all_open']:.0f} MB | **{rss['peak']:.0f} MB** | "
        f"{result['per_open_order_kb']:.0f} KB | {result['machine']} |"
    )
    common.record(HEADING, HEADER, line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory_bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=1000, help="orders open at once (1000)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the orders (7)")
    parser.add_argument("--settle", type=float, default=5.0, help="pause before reading, s (5)")
    parser.add_argument("--limit", type=float, default=900.0, help="time limit, s (900)")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    result = common.run(bench(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_record:
        shown = " ".join(argv if argv is not None else sys.argv[1:])
        record(result, f".venv/bin/python -m bench.memory_bench {shown}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
