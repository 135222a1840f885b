"""Orders per second through the whole pipeline, against a skeleton of the same shape.

    .venv/bin/python -m bench.pipeline_bench [--orders 100] [--rate 0] [--seed 7]

One fresh local stack (`localstack.devstack`: dev server, PostgreSQL with the demo company sized
up, the simulator, the gateway, a worker). First the real pipeline: the simulator pushes N
clean orders, signed, to the gateway; the simulated staff (`localstack.staff`) does the human
steps through the staff API (each person with their own token; the API reads PostgreSQL and
sends the updates) and the simulated couriers' pushes become signals; every order runs to
`closed`. Latency is from the push to the close of the order's workflow.

Then, on the same dev server, each finished order's history is read and a `SkeletonWorkflow`
(bench/skeleton.py) is started with its shape: the same activities (empty), timers (same
durations, fired or cancelled alike), signals and updates, task by task. A driver that works as
the staff did before the staff API (a visibility listing every poll, a query, a person's think
time) sends the messages straight to Temporal. The counts of both are printed from their
histories, so they are compared, not assumed. The ratio of orders per second is the
pipeline's share of the engine's ceiling.

The deadlines are the default policy's (minutes), so none is missed and none changes the
shape; the feedback window is cut to one second so an order closes within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from bench import common
from bench.skeleton import (
    SKELETON_QUEUE,
    Shape,
    SkeletonWorkflow,
    Task,
    Timer,
    empty_step,
)
from infra.logging import configure_logging
from localstack.demo import order_lookup
from localstack.devstack import StackOptions, dev_stack
from localstack.simulator import SimConfig
from localstack.staff import Staff, StaffSettings, signed_in
from schemas.contract import order_workflow_id
from schemas.status import OrderOutcome

GOAL_RATIO = 0.8
FEEDBACK_WINDOW_S = 1.0
COMPANY_SCALE = 50
E = EventType

FINISHED = {
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
COUNTED = {
    "activities": E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    "local_activities": E.EVENT_TYPE_MARKER_RECORDED,
    "patch_markers": E.EVENT_TYPE_MARKER_RECORDED,
    "timers_started": E.EVENT_TYPE_TIMER_STARTED,
    "timers_fired": E.EVENT_TYPE_TIMER_FIRED,
    "timers_cancelled": E.EVENT_TYPE_TIMER_CANCELED,
    "signals": E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    "updates": E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    "search_attribute_upserts": E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    "child_workflows": E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
    "workflow_tasks": E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    "events": E.EVENT_TYPE_UNSPECIFIED,
}
"""What is counted in a history (`events`: all of them)."""
MARKERS = {"core_local_activity": "local_activities", "core_patch": "patch_markers"}
SHAPED = (
    "activities",
    "local_activities",
    "patch_markers",
    "timers_started",
    "timers_fired",
    "timers_cancelled",
    "signals",
    "updates",
)
"""What the skeleton reproduces; the other counts are shown for what they say."""


# --- histories -----------------------------------------------------------------------------------


def counts(history: WorkflowHistory) -> Counter[str]:
    found: Counter[str] = Counter()
    for event in history.events:
        found["events"] += 1
        for name, kind in COUNTED.items():
            if event.event_type == kind and name not in MARKERS.values():
                found[name] += 1
        if event.event_type == E.EVENT_TYPE_MARKER_RECORDED:
            found[MARKERS.get(event.marker_recorded_event_attributes.marker_name, "other")] += 1
    return found


def shape_of(history: WorkflowHistory) -> Shape:
    """The history as the skeleton replays it, workflow task by workflow task.

    Events outside a task's commands (an activity finished, a timer fired, a signal) are what
    the next task waited for; an accepted update belongs to the task that accepted it."""
    tasks: list[Task] = []
    task = Task()
    commands = False

    def next_task() -> Task:
        nonlocal commands
        tasks.append(task)
        commands = False
        return Task()

    for event in history.events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            commands = True
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED and commands:
            task = next_task()
        elif kind in FINISHED or kind in (
            E.EVENT_TYPE_TIMER_FIRED,
            E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        ):
            if commands:
                task = next_task()
            if kind in FINISHED:
                task.finished.append(getattr(event, FINISHED[kind]).scheduled_event_id)
            elif kind == E.EVENT_TYPE_TIMER_FIRED:
                task.fired.append(event.timer_fired_event_attributes.timer_id)
            else:
                task.signals += 1
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            task.updates += 1
        elif kind == E.EVENT_TYPE_MARKER_RECORDED:
            marker = MARKERS.get(event.marker_recorded_event_attributes.marker_name)
            if marker == "patch_markers":
                task.patches += 1
            elif marker == "local_activities":
                task.local += 1
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            task.scheduled.append(event.event_id)
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            started = event.timer_started_event_attributes
            seconds = started.start_to_fire_timeout.ToTimedelta().total_seconds()
            task.started.append(Timer(started.timer_id, seconds))
        elif kind == E.EVENT_TYPE_TIMER_CANCELED:
            task.cancelled.append(event.timer_canceled_event_attributes.timer_id)
    tasks.append(task)
    return Shape([t for t in tasks if t != Task()])


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def closed_at(history: WorkflowHistory) -> float:
    """When the workflow completed, by the server's clock (this machine's)."""
    last = history.events[-1]
    if last.event_type != E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        raise RuntimeError(f"{history.workflow_id} did not complete: {last.event_type}")
    return _seconds(last)


# --- waiting for the runs ------------------------------------------------------------------------


async def finish(client: Client, workflow_id: str) -> Any:
    """The workflow's result, waiting for it to exist first (a push is asynchronous)."""
    while True:
        try:
            return await client.get_workflow_handle(workflow_id).result()
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.2)


