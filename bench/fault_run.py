"""Nothing lost under faults: a business day of orders while the machinery keeps failing.

    python -m bench.fault_run [--orders N] [--seed S] [--replicas R] [--no-engineer]
                              [--json] [--no-record]

N orders go simulator -> gateway -> workflows, with the simulated staff doing the human steps
(as in `make demo`, under the demo policy), while

- the workers run as deployed, two processes of each role (`--replicas`), and every few
  seconds one of them is killed with SIGKILL, the next in turn, and is back a moment later;
- an engineer queries random open orders with the Temporal CLI throughout, their status and
  their stack trace (`bench.engineer`), as people do from a terminal or the Web UI;
- the workers' doctor (ORDERFLOW_DOCTOR_MINUTES) repairs any order whose history stops
  replaying, and the repairs are counted;
- the Temporal dev server is restarted once (its state file kept), a third of the way in;
- PostgreSQL is restarted once (every connection cut), two thirds of the way in;
- the platform fails 10% of the merchant API calls (code 700), pushes 20% of its pushes twice
  and never pushes 5% of the orders, which only the patrol can find (R2.1.2).

Then it checks that every order reached a terminal state, that there is one workflow and one
record per order, that the database agrees with each workflow's final status (R1.3), that the
stock ledger balances and no SKU was oversold (R3.1.2), and that no capacity is left claimed
(R2.3.2, R3.2.1). It reports the orders the platform auto-cancelled before the store confirmed
them (R6.1). It prints the result as JSON (`--json`) or as text, appends a row to
docs/benchmarks.md unless `--no-record`, and exits 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from activities import doctor
from bench import common
from bench.engineer import Engineer
from bench.fault_checks import (
    check_capacity,
    check_one_each,
    check_replay,
    check_stock,
    keep_evidence,
    replaced_runs,
    stock_snapshot,
)
from bench.fault_stack import (
    Chaos,
    Replicas,
    restart_postgres_at,
    restart_temporal_at,
    restartable_temporal,
    worker_env,
)
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
    connect_temporal,
    database,
    gateway,
    policy_file,
    simulator,
    staff_api,
    wait_for_pollers,
)
from localstack.simulator import Faults, SimConfig
from localstack.staff import Staff, StaffSettings, signed_in
from meituan.pushes import PushKind
from schemas.doctor import DoctorReport, DoctorRound
from schemas.record_check import RecordCheckReport
from workers.schedules import remove_doctor_schedule

FAULT_DATABASE = "orderflow_faults"
ORDERS_AND_ANOMALIES = (
    '(WorkflowType="OrderWorkflow" OR WorkflowType="AnomalyWorkflow") AND ExecutionStatus="Running"'
)


DOCTOR_MINUTES = 0.5
"""The workers' doctor (ORDERFLOW_DOCTOR_MINUTES) repairs what stops replaying during the day."""
RECORD_CHECK_MINUTES = 0.5
"""The record check (ORDERFLOW_RECORD_CHECK_MINUTES) rewrites records ahead of their history."""


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
    """Every this long (uniformly drawn) one worker is killed with SIGKILL, the next in turn."""
    worker_restart_s: tuple[float, float] = (1.0, 3.0)
    """A killed worker is back this long after (a replica; one worker alone comes back at once)."""
    kill_tail_s: float = 20.0
    """Killing goes on this long after the last order was placed, then every worker stays."""
    replicas: int = 2
    """Worker processes of each role, as deployed (1: one process with every role)."""
    engineer: bool = True
    """An engineer queries random open orders with the Temporal CLI throughout (bench.engineer)."""
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
    for leftover in ("temporal.db", "temporal.db-wal", "temporal.db-shm"):
        (options.data_dir / leftover).unlink(missing_ok=True)
    for log in options.data_dir.glob("worker*.log"):
        log.unlink()
    options.data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = options.data_dir / "pg"
    rng = random.Random(f"{options.seed}:faults")
    chaos = Chaos()
    async with contextlib.AsyncExitStack() as stack:
        # The local stack (infra.fail_closed): its own database takes the development secrets,
        # as the processes it starts do (fault_stack.worker_env).
        stack.enter_context(common.environment(common.LOCAL_STACK))
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
        worker = Replicas(
            {
                **worker_env(temporal.server, database_.dsn, sim.api_base_url),
                "ORDERFLOW_DOCTOR_MINUTES": str(DOCTOR_MINUTES),
                "ORDERFLOW_RECORD_CHECK_MINUTES": str(RECORD_CHECK_MINUTES),
            },
            options.data_dir,
            options.replicas,
        )
        stack.push_async_callback(worker.stop)
        await worker.start()
        try:
            await wait_for_pollers(client, within_s=60)
        except Exception as exc:
            raise RuntimeError(f"the workers did not start:\n{worker.tail()}") from exc
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
            asyncio.create_task(
                worker.keep_killing(
                    options.worker_life_s,
                    rng,
                    stop_killing,
                    options.worker_restart_s if options.replicas > 1 else (0.0, 0.0),
                )
            ),
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
            chaos.log(time.monotonic() - day_began, "workers left running", say)

        ending = asyncio.create_task(end_killing())
        engineer = Engineer(
            client, temporal.server.address, temporal.server.namespace, random.Random(rng.random())
        )
        day_over = asyncio.Event()
        engineering = asyncio.create_task(engineer.work(day_over)) if options.engineer else None
        try:
            day, finished = await business_day(sim.sim, client, options, staff, say, say)
        finally:
            day_over.set()
            if engineering is not None:
                await engineering
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
        repairs = await doctor_repairs(client)
        rewrites = await records_rewritten(client)
        say("collecting the final status of every order, and checking the database")
        observed = Observed(client, database_, temporal.server)
        summary = (await summarise(observed, day, staff, finished, options, began)).summary
        placed = set(day.placed.values())
        still_open = set(summary["open_orders"])
        replaced = await replaced_runs(client)
        replays, not_replaying = await check_replay(client, replaced)
        checks = [
            Check(
                "every order reached a terminal state",
                not still_open,
                f"{len(placed) - len(still_open)} of {len(placed)}"
                + (f"; still open: {sorted(still_open)[:5]}" if still_open else ""),
            ),
            replays,
            *await check_one_each(client, database_.pool, placed, replaced),
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
            "auto_cancelled": summary["cancelled_by"].get("platform auto-cancel", 0),
            "engineer": engineer.report(),
            "doctor": repairs,
            "record_check": rewrites,
            "staff_errors": len(staff.report.errors),
            "checks": all_checks,
            "open_orders": summary["open_orders"],
            "not_replaying": not_replaying,
            "evidence": {"folder": str(options.data_dir / "evidence"), "histories": evidence},
            "machine": common.machine(),
        }


