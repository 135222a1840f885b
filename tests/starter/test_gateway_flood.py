"""A flood of bad-signature pushes against the gateway (R6.3.2, bounded): 5,000 of them from
200 addresses leave `rejected_pushes` within its cap and without their bodies, every one is
counted, the gateway keeps answering, and a good push in the middle of it is accepted."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from starlette.applications import Starlette
from temporalio.testing import WorkflowEnvironment

from infra import database as db
from localstack.simulator import RunningSimulator, SimConfig, serve_simulator
from meituan.models import OrderPush
from meituan.pushes import PushKind, encode_order_push
from starter.gateway import GatewaySettings, create_app
from starter.push_keeper import Bounds
from tests.db_fixtures import db_pool as db_pool
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import pg_dsn as pg_dsn

CAP = 1_000
PER_SOURCE = 20
SOURCES = 200
PUSHES = 5_000
SETTINGS = GatewaySettings(
    refused=Bounds(max_rows=CAP, keep_days=30, per_source_per_minute=PER_SOURCE)
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running() -> AsyncIterator[RunningSimulator]:
    config = SimConfig(push_base=None, confirm_timeout_s=None, courier_step_s=None, seed=11)
    async with serve_simulator(config) as served:
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(
    dev_server: WorkflowEnvironment, running: RunningSimulator, db_pool: asyncpg.Pool
) -> AsyncIterator[Starlette]:
    async with running.client() as meituan:
        yield create_app(dev_server.client, db_pool, SETTINGS, meituan=meituan)


def from_address(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def order_fields(order: OrderPush, secret: str) -> dict[str, str]:
    return encode_order_push(
        order,
        url=SETTINGS.push_url(PushKind.ORDER),
        app_id=SETTINGS.app_id,
        secret=secret,
        empty_discount=True,
    )


async def test_a_flood_of_bad_signatures_stays_within_bounds(
    app: Starlette, running: RunningSimulator, db_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    forged = order_fields(running.sim.create_order({}, push=False).current(), "not-the-secret")
    answers: Counter[int] = Counter()

    async def flood(source: int) -> None:
        async with from_address(app, f"198.51.{source // 250}.{source % 250}") as http:
            for _ in range(PUSHES // SOURCES):
                response = await http.post("/meituan/push/order", data=forged)
                answers[response.json()["error"]["code"]] += 1

    async def good_push_meanwhile() -> httpx.Response:
        await asyncio.sleep(0.5)
        order = running.sim.create_order({"app_poi_code": "SH-XH-001"}, push=False).current()
        async with from_address(app, "203.0.113.7") as http:
            return await http.post(
                "/meituan/push/order", data=order_fields(order, SETTINGS.app_secret)
            )

    began = time.monotonic()
    *_, good = await asyncio.gather(*(flood(s) for s in range(SOURCES)), good_push_meanwhile())
    seconds = time.monotonic() - began
    await app.state.gateway.keeper.flush()  # the counts of the last second

    assert answers == {703: PUSHES}
    assert good.json() == {"data": "ok"}, good.text
    kept = await db_pool.fetch("SELECT * FROM rejected_pushes WHERE refused")
    assert 0 < len(kept) <= CAP
    assert all(row["raw_body"] == "" and row["body_sha256"] for row in kept)
    assert {row["body_sha256"] for row in kept} == {
        hashlib.sha256(httpx.Request("POST", "/", data=forged).read()).hexdigest()
    }
    # The per-source limit is a window of a clock minute: a run across a minute's end has two.
    windows = int(seconds // 60) + 2
    per_source = Counter(row["source"] for row in kept)
    assert max(per_source.values()) <= windows * PER_SOURCE
    counted = await db_pool.fetchrow(  # one day, or two across the business day's end
        "SELECT sum(refused) AS refused, sum(not_kept) AS not_kept FROM refused_push_counts"
        " WHERE cause = 'bad_signature'"
    )
    assert counted["refused"] == PUSHES
    kept_at_some_point = PUSHES - counted["not_kept"]
    assert SOURCES * PER_SOURCE <= kept_at_some_point <= windows * SOURCES * PER_SOURCE
    assert kept_at_some_point > CAP  # so the cap, not the rate, is what held the table

    # What was refused stays visible to a person, kept or not.
    database = await db_pool.fetchval("SELECT current_database()")
    env = {**os.environ, "DATABASE_URL": db.with_database(pg_dsn, database)}
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "starter.cli", "pushes", "--counts", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert {row["cause"] for row in shown} == {"bad_signature"}
    assert sum(row["refused"] for row in shown) == PUSHES
    assert sum(row["not_kept"] for row in shown) == counted["not_kept"]