async def histories(client: Client, workflow_ids: Sequence[str]) -> list[WorkflowHistory]:
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> WorkflowHistory:
        async with gate:
            return await client.get_workflow_handle(workflow_id).fetch_history()

    return list(await asyncio.gather(*(one(w) for w in workflow_ids)))


@dataclass
class Run:
    """One phase: when each workflow was started (wall clock) and what its history says."""

    label: str
    started: dict[str, float]
    histories: list[WorkflowHistory]
    wall_s: float

    def summary(self) -> dict[str, Any]:
        latencies = [closed_at(h) - self.started[h.workflow_id] for h in self.histories]
        first = min(self.started.values())
        last = max(closed_at(h) for h in self.histories)
        total: Counter[str] = Counter()
        for h in self.histories:
            total.update(counts(h))
        n = len(self.histories)
        return {
            "orders": n,
            "orders_per_s": round(n / (last - first), 3),
            "span_s": round(last - first, 2),
            "latency_s": {
                "p50": round(common.percentile(latencies, 50), 3),
                "p95": round(common.percentile(latencies, 95), 3),
                "mean": round(statistics.fmean(latencies), 3),
                "max": round(max(latencies), 3),
            },
            "counts": {name: total[name] for name in COUNTED},
            "per_order": {name: round(total[name] / n, 1) for name in COUNTED},
        }


async def paced(count: int, rate: float) -> AsyncIterator[int]:
    """Yields 0..count-1 at `rate` per second (0: all at once)."""
    began = time.monotonic()
    for i in range(count):
        if rate > 0:
            await asyncio.sleep(max(0.0, began + i / rate - time.monotonic()))
        yield i


# --- the real pipeline ---------------------------------------------------------------------------


async def real_pipeline(stack: Any, args: argparse.Namespace, settings: StaffSettings) -> Run:
    sim = stack.sim.sim
    async with signed_in(stack.api_url, stack.db.pool) as people:
        staff = Staff(people, settings, lookup=order_lookup(stack.sim), business=sim.business)
        return await _with_staff(stack, args, staff)


async def _with_staff(stack: Any, args: argparse.Namespace, staff: Staff) -> Run:
    sim = stack.sim.sim
    stores = [s.code for s in sim.business.stores]
    staff_task = asyncio.create_task(staff.run())
    started: dict[str, float] = {}
    began = time.monotonic()
    try:
        async for i in paced(args.orders, args.rate):
            at = time.time()
            order = sim.create_order({"app_poi_code": stores[i % len(stores)]})
            started[order_workflow_id(order.order_id)] = at
        async with asyncio.timeout(args.limit):
            outcomes = await asyncio.gather(*(finish(stack.client, w) for w in started))
    finally:
        staff_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await staff_task
    wall = time.monotonic() - began
    stages = Counter(OrderOutcome.model_validate(o).stage.value for o in outcomes)
    if set(stages) != {"closed"}:
        raise RuntimeError(f"orders ended otherwise than closed: {dict(stages)}")
    if staff.report.errors:
        print(f"staff errors: {staff.report.errors[:3]}", file=sys.stderr)
    return Run("pipeline", started, await histories(stack.client, list(started)), wall)


