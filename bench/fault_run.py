"""Nothing lost under faults: a business day of orders while the machinery keeps failing.

    python -m bench.fault_run [--orders N] [--seed S] [--json] [--no-record]

N orders go simulator -> gateway -> workflows, with the simulated staff doing the human steps
(as in `make demo`, under the demo policy), while

- the worker process is killed with SIGKILL and started again every few seconds;
- the Temporal dev server is restarted once (its state file kept), a third of the way in;
- PostgreSQL is restarted once (every connection cut), two thirds of the way in;
- the platform fails 10% of the merchant API calls (code 700), pushes 20% of its pushes twice
  and never pushes 5% of the orders, which only the patrol can find (R2.1.2).

Then it checks that every order reached a terminal state, that there is one workflow and one
record per order, that the database agrees with each workflow's final status (R1.3), that the
stock ledger balances and no SKU was oversold (R3.1.2), and that no capacity is left claimed
(R2.3.2, R3.2.1). It prints the result as JSON (`--json`) or as text, appends a row to
docs/benchmarks.md unless `--no-record`, and exits 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Replayer

from bench import common
from infra import database as db
from infra.logging import configure_logging
from localstack.demo import (
    POLICY_FILE,
    Check,
    DemoOptions,
    Observed,
    business_day,
    order_lookup,
    summarise,
)
from localstack.devstack import (
    Database,
    Say,
    TemporalServer,
    connect_temporal,
    database,
    die_with_parent,
    gateway,
    policy_file,
    simulator,
    staff_api,
    tail,
    temporal_dev_server,
    wait_for_pollers,
)
from localstack.simulator import Faults, SimConfig
from localstack.staff import Staff, StaffSettings, signed_in
from meituan.pushes import PushKind
from schemas.contract import order_workflow_id
from workers.registry import WORKFLOWS

FAULT_DATABASE = "orderflow_faults"
ORDERS_QUERY = 'WorkflowType="OrderWorkflow"'


@dataclass
class FaultOptions(DemoOptions):
    orders: int = 1000
    seed: int = 11
    data_dir: Path = field(default_factory=lambda: db.data_dir() / "faults")
    """Temporal's state, the embedded PostgreSQL and the worker's log; wiped at every start."""
    database: str = FAULT_DATABASE
    temporal_port: int | None = None
    ui_port: int | None = None
    gateway_port: int | None = None
    simulator_port: int | None = None
    limit_s: float = 900.0
    worker_life_s: tuple[float, float] = (4.0, 9.0)
    """A worker lives this long (uniformly drawn) before it is killed with SIGKILL."""
    kill_tail_s: float = 20.0
    """Killing goes on this long after the last order was placed, then one worker stays."""
    api_error_rate: float = 0.10
    push_duplicate: float = 0.20
    order_push_drop: float = 0.05
    company_scale: int | None = None
    """Staff capacity and stock times this (bench.common.scale_company); default one demo
    company per 100 orders, so a larger day tests the system and not the company's hands."""

    @property
    def arrival_window_s(self) -> float:
        """0.4 s per order by default: what two cores carry with the worker down half the time."""
        return self.spread_s if self.spread_s is not None else 0.4 * self.orders

    @property
    def scale(self) -> int:
        return self.company_scale or max(1, -(-self.orders // 100))


# --- the worker that keeps dying ----------------------------------------------------------------


class DyingWorker:
    """`python -m workers.main` as a separate process, so it can be killed like a machine dies."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.process: asyncio.subprocess.Process | None = None
        self.started = 0
        self.killed = 0

    async def start(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "workers.main",
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=die_with_parent(),
            )
        self.started += 1

    async def kill(self) -> None:
        """SIGKILL: no activity finishes, nothing is told; Temporal finds out by timeouts."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        await self.process.wait()
        self.killed += 1

    async def ensure_running(self) -> None:
        """A worker that exited on its own (Temporal or the database gone too long) comes back."""
        if self.process is None or self.process.returncode is not None:
            await self.start()

    async def keep_killing(
        self, life_s: tuple[float, float], rng: random.Random, until: asyncio.Event
    ) -> None:
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), rng.uniform(*life_s))
            if until.is_set():
                break
            await self.kill()
            await self.start()

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            await self.kill()


