"""The system of record's connection: `DATABASE_URL`, or an embedded PostgreSQL 16 from pgserver
(the `local` extra: not in the production image).

The embedded server lives under `$ORDERFLOW_DATA_DIR/pg` (default `<repo>/.data/pg`) and is
stopped when the last process that opened it exits. Running as root, pgserver starts the server
as its own OS user `pgserver` (created with useradd), hands that user the data folder and opens
read/traverse permission on the folder's parents so that user can reach it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from infra import fail_closed
from infra.settings import settings

# A connection as activities receive it: straight from `connect`, or borrowed from the pool.
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

REPO_ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = REPO_ROOT / "migrations"
DEFAULT_DATABASE = "orderflow"
# The database gone: unreachable, restarting or shutting down, the connection or the pool
# closed. Worth trying again shortly, unlike a query the database refused (an argument the
# query cannot take included: asyncpg raises the server's DataError for it, a PostgresError).
UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,  # 57P01: the server shutting down
    asyncpg.exceptions.CrashShutdownError,  # 57P02
    asyncpg.exceptions.CannotConnectNowError,  # 57P03: starting up
)


_MIGRATION_LOCK = 0x6F72_6466_6C6F_77  # pg_advisory_lock key: one migrator at a time
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(RuntimeError):
    """The migrations on disk disagree with what the database already applied."""


def data_dir() -> Path:
    """Project-local state: `ORDERFLOW_DATA_DIR`, or `<repo>/.data`."""
    configured = settings().database.data_dir
    return configured.expanduser().resolve() if configured else REPO_ROOT / ".data"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb and json round-trip as Python objects, not strings."""
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name, encoder=json_dumps, decoder=json.loads, schema="pg_catalog"
        )


# --- embedded server ----------------------------------------------------------------------------


def start_embedded(pgdata: Path | None = None, *, keep_running: bool = False) -> str:
    """Start (or attach to) the embedded server; returns its DSN for the `postgres` database.

    Blocking: call it from a thread in async code. `keep_running` leaves the server up after
    this process exits, for `psql` or other processes started by hand.
    """
    folder = pgdata or data_dir() / "pg"
    folder.parent.mkdir(parents=True, exist_ok=True)
    server = _pgserver().get_server(folder, cleanup_mode=None if keep_running else "stop")
    return str(server.get_uri())


def stop_embedded(pgdata: Path | None = None) -> None:
    """Stop the embedded server of `pgdata` unless another live process holds it.

    pgserver counts the holders in a list of process ids in the data folder, and a process
    that left without taking itself off (killed, or leaving by `os._exit` as `orderctl` does)
    would keep the server up for ever: the ids of processes gone are dropped first."""
    folder = (pgdata or data_dir() / "pg").expanduser().resolve()
    server = _pgserver().PostgresServer._instances.get(folder)
    if server is not None:
        _drop_gone_holders(server)
        server.cleanup()


def _drop_gone_holders(server: Any) -> None:
    with server._lock:  # pgserver's own lock over the list, between processes
        holders = server.global_process_id_list
        held = holders.get()
        alive = [pid for pid in held if _process_alive(pid)]
        if alive != held:
            holders.put(alive)


def _process_alive(pid: int) -> bool:
    """Running (a zombie has ended); this process is."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def restart_embedded(pgdata: Path | None = None, *, mode: str = "fast") -> None:
    """Restart the embedded server of `pgdata` in place (same socket, same data): every
    connection is cut, as when the database fails over. `mode`: pg_ctl's shutdown mode.

    Blocking: call it from a thread in async code."""
    folder = (pgdata or data_dir() / "pg").expanduser().resolve()
    server = _pgserver().PostgresServer._instances.get(folder)
    if server is None:
        raise RuntimeError(f"no embedded PostgreSQL of {folder} started by this process")
    module = _pgserver()
    module.pg_ctl(
        ["-w", "-m", mode, "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60
    )
    # The handle's postmaster is the new one, so stopping the server at the end still works.
    server._postmaster_info = module.PostmasterInfo.read_from_pgdata(server.pgdata)


class EmbeddedServerMissingError(RuntimeError):
    """The embedded server was asked for where it is not installed (the production image)."""


def _pgserver() -> ModuleType:
    """Imported on first use: processes on `DATABASE_URL` never load it. pgserver is in the
    project's `local` extra, which the production image leaves out."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver only keeps a lock file there.
        warnings.simplefilter("ignore")
        try:
            from pgserver import postgres_server
        except ImportError as e:
            raise EmbeddedServerMissingError(
                "DATABASE_URL is not set and the embedded PostgreSQL is not installed: set "
                "DATABASE_URL, or install the local extra (make install; pip install '.[local]')"
            ) from e
    return postgres_server


def with_database(dsn: str, database: str) -> str:
    """The same server, another database (works for socket DSNs with `?host=/dir` too)."""
    parts = urlsplit(dsn)
    if "dbname" in dict(parse_qsl(parts.query)):
        query = urlencode(
            [(k, database if k == "dbname" else v) for k, v in parse_qsl(parts.query)]
        )
        return urlunsplit(parts._replace(query=query))
    return urlunsplit(parts._replace(path="/" + database))


