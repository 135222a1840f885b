"""A login role per process (`starter.db_logins`, migration 0021): made and brought in line by
`db_cli logins` / `migrate --login` with passwords from files, sent to the server as SCRAM
verifiers only; each login does its process's work and no more."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio

from activities.ended_orders import refund_case_after_close, stage_on_record
from activities.orders import OrderRecords
from infra import database as db
from meituan.codes import ErrorCode
from schemas.records import RecordOrder
from starter.api import tokens
from starter.db_logins import Login, LoginError, ensure_logins, scram
from starter.push_keeper import Bounds, Push, PushKeeper
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import demo_pool as demo_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order
from tests.db_fixtures import pg_dsn as pg_dsn

PREFIX = f"t_login_{uuid.uuid4().hex[:6]}"
ROOT = Path(__file__).parents[2]
PASSWORD = "correct-horse-battery-staple-1"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("secrets")
    for name in ("gateway", "codec", "reporting", "other"):
        (folder / name).write_text(f"{PASSWORD}-{name}\n", encoding="utf-8")
    (folder / "short").write_text("hunter2\n", encoding="utf-8")
    return folder


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def logins(demo_pool: asyncpg.Pool, secrets: Path) -> AsyncIterator[dict[str, Login]]:
    made = {
        "gateway": Login.parse(f"{PREFIX}_gateway:orderflow_service:{secrets / 'gateway'}"),
        "codec": Login.parse(f"{PREFIX}_codec:orderflow_signin:{secrets / 'codec'}"),
    }
    try:
        yield made
    finally:
        names = [f"{PREFIX}_{n}" for n in ("gateway", "codec", "reporting", "cli")]
        for name in names:
            await demo_pool.execute(f"DROP ROLE IF EXISTS {name}")


def _as_login(pg_dsn: str, database: str, login: Login) -> str:
    """The DSN of the module's database as `login`, with its password."""
    parts = urlsplit(db.with_database(pg_dsn, database))
    host = parts.netloc.rpartition("@")[2]
    password = quote(login.password(), safe="")
    return urlunsplit(parts._replace(netloc=f"{login.name}:{password}@{host}"))


def test_login_specs_name_a_known_group_and_a_password_file(secrets: Path) -> None:
    login = Login.parse("orderflow_gateway:orderflow_service")
    assert login.password_file == Path("/run/secrets/orderflow_gateway")
    for spec, message in (
        ("Gateway:orderflow_service", "lower-case identifier"),
        ("gw:postgres", "the group must be one of"),
        ("gw:pg_write_server_files", "the group must be one of"),
        ("orderflow_api:orderflow_api", "is a group role, not a login"),
    ):
        with pytest.raises(LoginError, match=message):
            Login.parse(spec)
    with pytest.raises(LoginError, match="at least 16 characters"):
        Login.parse(f"gw:orderflow_service:{secrets / 'short'}").password()
    with pytest.raises(LoginError, match="cannot be read"):
        Login.parse(f"gw:orderflow_service:{secrets / 'missing'}").password()


async def test_the_verifier_is_the_one_postgresql_makes(demo_pool: asyncpg.Pool) -> None:
    """The server hashes a plain password itself; ours, with its salt, must match it."""
    name = f"{PREFIX}_plain"
    async with demo_pool.acquire() as conn:
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        await conn.execute(f"CREATE ROLE {name} PASSWORD '{PASSWORD}'")
        try:
            stored = await conn.fetchval(
                "SELECT rolpassword FROM pg_authid WHERE rolname = $1", name
            )
        finally:
            await conn.execute(f"DROP ROLE {name}")
            await conn.execute("RESET password_encryption")
    iterations, _, rest = stored.removeprefix("SCRAM-SHA-256$").partition(":")
    salt = base64.b64decode(rest.partition("$")[0])
    assert scram(PASSWORD, salt, int(iterations)) == stored
    assert scram(PASSWORD) != scram(PASSWORD)  # a new salt each time


async def _membership(pool: asyncpg.Pool, login: str) -> list[str]:
    rows = await pool.fetch(
        """
        SELECT g.rolname FROM pg_auth_members m
        JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
        WHERE u.rolname = $1 ORDER BY 1
        """,
        login,
    )
    return [r["rolname"] for r in rows]