def worker_env(temporal: TemporalServer, dsn: str, api_base_url: str) -> dict[str, str]:
    """What an operator gives a worker (README, configuration): all of it from the environment."""
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": temporal.namespace,
        "DATABASE_URL": dsn,
        "MEITUAN_BASE_URL": api_base_url,
        "ORDERFLOW_POLICY": str(POLICY_FILE),
        "ORDERFLOW_LOG_LEVEL": "WARNING",
        "ORDERFLOW_SHUTDOWN_SECONDS": "5",
    }


# --- Temporal, restartable in place ---------------------------------------------------------------


class RestartableTemporal:
    """The dev server in its own exit stack, so it can be stopped and started again on the same
    port and state file while every client keeps its address."""

    def __init__(self, data_dir: Path, say: Say) -> None:
        self.data_dir = data_dir
        self.say = say
        self.server: TemporalServer | None = None
        self._stack = contextlib.AsyncExitStack()

    async def start(self, port: int | None = None) -> TemporalServer:
        self.server = await self._stack.enter_async_context(
            temporal_dev_server(self.data_dir, port=port, headless=True, say=self.say)
        )
        return self.server

    async def restart(self) -> None:
        assert self.server is not None
        port = int(self.server.address.rsplit(":", 1)[1])
        await self.stop()
        server = await self.start(port)
        if server.address != f"{server.address.rsplit(':', 1)[0]}:{port}":
            raise RuntimeError(f"Temporal came back on {server.address}, not port {port}")

    async def stop(self) -> None:
        await self._stack.aclose()
        self._stack = contextlib.AsyncExitStack()


@contextlib.asynccontextmanager
async def restartable_temporal(data_dir: Path, say: Say) -> AsyncIterator[RestartableTemporal]:
    temporal = RestartableTemporal(data_dir, say)
    await temporal.start()
    try:
        yield temporal
    finally:
        await temporal.stop()


# --- the faults on a timeline ------------------------------------------------------------------


@dataclass
class Chaos:
    """What was done to the stack, and when (seconds into the day)."""

    events: list[tuple[float, str]] = field(default_factory=list)

    def log(self, at: float, what: str, say: Say) -> None:
        self.events.append((round(at, 1), what))
        say(f"t+{at:.0f}s  FAULT: {what}")


async def restart_temporal_at(
    at_s: float, temporal: RestartableTemporal, chaos: Chaos, began: float, say: Say
) -> None:
    await asyncio.sleep(max(0.0, at_s - (time.monotonic() - began)))
    chaos.log(time.monotonic() - began, "Temporal dev server stopped", say)
    await temporal.restart()
    chaos.log(time.monotonic() - began, "Temporal dev server back (same state file)", say)


async def restart_postgres_at(
    at_s: float, pgdata: Path, chaos: Chaos, began: float, say: Say
) -> None:
    await asyncio.sleep(max(0.0, at_s - (time.monotonic() - began)))
    chaos.log(time.monotonic() - began, "PostgreSQL restarting (every connection cut)", say)
    await asyncio.to_thread(db.restart_embedded, pgdata, mode="immediate")
    chaos.log(time.monotonic() - began, "PostgreSQL back", say)


# --- what must hold afterwards -----------------------------------------------------------------


async def stock_snapshot(pool: asyncpg.Pool) -> dict[tuple[str, str], tuple[int, int]]:
    rows = await pool.fetch("SELECT store_code, sku, on_hand, reserved FROM stock")
    return {(r["store_code"], r["sku"]): (r["on_hand"], r["reserved"]) for r in rows}