async def ensure_database(dsn: str, database: str) -> bool:
    """Create `database` on the server of `dsn` if missing; True when it was created."""
    if not _IDENTIFIER.match(database):
        raise ValueError(f"database name {database!r} must be a lower-case identifier")
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{database}"')
        except asyncpg.DuplicateDatabaseError:
            return False  # another process created it in the meantime
        return True
    finally:
        await conn.close()


async def drop_database(dsn: str, database: str) -> None:
    if not _IDENTIFIER.match(database):
        raise ValueError(f"database name {database!r} must be a lower-case identifier")
    conn = await asyncpg.connect(with_database(dsn, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def resolve_dsn(database_url: str | None = None, *, keep_running: bool = False) -> str:
    """The DSN to use: the argument, else `DATABASE_URL`, else the embedded server's database."""
    url = database_url or settings().database.url
    if url:
        return url
    server_dsn = await asyncio.to_thread(start_embedded, keep_running=keep_running)
    await ensure_database(server_dsn, DEFAULT_DATABASE)
    return with_database(server_dsn, DEFAULT_DATABASE)


async def connect(
    database_url: str | None = None, *, min_size: int = 1, max_size: int | None = None
) -> asyncpg.Pool:
    """A pool on the system of record; jsonb columns read and write Python objects. On
    DATABASE_URL, with ORDERFLOW_DATABASE_PASSWORD when set (a URL given here has its own)."""
    configured = settings().database
    dsn = await resolve_dsn(database_url)
    size = max_size or configured.pool_max
    own_url = database_url is None or database_url == configured.url
    password = configured.password if own_url and configured.url else None
    pool = await asyncpg.create_pool(
        dsn,
        password=password,
        min_size=min(min_size, size),
        max_size=size,
        init=_init_connection,
        server_settings={"application_name": "orderflow"},
    )
    assert pool is not None
    return pool


# --- migrations ---------------------------------------------------------------------------------


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[str, str, str]]:
    """(version, checksum, sql) in order; two files with one number are an error."""
    found: list[tuple[str, str, str]] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migrations are named NNNN_lower_case.sql")
        if match.group(1) in numbers:
            raise MigrationError(f"{path.name} and {numbers[match.group(1)]} share a number")
        numbers[match.group(1)] = path.name
        raw = path.read_bytes()
        found.append((path.stem, hashlib.sha256(raw).hexdigest(), raw.decode("utf-8")))
    return found


def migration_settings() -> dict[str, str]:
    """What a data migration computes with but the database does not hold: the customer-id
    key (and the salt of the ids before it) and the credit rules, from `settings()` as the
    services read them. Each migration reads them as `current_setting('orderflow.<name>',
    true)`; they are set for its transaction only, never written to the database."""
    configured = settings()
    credit = configured.credit
    values: dict[str, object] = {
        "customer_salt": configured.business.customer_salt,
        "customer_key": configured.business.customer_key,
        "credit_initial": credit.initial,
        "credit_max": credit.maximum,
        "credit_restricted_below": credit.restricted_below,
        "credit_banned_below": credit.banned_below,
        **{f"credit_delta_{kind.value}": delta for kind, delta in credit.deltas.items()},
    }
    return {f"orderflow.{name}": str(value) for name, value in values.items()}


async def migrate(
    pool: asyncpg.Pool,
    directory: Path = MIGRATIONS_DIR,
    *,
    settings: Mapping[str, str] | None = None,
) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction, with `settings`
    (default `migration_settings()`) set for that transaction only.

    Returns the versions this call applied (empty when the database was up to date). A file
    changed after it was applied raises `MigrationError`: history is fixed by a new migration.
    """
    files = migration_files(directory)
    given = migration_settings() if settings is None else dict(settings)
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            applied = await _applied(conn)
            if settings is None:
                _may_apply([version for version, _, _ in files if version not in applied])
            done: list[str] = []
            for version, checksum, sql in files:
                if version in applied:
                    if applied[version] != checksum:
                        raise MigrationError(
                            f"migration {version} changed after it was applied "
                            f"(database {applied[version][:12]}, file {checksum[:12]})"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(
                        "SELECT set_config(name, value, true) "
                        "FROM unnest($1::text[], $2::text[]) AS s(name, value)",
                        list(given),
                        list(given.values()),
                    )
                    await conn.execute(sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        version,
                        checksum,
                    )
                done.append(version)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


def _may_apply(pending: list[str]) -> None:
    """Outside the local stack, no migration runs on the development customer key, whoever
    runs it (the gateway, the staff API and `orderctl admin` migrate at start too): migration
    0020 would key every customer with a public key, and the workers with the real one after."""
    if not pending:
        return
    lacking = fail_closed.missing(settings(), fail_closed.Role.MIGRATIONS)
    if lacking:
        raise MigrationError(
            f"migrations {', '.join(pending)} are pending and are not applied on development "
            f"defaults outside the local stack: set {'; '.join(lacking)} (python -m "
            "starter.db_cli migrate), or ORDERFLOW_DEV=1 for the local stack"
        )


async def _applied(conn: Conn) -> dict[str, str]:
    """Version -> checksum of the migrations the database has applied."""
    # Only DDL when there is something to do: the services' role may not create tables, and an
    # up-to-date database then migrates without needing that right.
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        await conn.execute(
            """
            CREATE TABLE schema_migrations (
                version    text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}
