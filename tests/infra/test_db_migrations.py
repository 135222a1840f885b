"""Migrations, the connection path and the command line against a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from infra import database as db
from infra.settings import settings
from starter.db_cli import load_demo
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

EXPECTED_TABLES = {
    "stores",
    "catalogue",
    "prices",
    "store_scopes",
    "departments",
    "staff",
    "staff_skills",
    "customers",
    "orders",
    "order_items",
    "order_events",
    "credit_events",
    "anomalies",
    "feedback",
    "order_summaries",
    "assignments",
    "stock",
    "stock_ledger",
    "service_slots",
    "service_bookings",
    "notifications",
    "rejected_pushes",
    "schema_migrations",
}


async def _fresh(pg_dsn: str) -> tuple[str, asyncpg.Pool]:
    name = f"t_mig_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    return name, await db.connect(db.with_database(pg_dsn, name), max_size=2)


async def test_migrations_apply_to_an_empty_database_then_are_a_no_op(pg_dsn: str) -> None:
    name, pool = await _fresh(pg_dsn)
    try:
        first = await db.migrate(pool)
        assert first == [v for v, _, _ in db.migration_files()]
        tables = {
            r["tablename"]
            for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert tables >= EXPECTED_TABLES
        assert await db.migrate(pool) == []
        rows = await pool.fetch("SELECT version, checksum, applied_at FROM schema_migrations")
        assert [r["version"] for r in sorted(rows, key=lambda r: r["version"])] == first
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


def _copy_migrations(target: Path) -> None:
    for f in db.MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(f, target / f.name)


def _edit_first(folder: Path) -> None:
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")


async def test_a_changed_applied_migration_is_an_error(pg_dsn: str, tmp_path: Path) -> None:
    _copy_migrations(tmp_path)
    name, pool = await _fresh(pg_dsn)
    try:
        await db.migrate(pool, tmp_path)
        _edit_first(tmp_path)
        with pytest.raises(db.MigrationError, match="changed after it was applied"):
            await db.migrate(pool, tmp_path)
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


async def test_a_new_migration_is_applied_alone(pg_dsn: str, tmp_path: Path) -> None:
    _copy_migrations(tmp_path)
    name, pool = await _fresh(pg_dsn)
    try:
        await db.migrate(pool, tmp_path)
        _write(tmp_path / "9000_extra.sql", "CREATE TABLE extra (id int);")
        assert await db.migrate(pool, tmp_path) == ["9000_extra"]
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


async def test_each_migration_reads_the_settings_of_its_own_transaction(
    pg_dsn: str, tmp_path: Path
) -> None:
    """Data migrations compute with configuration the database does not hold (the customer-id
    salt, the credit rules); the runner hands it over for the migration's transaction only."""
    _copy_migrations(tmp_path)
    _write(
        tmp_path / "9000_reads.sql",
        "CREATE TABLE seen AS SELECT current_setting('orderflow.customer_salt', true) AS salt,"
        " current_setting('orderflow.credit_banned_below', true) AS banned_below;",
    )
    name, pool = await _fresh(pg_dsn)
    try:
        await db.migrate(pool, tmp_path, settings={"orderflow.customer_salt": "pepper"})
        assert await pool.fetchval("SELECT salt FROM seen") == "pepper"
        async with pool.acquire() as one, pool.acquire() as two:  # the migrator's among them
            for conn in (one, two):
                leftover = await conn.fetchval(
                    "SELECT current_setting('orderflow.customer_salt', true)"
                )
                assert not leftover
        await pool.execute(
            "DROP TABLE seen; DELETE FROM schema_migrations WHERE version = '9000_reads'"
        )
        await db.migrate(pool, tmp_path)  # by default, the services' own configuration
        row = await pool.fetchrow("SELECT * FROM seen")
        banned_below = str(settings().credit.banned_below)
        assert (row["salt"], row["banned_below"]) == (
            settings().business.customer_salt,
            banned_below,
        )
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def test_badly_named_or_duplicate_numbered_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match="share a number"):
        db.migration_files(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "Two.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match="NNNN_"):
        db.migration_files(tmp_path)


async def test_jsonb_round_trips_as_python_objects(db_pool: asyncpg.Pool) -> None:
    value = {"a": [1, 2, {"b": "中文"}], "n": None}
    assert await db_pool.fetchval("SELECT $1::jsonb", value) == value


async def test_the_event_log_is_append_only(db_pool: asyncpg.Pool) -> None:
    await db_pool.execute(
        "INSERT INTO order_events (order_id, seq, at, event, stage) "
        "VALUES ('x', 1, now(), 'e', 'received')"
    )
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute("UPDATE order_events SET event = 'changed' WHERE order_id = 'x'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await db_pool.execute("DELETE FROM order_events WHERE order_id = 'x'")


def _resolved(path: Path) -> Path:
    return path.resolve()


def _owner(path: Path) -> str:
    return path.owner()


async def test_connect_without_database_url_uses_the_embedded_server(
    pg_dsn: str, embedded_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.environ.get("DATABASE_URL"):
        pytest.skip("DATABASE_URL is set: the embedded server is not used")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("ORDERFLOW_DATA_DIR", str(embedded_root))
    settings.cache_clear()
    assert db.data_dir() == _resolved(embedded_root)
    pool = await db.connect()
    try:
        assert await pool.fetchval("SELECT current_database()") == db.DEFAULT_DATABASE
        assert (await pool.fetchval("SHOW server_version")).startswith("16")
        # The server runs as its own user and owns the data folder (pgserver as root).
        if os.geteuid() == 0:
            assert _owner(embedded_root / "pg") == "pgserver"
    finally:
        await pool.close()


async def test_demo_load_is_idempotent(db_pool: asyncpg.Pool) -> None:
    tables = [
        "stores",
        "catalogue",
        "prices",
        "store_scopes",
        "departments",
        "staff",
        "staff_skills",
        "stock",
        "service_slots",
    ]

    async def counts() -> dict[str, int]:
        return {t: await db_pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables}

    first = await load_demo(db_pool)
    after_first = await counts()
    second = await load_demo(db_pool)
    assert await counts() == after_first
    assert first["new_slots"] == after_first["service_slots"] > 0
    assert second["new_slots"] == 0
    assert after_first["stores"] == 3 and after_first["staff"] == 13
    # The alcohol is in the kitchens' scope; the review flags it as prohibited instead.
    scopes = {
        r["scope"]
        for r in await db_pool.fetch("SELECT scope FROM store_scopes WHERE store_code='SH-XH-001'")
    }
    assert {"hot_dishes", "alcohol"} <= scopes and "cleaning" not in scopes


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "starter.db_cli", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_command_line(pg_dsn: str) -> None:
    name = f"t_cli_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    env = {"DATABASE_URL": db.with_database(pg_dsn, name)}
    try:
        migrated = _cli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert "0001_business" in migrated.stdout
        again = _cli("migrate", env=env)
        assert again.returncode == 0 and "up to date" in again.stdout
        loaded = _cli("load-demo", env=env)
        assert loaded.returncode == 0, loaded.stderr
        assert "staff 13" in loaded.stdout
        dsn = _cli("dsn", env=env)
        assert dsn.stdout.strip() == env["DATABASE_URL"]
        missing = _cli("load-demo", "--file", "/nonexistent.json", env=env)
        assert missing.returncode == 1 and "does not exist" in missing.stderr
    finally:
        await db.drop_database(pg_dsn, name)
    unreachable = _cli("migrate", env={"DATABASE_URL": "postgresql://x@127.0.0.1:9/none"})
    assert unreachable.returncode == 1 and unreachable.stderr.startswith("error:")