async def check_stock(
    pool: asyncpg.Pool, before: dict[tuple[str, str], tuple[int, int]]
) -> list[Check]:
    """R3.1.2 stock now = stock before + what the ledger says happened, and none oversold."""
    after = await stock_snapshot(pool)
    moved = await pool.fetch(
        """
        SELECT store_code, sku,
               coalesce(sum(quantity) FILTER (WHERE kind = 'reserve'), 0) AS reserved,
               coalesce(sum(quantity) FILTER (WHERE kind = 'release'), 0) AS released,
               coalesce(sum(quantity) FILTER (WHERE kind = 'commit'), 0) AS committed
        FROM stock_ledger GROUP BY store_code, sku
        """
    )
    unbalanced: list[str] = []
    oversold: list[str] = []
    committed_total = 0
    for r in moved:
        key = (r["store_code"], r["sku"])
        on_hand0, reserved0 = before.get(key, (0, 0))
        on_hand, reserved = after.get(key, (0, 0))
        committed_total += r["committed"]
        expected = (
            on_hand0 - r["committed"],
            reserved0 + r["reserved"] - r["released"] - r["committed"],
        )
        if (on_hand, reserved) != expected:
            unbalanced.append(f"{key}: stock {(on_hand, reserved)}, ledger says {expected}")
        if r["committed"] > on_hand0 or on_hand < 0 or reserved > on_hand:
            oversold.append(f"{key}: {r['committed']} sold of {on_hand0}")
    untouched = [
        k
        for k in after
        if k not in {(r["store_code"], r["sku"]) for r in moved} and after[k] != before.get(k)
    ]
    return [
        Check(
            "stock ledger balances (R3.1.2)",
            not unbalanced and not untouched,
            f"{len(moved)} SKUs moved, {committed_total} units sold"
            + (f"; off: {unbalanced[:3]}" if unbalanced else "")
            + (f"; changed without ledger rows: {untouched[:3]}" if untouched else ""),
        ),
        Check(
            "no SKU oversold (R3.1.2)",
            not oversold,
            "every sale within the stock on hand" if not oversold else f"{oversold[:3]}",
        ),
    ]


async def check_capacity(pool: asyncpg.Pool, still_open: set[str]) -> Check:
    """R2.3.2, R3.2.1 nobody's capacity and no slot is claimed but by an order still open."""
    load = await pool.fetchval("SELECT coalesce(sum(active_load), 0) FROM staff")
    assigned = {
        r["order_id"] for r in await pool.fetch("SELECT order_id FROM assignments WHERE active")
    }
    booked = {
        r["order_id"]
        for r in await pool.fetch("SELECT order_id FROM service_bookings WHERE active")
    }
    leaked = (assigned | booked) - still_open
    return Check(
        "no capacity leaked (R2.3.2, R3.2.1)",
        not leaked and load == len(assigned),
        f"staff load {load}, active assignments {len(assigned)}, booked slots {len(booked)}"
        + (
            f" (held by orders still open: {sorted(assigned | booked)[:3]})"
            if assigned | booked
            else ""
        )
        + (f"; claimed by ended orders: {sorted(leaked)[:3]}" if leaked else ""),
    )


async def check_replay(client: Client) -> tuple[Check, dict[str, str]]:
    """Every history the day wrote replays with the current code, as a worker that starts
    afresh replays it. One that does not is an order stuck for good: its every workflow task
    fails with a nondeterminism error. Returns the failing ids with the replay's error."""
    replayer = Replayer(workflows=WORKFLOWS, data_converter=client.data_converter)
    replayed = 0
    failed: dict[str, str] = {}
    async for execution in client.list_workflows():
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        result = await replayer.replay_workflow(
            await handle.fetch_history(), raise_on_replay_failure=False
        )
        replayed += 1
        if result.replay_failure is not None:
            failed[execution.id] = str(result.replay_failure)[:500]
    first = next(iter(sorted(failed.items())), None)
    return (
        Check(
            "every history replays with the current code",
            not failed,
            f"{replayed - len(failed)} of {replayed} workflows"
            + (f"; not: {sorted(failed)[:5]}; first: {first[1]}" if first else ""),
        ),
        dict(sorted(failed.items())),
    )