async def doctor_repairs(client: Client) -> dict[str, Any]:
    """What the doctor's scheduled rounds repaired during the day, and a last round now. The
    schedule is removed first and its last round awaited, so no round resets a run while the
    checks look. A round whose worker died after a reset may leave that repair unreported:
    the checks take the replaced runs from Temporal (`fault_checks.replaced_runs`)."""
    await remove_doctor_schedule(client)
    async for run in client.list_workflows(
        'WorkflowType="DoctorWorkflow" AND ExecutionStatus="Running"'
    ):
        last_round = client.get_workflow_handle(run.id, run_id=run.run_id)
        with contextlib.suppress(Exception):  # failed or timed out: counted as not completed
            await asyncio.wait_for(last_round.result(), 120)
    reports: list[DoctorReport] = []
    async for run in client.list_workflows('WorkflowType="DoctorWorkflow"'):
        if run.status is WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(run.id, run_id=run.run_id, result_type=DoctorReport)
            reports.append(await handle.result())
    scheduled = len(reports)
    reports.append(
        await doctor.find_and_repair(client, DoctorRound(query=ORDERS_AND_ANOMALIES, thorough=True))
    )
    return {
        "rounds": scheduled,
        "found": sum(r.found for r in reports),
        "repaired": [r.model_dump() for report in reports for r in report.repaired],
        "unrepaired": [u.model_dump() for report in reports for u in report.unrepaired],
    }