async def _verifier(pool: asyncpg.Pool, login: str) -> str:
    return str(await pool.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", login))


async def test_logins_are_created_then_brought_in_line(
    demo_pool: asyncpg.Pool, logins: dict[str, Login], secrets: Path
) -> None:
    gateway, codec = logins["gateway"], logins["codec"]
    async with demo_pool.acquire() as conn:
        assert await ensure_logins(conn, [gateway, codec]) == [
            f"{gateway.name}: created, in orderflow_service",
            f"{codec.name}: created, in orderflow_signin",
        ]
    role = await demo_pool.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", gateway.name)
    assert role["rolcanlogin"] and not (role["rolsuper"] or role["rolcreaterole"])
    assert await _membership(demo_pool, gateway.name) == ["orderflow_service"]
    first = await _verifier(demo_pool, gateway.name)
    assert first.startswith("SCRAM-SHA-256$") and PASSWORD not in first

    moved = Login(gateway.name, "orderflow_reporting", gateway.password_file)
    async with demo_pool.acquire() as conn:
        assert await ensure_logins(conn, [moved]) == [
            f"{gateway.name}: updated, in orderflow_reporting"
        ]
        assert await _membership(demo_pool, gateway.name) == ["orderflow_reporting"]
        assert await _verifier(demo_pool, gateway.name) != first  # set anew, a new salt
        await ensure_logins(conn, [gateway])  # and back, for the tests below
    assert await _membership(demo_pool, gateway.name) == ["orderflow_service"]


async def test_a_role_with_more_than_a_login_is_never_changed(
    demo_pool: asyncpg.Pool, logins: dict[str, Login], secrets: Path
) -> None:
    owner = await demo_pool.fetchval("SELECT current_user")
    before = await _verifier(demo_pool, logins["codec"].name)
    refused = Login(owner, "orderflow_service", secrets / "other")
    async with demo_pool.acquire() as conn:
        with pytest.raises(LoginError, match="more than a login"):
            await ensure_logins(conn, [logins["codec"], refused])
    assert await _verifier(demo_pool, logins["codec"].name) == before  # all or nothing


async def test_the_gateways_login_does_the_gateways_work(
    demo_pool: asyncpg.Pool, pg_dsn: str, logins: dict[str, Login]
) -> None:
    """The gateway is a member of orderflow_service: what it writes and reads for pushes."""
    database = await demo_pool.fetchval("SELECT current_database()")
    order = make_order()
    now = datetime.now(UTC)
    await OrderRecords(demo_pool).record_order(
        RecordOrder(order=order, received_at=now, source="push")
    )
    pool = await db.connect(_as_login(pg_dsn, database, logins["gateway"]), max_size=2)
    try:
        assert await pool.fetchval("SELECT current_user") == logins["gateway"].name
        assert await db.migrate(pool) == []  # at start: up to date, so no DDL is needed
        keeper = PushKeeper(
            pool, Bounds(10, 30, 5), secret="s", zone=ZoneInfo("Asia/Shanghai"), timeout_s=5
        )
        keeper._pruned_at = keeper._flushed_at = time.monotonic() - 120  # prune and flush now
        push = Push(
            route="/meituan/push/order",
            method="POST",
            query="",
            body=b"sig=forged",
            headers={},
            source="203.0.113.1",
            received_at=now,
            reason="bad signature",
            cause=ErrorCode.BAD_SIGNATURE,
            signed=False,
        )
        assert await keeper.keep(push) is True
        assert await pool.fetchval("SELECT count(*) FROM refused_push_counts") == 1
        assert await stage_on_record(pool, order.order_id) == "received"
        opened = await refund_case_after_close(
            pool, order.order_id, "r-1", partial=False, amount=Decimal("1.00"), reason="late"
        )
        assert opened is True
        for statement in ("SELECT details FROM order_events", "SELECT * FROM staff_tokens"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement)
    finally:
        await pool.close()


async def test_the_codec_servers_login_only_looks_up_sign_ins(
    demo_pool: asyncpg.Pool, pg_dsn: str, logins: dict[str, Login]
) -> None:
    database = await demo_pool.fetchval("SELECT current_database()")
    token = await tokens.issue(demo_pool, "A-901")
    pool = await db.connect(_as_login(pg_dsn, database, logins["codec"]), max_size=2)
    try:
        person = await tokens.person_for(pool, token)
        assert person.staff_id == "A-901"
        for statement in (
            "SELECT * FROM orders",
            "SELECT phone FROM staff",
            "SELECT * FROM orders_masked",
            "INSERT INTO staff_tokens (staff_id, token_hash, expires_at) "
            "VALUES ('A-901', 'x', now() + interval '1 day')",
            "UPDATE staff_tokens SET revoked_at = NULL",
            "UPDATE staff SET role = 'admin'",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await pool.execute(statement)
    finally:
        await pool.close()


async def test_the_command_makes_logins_and_never_prints_a_password(
    demo_pool: asyncpg.Pool, pg_dsn: str, secrets: Path
) -> None:
    database = await demo_pool.fetchval("SELECT current_database()")
    url = db.with_database(pg_dsn, database)
    env = {**os.environ, "ORDERFLOW_DEV": "1", "DATABASE_URL": url}
    name = f"{PREFIX}_cli"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "starter.db_cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    done = await asyncio.to_thread(
        run, "migrate", f"--login={name}:orderflow_reporting:{secrets / 'reporting'}"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "applied: nothing, up to date",
        f"login {name}: created, in orderflow_reporting",
    ]
    again = await asyncio.to_thread(
        run, "logins", f"{name}:orderflow_reporting:{secrets / 'reporting'}"
    )
    assert again.stdout.splitlines() == [f"login {name}: updated, in orderflow_reporting"]
    wrong = await asyncio.to_thread(
        run, "logins", f"{name}:orderflow_reporting:{secrets / 'short'}"
    )
    assert wrong.returncode == 1 and "at least 16 characters" in wrong.stderr
    unknown = await asyncio.to_thread(run, "logins", f"{name}:postgres")
    assert unknown.returncode == 2 and "the group must be one of" in unknown.stderr
    for result in (done, again, wrong, unknown):
        assert PASSWORD not in result.stdout + result.stderr


def _psql_environment(pg_dsn: str, password_file: Path) -> dict[str, str] | None:
    """How the postgres image runs its init scripts, against the session's server: psql on
    PATH (the embedded server's own, else the system's), the superuser, its database."""
    from pgserver._commands import POSTGRES_BIN_PATH

    path = f"{POSTGRES_BIN_PATH}{os.pathsep}{os.environ.get('PATH', '')}"
    if shutil.which("psql", path=path) is None:
        return None
    url = urlsplit(pg_dsn)
    query = dict(parse_qsl(url.query))
    env = {
        **os.environ,
        "PATH": path,
        "PGHOST": query.get("host") or url.hostname or "localhost",
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_DB": url.path.lstrip("/") or "postgres",
        "TEMPORAL_DB_PASSWORD_FILE": str(password_file),
    }
    if url.port:
        env["PGPORT"] = str(url.port)
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


async def test_temporal_gets_a_role_and_databases_of_its_own(pg_dsn: str, secrets: Path) -> None:
    """deploy/postgres/10-temporal.sh, on a fresh volume and again on one an earlier setup
    left to the superuser (the databases and a table in them)."""
    env = _psql_environment(pg_dsn, secrets / "other")
    if env is None:
        pytest.skip("no psql to run the init script with")
    server = await asyncpg.connect(pg_dsn)
    if await server.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'temporal'"):
        await server.close()
        pytest.skip("this server has a temporal role of its own")
    script = ROOT / "deploy" / "postgres" / "10-temporal.sh"

    def run() -> None:
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (secrets / "other").read_text().strip() not in done.stdout + done.stderr

    try:
        await server.execute("CREATE DATABASE temporal")  # as auto-setup made it before
        earlier = await asyncpg.connect(db.with_database(pg_dsn, "temporal"))
        await earlier.execute("CREATE TABLE executions (id bigserial PRIMARY KEY)")
        await earlier.close()
        await asyncio.to_thread(run)
        await asyncio.to_thread(run)  # safe to run again
        owners = await server.fetch(
            "SELECT datname, pg_get_userbyid(datdba) AS owner FROM pg_database"
            " WHERE datname LIKE 'temporal%' ORDER BY 1"
        )
        assert [(r["datname"], r["owner"]) for r in owners] == [
            ("temporal", "temporal"),
            ("temporal_visibility", "temporal"),
        ]
        moved = await asyncpg.connect(db.with_database(pg_dsn, "temporal"))
        table = await moved.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'executions'"
        )
        await moved.close()
        assert table == "temporal"
        role = await server.fetchrow(
            "SELECT rolcanlogin, rolsuper, rolpassword FROM pg_authid WHERE rolname = 'temporal'"
        )
        assert role["rolcanlogin"] and not role["rolsuper"]
        iterations, _, rest = role["rolpassword"].removeprefix("SCRAM-SHA-256$").partition(":")
        salt = base64.b64decode(rest.partition("$")[0])
        password = (secrets / "other").read_text().removesuffix("\n")  # the file, its newline off
        assert scram(password, salt, int(iterations)) == role["rolpassword"]
    finally:
        for database in ("temporal", "temporal_visibility"):
            await server.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await server.execute("DROP ROLE IF EXISTS temporal")
        await server.close()


async def test_the_password_file_goes_with_database_url_only(
    monkeypatch: pytest.MonkeyPatch, secrets: Path
) -> None:
    """ORDERFLOW_DATABASE_PASSWORD(_FILE) is DATABASE_URL's user's, compose's way to keep it
    out of the URL; another URL given in code (ORDERFLOW_STATS_DATABASE_URL) has its own."""
    given: list[str | None] = []

    async def create_pool(dsn: str, *, password: str | None = None, **_: object) -> object:
        given.append(password)
        return object()

    monkeypatch.setattr(db.asyncpg, "create_pool", create_pool)
    monkeypatch.setenv("DATABASE_URL", "postgresql://orderflow_worker@postgresql/orderflow")
    monkeypatch.setenv("ORDERFLOW_DATABASE_PASSWORD_FILE", str(secrets / "gateway"))
    db.settings.cache_clear()
    try:
        await db.connect()
        await db.connect("postgresql://orderflow_worker@postgresql/orderflow")  # the same URL
        await db.connect("postgresql://orderflow_analyst:own@postgresql/orderflow")
    finally:
        monkeypatch.undo()
        db.settings.cache_clear()
    assert given == [f"{PASSWORD}-gateway", f"{PASSWORD}-gateway", None]