# --- the skeleton --------------------------------------------------------------------------------


class SkeletonCrew:
    """The staff's way of working, for skeletons: every poll a visibility listing of the open
    ones, then per workflow a query for what it waits for and, after a person's think time,
    the update (or the signal a platform push would have been)."""

    def __init__(self, client: Client, settings: StaffSettings, run_id: str) -> None:
        self.client = client
        self.settings = settings
        self.query = (
            f'WorkflowType="SkeletonWorkflow" AND ExecutionStatus="Running" '
            f'AND WorkflowId STARTS_WITH "skeleton-{run_id}-"'
        )
        self.rng = random.Random(settings.seed)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while True:
                async for wf in self.client.list_workflows(self.query):
                    if wf.id not in self._busy:
                        self._busy.add(wf.id)
                        task = asyncio.create_task(self._work(wf.id))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(self.settings.poll_s)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self, workflow_id: str) -> None:
        handle = self.client.get_workflow_handle_for(SkeletonWorkflow.run, workflow_id)
        try:
            waiting = await handle.query(SkeletonWorkflow.waiting)
            if waiting == "update":
                await asyncio.sleep(self.rng.uniform(*self.settings.think_s))
                await handle.execute_update(SkeletonWorkflow.act)
            elif waiting == "signal":
                await handle.signal(SkeletonWorkflow.message)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                print(f"{workflow_id}: {exc}", file=sys.stderr)
        finally:
            self._busy.discard(workflow_id)


async def skeleton(
    client: Client, shapes: list[Shape], args: argparse.Namespace, settings: StaffSettings
) -> Run:
    run_id = uuid.uuid4().hex[:6]
    crew = SkeletonCrew(client, settings, run_id)
    started: dict[str, float] = {}
    async with Worker(
        client,
        task_queue=SKELETON_QUEUE,
        workflows=[SkeletonWorkflow],
        activities=[empty_step],
    ):
        crew_task = asyncio.create_task(crew.run())
        began = time.monotonic()
        try:
            starts: list[asyncio.Task[Any]] = []
            async for i in paced(len(shapes), args.rate):
                workflow_id = f"skeleton-{run_id}-{i}"
                started[workflow_id] = time.time()
                starts.append(
                    asyncio.create_task(
                        client.start_workflow(
                            SkeletonWorkflow.run,
                            shapes[i],
                            id=workflow_id,
                            task_queue=SKELETON_QUEUE,
                        )
                    )
                )
            await asyncio.gather(*starts)
            async with asyncio.timeout(args.limit):
                await asyncio.gather(*(finish(client, w) for w in started))
        finally:
            crew_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await crew_task
        wall = time.monotonic() - began
    return Run("skeleton", started, await histories(client, list(started)), wall)


# --- the run -------------------------------------------------------------------------------------


