"""The order worker: `python -m workers.main` (or `orderflow-worker`).

One process runs one or more roles (ORDERFLOW_WORKER_ROLES): the workflows, the activities, or
the merchant API calls on a rate-limited queue of their own. Runs until SIGTERM or SIGINT, then
stops polling and lets activities in flight finish (ORDERFLOW_SHUTDOWN_SECONDS, default 30)
before it exits; a configuration it cannot run exits 2 with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.policy import PolicyError, current_policy, load_policy
from infra import ast_lock, fail_closed
from infra.database import connect
from infra.logging import configure_logging
from infra.settings import SettingsError, settings, settings_for
from infra.temporal import connect_client
from meituan.client import MeituanClient
from schemas.contract import TASK_QUEUE
from workers.dispatcher import Dispatcher
from workers.interceptors import LogContextInterceptor
from workers.registry import WORKFLOWS, build_activities, local_steps, platform_activities
from workers.schedules import (
    doctor_every,
    ensure_doctor_schedule,
    ensure_patrol_schedule,
    ensure_record_check_schedule,
    ensure_report_schedules,
    ensure_stats_refresh_schedule,
    record_check_every,
    stats_refresh_every,
)

log = logging.getLogger("orderflow.worker")


def tuning(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Worker settings from the environment, chosen by what bench/memory_bench.py measured
    (docs/benchmarks.md).

    ORDERFLOW_SANDBOX_PASSTHROUGH (default `infra.settings.SAFE_PASSTHROUGH`: the messages and
    the activity interfaces): modules the workflow sandbox takes from the worker instead of
    importing them for every run. The workflow code itself is imported afresh for each run so
    that the sandbox's determinism checks apply to it; passing `workflows` through too takes
    an open order from about 700 KB to 270 KB but runs it unchecked (docs/benchmarks.md).
    ORDERFLOW_MAX_CACHED_WORKFLOWS bounds the open orders kept in memory between
    their steps (SDK default 1000); an order evicted is replayed from its history at its
    next step. ORDERFLOW_STICKY_TIMEOUT_SECONDS (3) is how long an order's next task waits for
    the worker that holds it in memory.
    """
    worker = settings_for(environ).worker
    options: dict[str, Any] = {
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=worker.sticky_timeout_s)
    }
    if worker.max_cached_workflows is not None:
        options["max_cached_workflows"] = worker.max_cached_workflows
    passthrough = worker.sandbox_passthrough
    if passthrough:
        options["workflow_runner"] = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough)
        )
    return options


def _runtime() -> Runtime | None:
    """Prometheus metrics from the Temporal runtime when ORDERFLOW_METRICS_ADDRESS is set."""
    address = settings().worker.metrics_address
    if not address:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


ROLES = ("workflows", "activities", "platform", "notifications")


class WorkerConfigError(ValueError):
    """The environment asks for a worker that cannot be built; the message says what to set."""


def roles(wanted: Sequence[str], platform_task_queue: str | None) -> tuple[str, ...]:
    """ORDERFLOW_WORKER_ROLES (`wanted`): `workflows` (the workflows and their local
    activities), `activities` (database, the notifications' outbox, patrol), `platform` (the
    merchant API calls, on their own queue) and `notifications` (the dispatcher that delivers
    the outbox, workers/dispatcher.py: any number may run, one sends at a time). Default: every
    role the configuration has, in one process."""
    chosen = set(wanted)
    unknown = chosen - set(ROLES)
    if unknown:
        raise WorkerConfigError(
            f"ORDERFLOW_WORKER_ROLES: unknown role(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(ROLES)}"
        )
    if "platform" in chosen and platform_task_queue is None:
        raise WorkerConfigError(
            "ORDERFLOW_WORKER_ROLES has `platform`, but ORDERFLOW_PLATFORM_TASK_QUEUE is not set: "
            "without a queue of their own the merchant API calls run with the `activities` role"
        )
    if not chosen:
        chosen = {"workflows", "activities", "notifications"}
        chosen |= {"platform"} if platform_task_queue else set()
    return tuple(r for r in ROLES if r in chosen)


