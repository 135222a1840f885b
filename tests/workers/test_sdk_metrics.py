"""The metrics the compose dashboard reads are the ones a worker serves: a worker with
ORDERFLOW_METRICS_ADDRESS's Prometheus endpoint runs a workflow whose activity fails once, and
its scrape names every SDK metric of `tests/system/test_compose.py` with the labels the
dashboard groups by, and a metric of our own made through the SDK's meter unprefixed (the
doctor's `orderflow_workflows_not_replaying`)."""

from __future__ import annotations

import asyncio
import re
import socket
import uuid
from datetime import timedelta

import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.system.test_compose import SDK_METRICS

OUR_GAUGE = "orderflow_test_gauge"


@activity.defn
async def flaky() -> str:
    activity.metric_meter().create_gauge(OUR_GAUGE, "ours, through the SDK").set(1)
    if activity.info().attempt == 1:
        raise RuntimeError("the first attempt fails")
    return "done"


@workflow.defn(sandboxed=False)
class Flaky:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            flaky,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )


@workflow.defn(sandboxed=False)
class Broken:
    """Its workflow task fails (not the workflow): retried until terminated."""

    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug in the workflow code")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _labels_of(text: str) -> dict[str, set[str]]:
    """Each metric (a histogram by its name) and the label names its samples carry."""
    found: dict[str, set[str]] = {}
    for name, labels in re.findall(r"^([a-z_]+?)(?:_bucket|_sum|_count)?\{([^}]*)\}", text, re.M):
        found.setdefault(name, set()).update(re.findall(r'(\w+)="', labels))
    for name in re.findall(r"^([a-z_]+) [0-9.e+-]+$", text, re.M):
        found.setdefault(name, set())
    return found


async def test_a_worker_serves_the_metrics_the_dashboard_reads(
    own_env: WorkflowEnvironment,
) -> None:
    """On a server of its own: a failing workflow task holds the test server's time."""
    env = own_env
    address = f"127.0.0.1:{_free_port()}"
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    client = await Client.connect(
        env.client.service_client.config.target_host,
        namespace=env.client.namespace,
        runtime=runtime,
    )
    queue = f"metrics-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[Flaky, Broken], activities=[flaky]):
        result = await client.execute_workflow(Flaky.run, id=f"metrics-{queue}", task_queue=queue)
        assert result == "done"
        broken = await client.start_workflow(Broken.run, id=f"broken-{queue}", task_queue=queue)
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(100):  # gauges come as the worker polls, the failure as it fails
                    served = _labels_of((await http.get(f"http://{address}/metrics")).text)
                    if set(SDK_METRICS) <= set(served):
                        break
                    await asyncio.sleep(0.1)
        finally:
            await broken.terminate("done with it")
    for name, labels in SDK_METRICS.items():
        assert name in served, f"{name} not served: {sorted(served)}"
        assert labels <= served[name], f"{name}: {labels - served[name]} missing"
    assert OUR_GAUGE in served  # no `temporal_` prefix on ours