async def records_rewritten(client: Client) -> dict[str, Any]:
    """The orders the record check's rounds found ahead of their history during the day."""
    rounds = 0
    ahead: list[dict[str, Any]] = []
    async for run in client.list_workflows('WorkflowType="RecordCheckWorkflow"'):
        if run.status is WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(
                run.id, run_id=run.run_id, result_type=RecordCheckReport
            )
            rounds += 1
            ahead.extend(a.model_dump() for a in (await handle.result()).ahead)
    return {"rounds": rounds, "ahead": ahead}


# --- output ------------------------------------------------------------------------------------

HEADING = "## Fault run (nothing lost)"
HEADER = f"""{HEADING}

`bench/fault_run.py` puts a business day of orders through the simulator, the gateway and the
workflows with the simulated staff, under the demo policy, while a worker process is killed
with SIGKILL every 4-9 s, the Temporal dev server and PostgreSQL are each restarted once, and the
platform fails 10% of API calls, pushes 20% of pushes twice and drops 5% of the order pushes
(found by the patrol). A run passes when every order is in a terminal state, there is one
workflow and one record per order, the database agrees with every workflow, the stock ledger
balances and no capacity is left claimed. `make test` runs it with 100 orders
(`tests/system/test_fault_run.py`). Since 2026-12-05 the workers run as deployed, two
processes of each role (`--replicas 2`) killed one at a time in turn, each back 1-3 s later; an
engineer asks random open orders for their status and stack trace with the Temporal CLI all day
(`bench/engineer.py`); and the workers' doctor (`ORDERFLOW_DOCTOR_MINUTES=0.5`) repairs any
order whose history stops replaying, with the repairs counted in the row. Rows before that date
had one worker process, no CLI queries and no doctor.

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
        + f"); {_engineer_line(result['engineer'])}; {_doctor_line(result['doctor'])}; "
        f"{_record_check_line(result['record_check'])}; "
        f"{result['auto_cancelled']} auto-cancelled by the platform"
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
        f"platform auto-cancelled {result['auto_cancelled']} orders before they were confirmed",
        _engineer_line(result["engineer"]),
        _doctor_line(result["doctor"]),
        _record_check_line(result["record_check"]),
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


def _engineer_line(engineer: dict[str, dict[str, int]]) -> str:
    calls, unanswered = engineer["calls"], engineer["unanswered"]
    return (
        f"engineer: {calls['query']} CLI status queries ({unanswered['query']} unanswered), "
        f"{calls['stack']} stack traces ({unanswered['stack']} unanswered)"
    )


def _doctor_line(repairs: dict[str, Any]) -> str:
    return (
        f"doctor: {len(repairs['repaired'])} repaired, {len(repairs['unrepaired'])} not, "
        f"in {repairs['rounds']} scheduled rounds and a last one"
    )


def _record_check_line(rewrites: dict[str, Any]) -> str:
    ahead = rewrites["ahead"]
    return (
        f"record check: {sum(a['rewritten'] for a in ahead)} records ahead of their history "
        f"rewritten, {sum(not a['rewritten'] for a in ahead)} not, in {rewrites['rounds']} rounds"
    )


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
    parser.add_argument(
        "--replicas",
        type=int,
        default=2,
        help="worker processes of each role (2); 1: one process with every role",
    )
    parser.add_argument(
        "--no-engineer", action="store_true", help="no Temporal CLI queries during the day"
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
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    options = FaultOptions(
        orders=args.orders,
        seed=args.seed,
        company_scale=args.company_scale,
        replicas=args.replicas,
        engineer=not args.no_engineer,
    )
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
