"""The systems the capacity benchmark measures, each from its own code, on one dev server.

An order system is the gateway, the staff API and a worker, each `python -m ...` of this
virtualenv with `PYTHONPATH` at a checkout (this one, or an earlier commit's tree), and a fresh
database on the run's PostgreSQL server, migrated and loaded by that checkout's own
`starter.db_cli`, in a namespace of its own on the run's dev server (both systems poll a task
queue of the same name). So two systems differ in their code alone: the dev server and
PostgreSQL are shared, and the simulator and the simulated staff (the outside world, in the
benchmark's process) are this checkout's for both.

The minimal order's system is its worker process (`bench.minimal_worker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bench import common
from bench.minimal import MINIMAL_QUEUE
from infra import database as db
from localstack.devstack import (
    TemporalServer,
    connect_temporal,
    die_with_parent,
    ensure_search_attributes,
    push_base_for,
    wait_for_http,
)
from localstack.ports import free_port
from schemas.contract import TASK_QUEUE

READY_S = 90.0
"""Three Python processes importing the project at once on two cores take their time."""


@dataclass(frozen=True)
class Code:
    """Where a system's code comes from."""

    label: str
    root: Path
    commit: str


def git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(db.REPO_ROOT), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def this_checkout() -> Code:
    """The working tree as it is, uncommitted changes included."""
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return Code(
        "current", db.REPO_ROOT, git("rev-parse", "--short", "HEAD") + ("+" if dirty else "")
    )


@contextlib.contextmanager
def earlier_commit(commit: str, folder: Path) -> Iterator[Code]:
    """The tree of `commit`, written out under `folder` and removed afterwards.

    From `git archive` rather than `git worktree add`: the repository's list of worktrees is
    shared with every checkout of it, and a run killed half-way would leave an entry behind."""
    sha = git("rev-parse", "--verify", f"{commit}^{{commit}}")
    root = folder / f"before-{sha[:10]}"
    archive = folder / f"before-{sha[:10]}.tar"
    git("archive", "--format=tar", "-o", str(archive), sha)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
        archive.unlink()
        yield Code("before", root, git("rev-parse", "--short", sha))
    finally:
        archive.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


async def namespace(temporal: TemporalServer, client: Client, name: str) -> Client:
    """A namespace of its own on the dev server, with the contract's search attributes: two
    order systems share one task queue name, so each polls in a namespace of its own."""
    retention = Duration()
    retention.FromSeconds(24 * 3600)
    with contextlib.suppress(RPCError):
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention)
        )
    deadline = time.monotonic() + READY_S
    while True:
        # The server knows a namespace registered a moment ago only once its cache refreshes.
        try:
            own = await connect_temporal(temporal.address, name)
            await ensure_search_attributes(own)
            await own.count_workflows()
            return own
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(1.0)


def environment(
    code: Code, temporal: TemporalServer, extra: Mapping[str, str], namespace: str | None = None
) -> dict[str, str]:
    """What an operator gives the services (README): everything from the environment, and the
    code from `code`'s checkout ahead of the editable install of this one."""
    return {
        **os.environ,
        **common.LOCAL_STACK,  # the simulator's secret, payloads in plaintext
        "PYTHONPATH": str(code.root),
        "TEMPORAL_ADDRESS": temporal.address,
        "TEMPORAL_NAMESPACE": namespace or temporal.namespace,
        "ORDERFLOW_LOG_LEVEL": "WARNING",
        "ORDERFLOW_SHUTDOWN_SECONDS": "5",
        **extra,
    }


async def start(
    args: Sequence[str], env: Mapping[str, str], log: Path
) -> asyncio.subprocess.Process:
    """`python -m ...` of this virtualenv in `PYTHONPATH`'s checkout (the working directory
    comes first on the path of `-m` and `-c`), its output in `log`, ended with this process."""
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            env=dict(env),
            cwd=env["PYTHONPATH"],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent(),
        )


async def check_code_root(code: Code, env: Mapping[str, str], log: Path) -> None:
    """The services import from `code.root`, not from the editable install of this checkout."""
    probe = await start(["-c", "import workflows, starter; print(workflows.__file__)"], env, log)
    if await probe.wait() != 0:
        raise RuntimeError(f"python cannot import the {code.label} code:\n{common.tail(log)}")
    seen = Path(common.tail(log, 500).strip().splitlines()[-1])
    if not seen.is_relative_to(code.root):
        raise RuntimeError(f"the {code.label} code imports from {seen}, not {code.root}")


async def fresh_database(
    code: Code, server_dsn: str, name: str, env: dict[str, str], log: Path
) -> str:
    """Database `name`, empty, then migrated and loaded with the demo company by `code`."""
    await db.drop_database(server_dsn, name)
    await db.ensure_database(server_dsn, name)
    dsn = db.with_database(server_dsn, name)
    loading = await start(["-m", "starter.db_cli", "load-demo"], {**env, "DATABASE_URL": dsn}, log)
    if await loading.wait() != 0:
        raise RuntimeError(f"{code.label}: load-demo failed:\n{common.tail(log)}")
    return dsn


