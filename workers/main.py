"""The order worker: `python -m workers.main` (or `orderflow-worker`).

Runs until SIGTERM or SIGINT, then stops polling and lets activities in flight finish
(ORDERFLOW_SHUTDOWN_SECONDS, default 30) before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.db import connect
from activities.policy import current_policy
from meituan.client import MeituanClient
from starter.schedules import ensure_patrol_schedule
from workers.interceptors import LogContextInterceptor
from workers.logging import configure_logging
from workers.registry import WORKFLOWS, build_activities
from workers.temporal_client import TASK_QUEUE, connect_client

log = logging.getLogger("orderflow.worker")


SANDBOX_PASSTHROUGH = "workflows"
"""The project's own workflow package, imported once per process instead of once per run."""


def tuning(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Worker settings from the environment, chosen by what bench/memory_bench.py measured
    (docs/benchmarks.md).

    ORDERFLOW_SANDBOX_PASSTHROUGH (default `workflows`; empty: none): modules the workflow
    sandbox takes from the worker as they are instead of importing them afresh for every
    workflow run, which roughly halves the memory an open order holds and speeds each run's
    start. The determinism checks still apply to everything else in the sandbox, and the
    test suite runs the workflows in the full sandbox. ORDERFLOW_MAX_CACHED_WORKFLOWS bounds
    the open orders kept in memory between their steps (SDK default 1000); an order evicted
    is replayed from its history at its next step.
    """
    env = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    cached = env.get("ORDERFLOW_MAX_CACHED_WORKFLOWS", "").strip()
    if cached:
        options["max_cached_workflows"] = int(cached)
    names = env.get("ORDERFLOW_SANDBOX_PASSTHROUGH", SANDBOX_PASSTHROUGH)
    passthrough = [m.strip() for m in names.split(",") if m.strip()]
    if passthrough:
        options["workflow_runner"] = SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough)
        )
    return options


def _runtime() -> Runtime | None:
    """Prometheus metrics from the Temporal runtime when ORDERFLOW_METRICS_ADDRESS is set."""
    address = os.environ.get("ORDERFLOW_METRICS_ADDRESS")
    if not address:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def run(stop: asyncio.Event) -> None:
    client = await connect_client(runtime=_runtime())
    await ensure_patrol_schedule(client, timedelta(minutes=current_policy().patrol_minutes))
    pool = await connect()
    platform = MeituanClient.from_env()
    try:
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=WORKFLOWS,
            activities=build_activities(pool, platform),
            interceptors=[LogContextInterceptor()],
            graceful_shutdown_timeout=timedelta(
                seconds=float(os.environ.get("ORDERFLOW_SHUTDOWN_SECONDS", "30"))
            ),
            **tuning(),
        )
        async with worker:
            log.info("worker polling task queue %s", TASK_QUEUE)
            await stop.wait()
            log.info("shutting down: finishing activities in flight")
    finally:
        await platform.aclose()
        await pool.close()


def main() -> None:
    configure_logging()

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(_main())


if __name__ == "__main__":
    main()