async def run(stop: asyncio.Event) -> None:
    configured = settings().worker
    policy = current_policy()
    platform_queue = policy.platform_task_queue
    chosen = roles(configured.roles, platform_queue)
    # ORDERFLOW_PLATFORM_RATE: merchant API calls per second across all platform workers (the
    # server enforces it on the queue, R6.3.1 the platform's rate limit); unset: no limit.
    rate = configured.platform_rate
    client = await connect_client(runtime=_runtime())
    await ensure_patrol_schedule(client, timedelta(minutes=policy.patrol_minutes))
    await ensure_report_schedules(client)
    await ensure_stats_refresh_schedule(client, stats_refresh_every())
    await ensure_record_check_schedule(client, record_check_every())
    if (doctor := doctor_every()) is not None:
        await ensure_doctor_schedule(client, doctor)
    needs_io = "activities" in chosen or "platform" in chosen
    pool = await connect() if needs_io or {"workflows", "notifications"} & set(chosen) else None
    platform = MeituanClient.from_env() if needs_io else None
    common: dict[str, Any] = {
        "interceptors": [LogContextInterceptor()],
        "graceful_shutdown_timeout": timedelta(seconds=configured.shutdown_seconds),
    }
    workers: list[Worker] = []
    if "workflows" in chosen or "activities" in chosen:
        assert pool is not None
        # Local activities: the workflow worker runs them (the policy, the order's record)
        activities: list[Any] = [load_policy, *local_steps(pool)]
        if "activities" in chosen:
            assert platform is not None
            activities = build_activities(
                pool, platform, platform_calls=platform_queue is None, temporal=client
            )
        workers.append(
            Worker(
                client,
                task_queue=TASK_QUEUE,
                workflows=WORKFLOWS if "workflows" in chosen else [],
                activities=activities,
                no_remote_activities="activities" not in chosen,
                **common,
                **(tuning() if "workflows" in chosen else {}),
            )
        )
    if "platform" in chosen:
        assert pool is not None and platform is not None and platform_queue is not None
        workers.append(
            Worker(
                client,
                task_queue=platform_queue,
                activities=platform_activities(pool, platform),
                max_task_queue_activities_per_second=rate,
                **common,
            )
        )
    try:
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            if "notifications" in chosen:
                assert pool is not None
                dispatching = asyncio.create_task(Dispatcher(pool).run(stop))
                running.push_async_callback(_finish, dispatching)
            log.info(
                "worker roles %s polling task queue(s) %s",
                ", ".join(chosen),
                ", ".join(sorted({w.task_queue for w in workers})),
            )
            await stop.wait()
            log.info("shutting down: finishing activities in flight")
    finally:
        if platform is not None:
            await platform.aclose()
        if pool is not None:
            await pool.close()


async def _finish(task: asyncio.Task[None]) -> None:
    """The dispatcher stops with the worker; a send in flight completes or rolls back."""
    try:
        await asyncio.wait_for(task, timeout=15)
    except TimeoutError:
        log.warning("dispatcher did not stop in time: its send in flight rolls back")


def main() -> None:
    try:
        fail_closed.require(settings(), fail_closed.Role.WORKER)
    except SettingsError as err:
        print(f"worker not started: {err}", file=sys.stderr)
        _leave(2)
    configure_logging()
    ast_lock.install()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    try:
        asyncio.run(_main())
    except (WorkerConfigError, PolicyError, SettingsError) as err:
        log.error("worker not started: %s", err)
        _leave(2)
    _leave(0)


def _leave(code: int) -> NoReturn:
    """Exit without CPython's finalization once the worker has shut down cleanly: the SDK
    core's threads can abort it (`PyGILState_Release`, temporalio/sdk-python#300), turning
    a graceful stop into a crash for a supervisor or a test that reads the exit code."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