async def wait_for_worker(
    client: Client, task_queue: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    """Ready once Temporal sees this very process poll: pollers of a worker that stopped are
    listed for a while after, so any poller would not do."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.returncode is not None:
            break
        described = await client.workflow_service.describe_task_queue(request)
        if any(p.identity.startswith(f"{process.pid}@") for p in described.pollers):
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"the worker does not poll {task_queue}:\n{common.tail(log)}")


async def wait_for_service(
    url: str, what: str, process: asyncio.subprocess.Process, log: Path
) -> None:
    if not await wait_for_http(f"{url}/healthz", within_s=READY_S):
        raise RuntimeError(f"the {what} at {url} is not healthy:\n{common.tail(log)}")


@dataclass(frozen=True)
class OrderSystem:
    code: Code
    push_base: str
    api_url: str
    pool: asyncpg.Pool


async def stop_all(processes: Sequence[asyncio.subprocess.Process]) -> None:
    await asyncio.gather(*(common.stop_process(p) for p in processes))


@contextlib.asynccontextmanager
async def order_system(
    code: Code,
    temporal: TemporalServer,
    client: Client,
    server_dsn: str,
    platform_url: str,
    extra: Mapping[str, str],
    folder: Path,
) -> AsyncIterator[OrderSystem]:
    """Gateway, staff API and worker of `code` on a fresh database of their own, in `client`'s
    namespace."""
    logs = folder / f"logs-{code.label}"
    logs.mkdir(parents=True, exist_ok=True)
    platform = {**extra, "MEITUAN_BASE_URL": platform_url}
    env = environment(code, temporal, platform, client.namespace)
    await check_code_root(code, env, logs / "probe.log")
    name = f"capacity_{code.label}"
    env["DATABASE_URL"] = await fresh_database(code, server_dsn, name, env, logs / "db.log")
    gateway_port, api_port = free_port(), free_port()
    push_base = push_base_for(gateway_port)
    gateway_env = {**env, "ORDERFLOW_PUSH_BASE_URL": push_base}
    gateway_args = ["-m", "starter.gateway", "--port", str(gateway_port), "--log-level", "warning"]
    api_args = ["-m", "starter.api", "--port", str(api_port), "--log-level", "warning"]
    processes = [
        await start(gateway_args, gateway_env, logs / "gateway.log"),
        await start(api_args, env, logs / "api.log"),
        await start(["-m", "workers.main"], env, logs / "worker.log"),
    ]
    pool = await db.connect(env["DATABASE_URL"], max_size=4)
    try:
        gateway_url, api_url = (f"http://127.0.0.1:{p}" for p in (gateway_port, api_port))
        await asyncio.gather(
            wait_for_service(gateway_url, "gateway", processes[0], logs / "gateway.log"),
            wait_for_service(api_url, "staff API", processes[1], logs / "api.log"),
            wait_for_worker(client, TASK_QUEUE, processes[2], logs / "worker.log"),
        )
        yield OrderSystem(code, push_base, api_url, pool)
    finally:
        await stop_all(processes)
        await pool.close()
        await delete_schedules(client)


@contextlib.asynccontextmanager
async def minimal_system(
    temporal: TemporalServer, client: Client, extra: Mapping[str, str], folder: Path
) -> AsyncIterator[None]:
    """The minimal order's worker, from this checkout."""
    log = folder / "logs-minimal" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = environment(this_checkout(), temporal, extra)
    process = await start(["-m", "bench.minimal_worker"], env, log)
    try:
        await wait_for_worker(client, MINIMAL_QUEUE, process, log)
        yield
    finally:
        await common.stop_process(process)


async def delete_schedules(client: Client) -> None:
    """The workers' schedules (patrol, reports, statistics) go with the system that made them,
    so the next system on the dev server runs beside nothing of the last one's."""
    async for listed in await client.list_schedules():
        with contextlib.suppress(Exception):
            await client.get_schedule_handle(listed.id).delete()


async def terminate_running(client: Client, workflow_type: str) -> int:
    """Workflows of `workflow_type` still running; terminated so the next step starts clean."""
    query = f'WorkflowType="{workflow_type}" AND ExecutionStatus="Running"'
    ended = 0
    async for listed in client.list_workflows(query):
        with contextlib.suppress(Exception):
            await client.get_workflow_handle(listed.id, run_id=listed.run_id).terminate(
                "capacity step over"
            )
            ended += 1
    return ended


async def running(client: Client, workflow_type: str) -> int:
    query = f'WorkflowType="{workflow_type}" AND ExecutionStatus="Running"'
    return (await client.count_workflows(query)).count