def staff_settings(args: argparse.Namespace) -> StaffSettings:
    """Quick hands and no deadline missed on purpose: the engine, not people, sets the pace."""
    return StaffSettings(
        seed=args.seed,
        think_s=(round(args.think / 2, 3), round(args.think * 1.5, 3)),
        slow_share=0.0,
        poll_s=args.poll,
        recheck_s=args.poll,
        visit_in_s=(5.0, 10.0),
    )


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    window = str(FEEDBACK_WINDOW_S / 60)
    policy = {
        "ORDERFLOW_POLICY__goods__feedback_window_minutes": window,
        "ORDERFLOW_POLICY__service__feedback_window_minutes": window,
    }
    settings = staff_settings(args)
    with (
        tempfile.TemporaryDirectory(prefix="pipeline-bench-") as folder,
        common.environment(policy),
    ):
        options = StackOptions(
            data_dir=Path(folder) / "temporal",
            database=f"pipeline_bench_{uuid.uuid4().hex[:8]}",
            pgdata=Path(folder) / "pg",
            fresh=True,
            temporal_port=None,
            ui_port=None,
            gateway_port=None,
            api_port=None,
            simulator_port=None,
            sim_config=SimConfig(
                seed=args.seed,
                anomaly_rate=0.0,
                confirm_timeout_s=None,
                courier_step_s=args.courier_step,
            ),
            patrol=False,
        )
        async with dev_stack(options) as stack:
            await common.scale_company(stack.db.pool, COMPANY_SCALE)
            print(f"pipeline: {args.orders} orders", file=sys.stderr, flush=True)
            real = await real_pipeline(stack, args, settings)
            shapes = [shape_of(h) for h in real.histories]
            print(f"skeleton: {len(shapes)} workflows", file=sys.stderr, flush=True)
            bare = await skeleton(stack.client, shapes, args, settings)
    pipeline, ceiling = real.summary(), bare.summary()
    same = {k: pipeline["counts"][k] == ceiling["counts"][k] for k in SHAPED}
    return {
        "orders": args.orders,
        "rate": args.rate or "all at once",
        "pipeline": pipeline,
        "skeleton": ceiling,
        "same_shape": same,
        "ratio": {
            "orders_per_s": common.ratio(pipeline["orders_per_s"], ceiling["orders_per_s"]),
            "p50_latency": common.ratio(ceiling["latency_s"]["p50"], pipeline["latency_s"]["p50"]),
            "p95_latency": common.ratio(ceiling["latency_s"]["p95"], pipeline["latency_s"]["p95"]),
        },
        "goal_ratio": GOAL_RATIO,
        "settings": {
            "feedback_window_s": FEEDBACK_WINDOW_S,
            "think_s": list(settings.think_s),
            "poll_s": settings.poll_s,
            "courier_step_s": args.courier_step,
            "company_scale": COMPANY_SCALE,
        },
        "machine": common.machine(),
        "total_seconds": round(time.perf_counter() - began, 1),
    }


HEADING = "## Pipeline against its skeleton"
COLUMNS = (
    "date",
    "command",
    "orders",
    "per order: activities / timers / signals / updates",
    "pipeline orders/s",
    "p50 / p95",
    "skeleton orders/s",
    "p50 / p95",
    "ratio",
    "machine",
)
HEADER = f"""{HEADING}

`bench/pipeline_bench.py` pushes N clean orders through the whole local stack (simulator,
gateway, workflows, PostgreSQL, the simulated staff and couriers) and runs each to `closed`;
then, on the same dev server, it starts one `SkeletonWorkflow` per order with that order's
shape read from its history: the same activities (with empty bodies), timers (same durations,
fired or cancelled alike), signals and updates, workflow task by workflow task, the messages
sent by a driver that works like the staff. The histories of both are counted, so the shapes
are compared, not assumed. Latency: push (or start) to the workflow's close. Ratio: pipeline
orders/s over skeleton orders/s. Goal: at least {GOAL_RATIO:g}. The feedback window is cut to
{FEEDBACK_WINDOW_S:g} s so orders close within the run; people think 0.5-1.5x `--think` s.

""" + common.table_head(COLUMNS)


def record(result: dict[str, Any], command: str) -> None:
    p, s = result["pipeline"], result["skeleton"]
    per = p["per_order"]
    shape = (
        f"{per['activities']:g} (+{per['local_activities']:g} local) / "
        f"{per['timers_started']:g} / {per['signals']:g} / {per['updates']:g}"
    )
    line = (
        f"| {common.today()} | `{command}` | {result['orders']} | {shape} | "
        f"{p['orders_per_s']:.2f} | {p['latency_s']['p50']:.1f} / {p['latency_s']['p95']:.1f} s | "
        f"{s['orders_per_s']:.2f} | {s['latency_s']['p50']:.1f} / {s['latency_s']['p95']:.1f} s | "
        f"**{result['ratio']['orders_per_s']:.2f}** | {result['machine']} |"
    )
    common.record(HEADING, HEADER, line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline_bench", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--orders", type=int, default=100, help="orders (100)")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="orders per second pushed (0: all at once)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the orders and people (7)")
    parser.add_argument("--think", type=float, default=0.2, help="a person's think time, s (0.2)")
    parser.add_argument("--poll", type=float, default=0.5, help="staff look for work every, s")
    parser.add_argument("--courier-step", type=float, default=0.5, help="courier status step, s")
    parser.add_argument("--limit", type=float, default=600.0, help="time limit per phase, s")
    parser.add_argument(
        "--no-record", action="store_true", help="do not append to docs/benchmarks.md"
    )
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the in-process services' lines on stderr, not in the JSON
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    result = common.run(bench(args))
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if not args.no_record:
        shown = " ".join(argv if argv is not None else sys.argv[1:])
        record(result, f".venv/bin/python -m bench.pipeline_bench {shown}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