WORKFLOW_IDS = re.compile(r"\b(?:order|anomaly)-\d+(?:-\d+)?\b")


async def keep_evidence(client: Client, checks: list[dict[str, Any]], folder: Path) -> list[str]:
    """The histories of every workflow a failed check names, kept to replay and read: a fault
    that shows once in many runs is understood from its history or not at all."""
    named = sorted(
        {wid for c in checks if not c["ok"] for wid in WORKFLOW_IDS.findall(str(c["detail"]))}
    )
    if not named:
        return []
    histories = {
        workflow_id: (await client.get_workflow_handle(workflow_id).fetch_history()).to_json()
        for workflow_id in named
    }
    await asyncio.to_thread(_write_histories, folder, histories)
    return named


def _write_histories(folder: Path, histories: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for workflow_id, text in histories.items():
        (folder / f"{workflow_id}.json").write_text(text, encoding="utf-8")


async def check_one_each(client: Client, pool: asyncpg.Pool, placed: set[str]) -> list[Check]:
    """Duplicated pushes, the patrol and the retries of a restarted gateway all start the same
    order: its workflow id makes it one workflow, its order id one row."""
    runs: Counter[str] = Counter()
    async for wf in client.list_workflows(ORDERS_QUERY):
        runs[wf.id] += 1
    twice = [w for w, n in runs.items() if n > 1]
    missing = placed - set(runs)
    extra = set(runs) - placed
    rows = await pool.fetch("SELECT order_id, count(*) AS n FROM orders GROUP BY order_id")
    recorded = {order_workflow_id(r["order_id"]): r["n"] for r in rows}
    summaries = await pool.fetchval("SELECT count(DISTINCT order_id) FROM order_summaries")
    summary_rows = await pool.fetchval("SELECT count(*) FROM order_summaries")
    return [
        Check(
            "one workflow per order",
            not twice and not missing and not extra,
            f"{len(runs)} workflows for {len(placed)} orders"
            + (f"; more than one run: {twice[:3]}" if twice else "")
            + (f"; no workflow: {sorted(missing)[:3]}" if missing else "")
            + (f"; not an order of the day: {sorted(extra)[:3]}" if extra else ""),
        ),
        Check(
            "one record per order",
            set(recorded) <= placed
            and all(n == 1 for n in recorded.values())
            and summaries == summary_rows,
            f"{len(recorded)} order rows, {summary_rows} summaries for {summaries} orders",
        ),
    ]


# --- the run -----------------------------------------------------------------------------------


def sim_config(options: FaultOptions) -> SimConfig:
    return SimConfig(
        seed=options.seed,
        anomaly_rate=options.anomaly_rate,
        confirm_timeout_s=60.0,  # R6.1 the platform cancels what is not accepted in time
        courier_step_s=1.0,
        push_retry_delay_s=1.0,
        faults=Faults(
            api_error_rate=options.api_error_rate,
            push_duplicate=options.push_duplicate,
            order_push_drop=options.order_push_drop,
        ),
    )


async def fault_run(options: FaultOptions, say: Say = print) -> dict[str, Any]:
    began = time.monotonic()
    for leftover in ("temporal.db", "temporal.db-wal", "temporal.db-shm", "worker.log"):
        (options.data_dir / leftover).unlink(missing_ok=True)
    options.data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = options.data_dir / "pg"
    rng = random.Random(f"{options.seed}:faults")
    chaos = Chaos()
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(policy_file(POLICY_FILE))
        database_: Database = await stack.enter_async_context(
            database(options.database, fresh=True, pgdata=pgdata, say=say)
        )
        temporal = await stack.enter_async_context(restartable_temporal(options.data_dir, say))
        assert temporal.server is not None
        client = await connect_temporal(temporal.server.address, temporal.server.namespace)
        sim = await stack.enter_async_context(
            simulator(sim_config(options), port=options.simulator_port, say=say)
        )
        sim.sim.config.push_base = None
        gateway_platform = await stack.enter_async_context(sim.client())
        gw = await stack.enter_async_context(
            gateway(client, database_.pool, gateway_platform, port=options.gateway_port, say=say)
        )
        sim.sim.config.push_base = gw.push_base_url
        worker = DyingWorker(
            worker_env(temporal.server, database_.dsn, sim.api_base_url),
            options.data_dir / "worker.log",
        )
        stack.push_async_callback(worker.stop)
        await worker.start()
        try:
            await wait_for_pollers(client, within_s=60)
        except Exception as exc:
            raise RuntimeError(f"the worker did not start:\n{tail(worker.log_file)}") from exc
        await common.scale_company(database_.pool, options.scale)
        stock_before = await stock_snapshot(database_.pool)
        api_url = await stack.enter_async_context(
            staff_api(client, database_.pool, port=None, say=say)
        )
        people = await stack.enter_async_context(signed_in(api_url, database_.pool))
        staff = Staff(
            people,
            StaffSettings(seed=options.seed),
            lookup=order_lookup(sim),
            business=sim.sim.business,
        )
        window = options.arrival_window_s
        say(
            f"fault run: {options.orders} orders over {window:.0f} s, company x{options.scale}; "
            f"worker killed every "
            f"{options.worker_life_s[0]:g}-{options.worker_life_s[1]:g} s; Temporal "
            f"restart at t+{0.35 * window:.0f}s, PostgreSQL at t+{0.65 * window:.0f}s; API errors "
            f"{options.api_error_rate:.0%}, duplicate pushes {options.push_duplicate:.0%}, "
            f"order pushes dropped {options.order_push_drop:.0%}"
        )
        day_began = time.monotonic()
        stop_killing = asyncio.Event()
        faults = [
            asyncio.create_task(worker.keep_killing(options.worker_life_s, rng, stop_killing)),
            asyncio.create_task(
                restart_temporal_at(0.35 * window, temporal, chaos, day_began, say)
            ),
            asyncio.create_task(restart_postgres_at(0.65 * window, pgdata, chaos, day_began, say)),
        ]

        async def end_killing() -> None:
            await asyncio.sleep(window + options.kill_tail_s)
            stop_killing.set()
            await faults[0]
            await worker.ensure_running()
            chaos.log(time.monotonic() - day_began, "worker left running", say)

        ending = asyncio.create_task(end_killing())
        try:
            day, finished = await business_day(sim.sim, client, options, staff, say)
        finally:
            stop_killing.set()
            ending.cancel()
            for task in faults[1:]:
                if not task.done():
                    say("the day ended before every fault was injected")
                task.cancel()
            results = await asyncio.gather(*faults, ending, return_exceptions=True)
        for outcome in results:
            if isinstance(outcome, Exception):
                raise outcome
        await worker.ensure_running()
        await wait_for_pollers(client, within_s=60)
        say("collecting the final status of every order, and checking the database")
        observed = Observed(client, database_, temporal.server)
        summary = (await summarise(observed, day, staff, finished, options, began)).summary
        placed = set(day.placed.values())
        still_open = set(summary["open_orders"])
        replays, not_replaying = await check_replay(client)
        checks = [
            Check(
                "every order reached a terminal state",
                not still_open,
                f"{len(placed) - len(still_open)} of {len(placed)}"
                + (f"; still open: {sorted(still_open)[:5]}" if still_open else ""),
            ),
            replays,
            *await check_one_each(client, database_.pool, placed),
            *await check_stock(database_.pool, stock_before),
            await check_capacity(database_.pool, still_open),
        ]
        dropped_ids = sorted(
            str(order.order_id)
            for order in sim.sim.orders.values()
            for push in order.pushes
            if push.kind is PushKind.ORDER and push.state == "dropped"
        )
        dropped = len(dropped_ids)
        # R2.1.2 who started the orders the platform never pushed: the patrol, or a later push
        # of the same order (a cancellation, say) through signal-with-start.
        recovered = Counter(
            r["source"]
            for r in await database_.pool.fetch(
                "SELECT source FROM orders WHERE order_id = ANY($1::text[])", dropped_ids
            )
        )
        duplicated = sum(1 for push in sim.sim.pushes if push.copies == 2)
        api_failures = sum(1 for call in sim.sim.api_log if call.error_code == 700)
        all_checks = summary["database_checks"] + [
            {"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks
        ]
        evidence = await keep_evidence(client, all_checks, options.data_dir / "evidence")
        ok = (
            bool(summary["finished"])
            and not summary["open_orders"]
            and all(c["ok"] for c in all_checks)
        )
        return {
            "ok": ok,
            "orders": options.orders,
            "seed": options.seed,
            "company_scale": options.scale,
            "elapsed_s": round(time.monotonic() - began, 1),
            "business_day_s": summary["business_day_s"],
            "finished": summary["finished"],
            "outcomes": summary["outcome_totals"],
            "cancelled_by": summary["cancelled_by"],
            "faults": {
                "worker_kills": worker.killed,
                "worker_starts": worker.started,
                "temporal_restarts": sum(1 for _, e in chaos.events if "back (same" in e),
                "postgres_restarts": sum(1 for _, e in chaos.events if e == "PostgreSQL back"),
                "api_errors": api_failures,
                "api_calls": len(sim.sim.api_log),
                "pushes_duplicated": duplicated,
                "order_pushes_dropped": dropped,
                "dropped_orders_started_by": dict(recovered),
                "timeline": chaos.events,
            },
            "patrol": summary["patrol"],
            "staff_errors": len(staff.report.errors),
            "checks": all_checks,
            "open_orders": summary["open_orders"],
            "not_replaying": not_replaying,
            "evidence": {"folder": str(options.data_dir / "evidence"), "histories": evidence},
            "machine": common.machine(),
        }


# --- output ------------------------------------------------------------------------------------

HEADING = "## Fault run (nothing lost)"
HEADER = f"""{HEADING}

`bench/fault_run.py` puts a business day of orders through the simulator, the gateway and the
workflows with the simulated staff, under the demo policy, while the worker process is killed
with SIGKILL every 4-9 s, the Temporal dev server and PostgreSQL are each restarted once, and the
platform fails 10% of API calls, pushes 20% of pushes twice and drops 5% of the order pushes
(found by the patrol). A run passes when every order is in a terminal state, there is one
workflow and one record per order, the database agrees with every workflow, the stock ledger
balances and no capacity is left claimed. `make test` runs it with 100 orders
(`tests/system/test_fault_run.py`).

The run ends by replaying every history it wrote with the current code ("every history
replays"). The first two runs below left one or two orders in a hundred stuck, their histories
no longer replaying. The cause: after a worker died, the first worker to touch an order did so
while a workflow task was scheduled but not started, for a status query or for that task with
an update in it. It handled the events the task was for apart from the query or update (and, for
a query, with the previous task's time), and kept the commands that made. The next replay took
them together, the update first, and decided otherwise (temporalio/sdk-python#1591). Two changes
close it: deadlines pass when their timer fires instead of by comparing `workflow.now()`
(the `deadlines-fire-by-timer` patch, `tests/workflows/test_cold_query.py`), and `orderctl`
and the staff query or update an order only once no workflow task is waiting
(`starter/settled.py`). What remains
open is the moment between that check and the query or update, and other clients that do not
check. `bench/evidence/` holds two histories written before the changes, one of each way
(`not-replaying-after-temporal-restart.json`: the query; `update-taken-apart-on-cold-start.json`:
the update). The first two runs had the demo company alone; the run now puts one demo company
(its staff and stock) per 100 orders, `--company-scale`, so a large day is not decided by 11
people's hands.

| date | command | orders | result | wall clock | faults injected | outcomes | machine |
|---|---|---|---|---|---|---|---|
"""


def record(result: dict[str, Any], command: str) -> None:
    f = result["faults"]
    outcomes = " · ".join(f"{k} {v}" for k, v in sorted(result["outcomes"].items()))
    injected = (
        f"{f['worker_kills']} worker kills, Temporal and PostgreSQL restarted "
        f"{f['temporal_restarts']} and {f['postgres_restarts']}, {f['api_errors']} of "
        f"{f['api_calls']} API calls failed, {f['pushes_duplicated']} pushes twice, "
        f"{f['order_pushes_dropped']} orders not pushed (started by "
        + ", ".join(f"{k} {v}" for k, v in sorted(f["dropped_orders_started_by"].items()))
        + ")"
    )
    row = (
        f"| {datetime.now(UTC):%Y-%m-%d} | `{command}` | {result['orders']:,} | "
        f"{'pass' if result['ok'] else 'FAIL'} | {result['elapsed_s']:.0f} s | {injected} | "
        f"{outcomes} | {result['machine']} |"
    )
    common.record(HEADING, HEADER, row)


def render(result: dict[str, Any]) -> str:
    f = result["faults"]
    out = [
        "",
        f"== fault run: {result['orders']} orders, seed {result['seed']}: "
        f"{'PASS' if result['ok'] else 'FAIL'} in {result['elapsed_s']:.0f} s",
        f"faults: worker killed {f['worker_kills']} times; Temporal restarted "
        f"{f['temporal_restarts']}, PostgreSQL {f['postgres_restarts']}; {f['api_errors']} of "
        f"{f['api_calls']} API calls failed; {f['pushes_duplicated']} pushes sent twice; "
        f"{f['order_pushes_dropped']} order pushes dropped (started by "
        + ", ".join(f"{k} {v}" for k, v in sorted(f["dropped_orders_started_by"].items()))
        + ")",
        "outcomes: " + " · ".join(f"{k} {v}" for k, v in sorted(result["outcomes"].items())),
        f"patrol: {result['patrol'].get('found', 0)} orders found in "
        f"{result['patrol'].get('runs', 0)} walks",
    ]
    for check in result["checks"]:
        out.append(f"  {'ok ' if check['ok'] else 'BAD'} {check['check']}: {check['detail']}")
    if result["open_orders"]:
        out.append(f"still open: {dict(list(result['open_orders'].items())[:10])}")
    if result["not_replaying"]:
        out.append(
            "stuck, their history does not replay (nondeterminism after a worker restart): "
            + ", ".join(result["not_replaying"])
        )
    if result["evidence"]["histories"]:
        out.append(f"histories of the workflows named above kept in {result['evidence']['folder']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fault_run", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=1000, help="orders in the day (1000)")
    parser.add_argument("--seed", type=int, default=11, help="seed of everything random (11)")
    parser.add_argument(
        "--limit",
        type=float,
        default=None,
        help="time limit, seconds (default: the arrivals, then 300 s + 0.5 s per order)",
    )
    parser.add_argument(
        "--company-scale",
        type=int,
        default=None,
        help="staff capacity and stock times this (default: 1 per 100 orders)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the in-process services' lines on stderr, not in the JSON
    if args.orders < 10:
        parser.error("--orders must be at least 10")
    if args.company_scale is not None and args.company_scale < 1:
        parser.error("--company-scale must be at least 1")
    options = FaultOptions(orders=args.orders, seed=args.seed, company_scale=args.company_scale)
    limit = (
        args.limit if args.limit is not None else options.arrival_window_s + 300 + 0.5 * args.orders
    )
    options.limit_s = limit
    say: Say = (lambda _: None) if args.json else (lambda line: print(line, flush=True))
    result = asyncio.run(fault_run(options, say))
    print(json.dumps(result, ensure_ascii=False, indent=2) if args.json else render(result))
    if not args.no_record:
        shown = " ".join(argv if argv is not None else sys.argv[1:])
        record(result, f".venv/bin/python -m bench.fault_run {shown}".strip())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
