"""A real PostgreSQL for the database tests, and orders to put in it.

One server per session: `DATABASE_URL` when set, else a throwaway embedded server (pgserver)
in a temporary folder, stopped at the end of the session. Each test module gets its own fresh
database with the migrations applied, so modules never see each other's rows.

Import the fixtures explicitly: `from tests.db_fixtures import db_pool as db_pool`.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from activities.assignment import Assignment
from infra import database as db
from schemas.order import Customer, Discount, OrderItem, PlatformOrder
from schemas.records import OrderRecord
from schemas.resources import Assignee, AssignInput
from starter.db_cli import DEMO_FILE, load_demo

# A customer 1.4 km from the Xuhui kitchen (8 km from Pudong), 3.6 km from the home service;
# another 0.7 km from the Pudong kitchen.
NEAR_XUHUI = (31.2000, 121.4480)
NEAR_PUDONG = (31.2350, 121.5200)
# The demo price list: orders are priced from it, so they pass the price review by default.
CATALOGUE = {c["sku"]: c for c in json.loads(DEMO_FILE.read_text(encoding="utf-8"))["catalogue"]}


class _Shared:
    """One server for the session although every importing module registers the fixtures anew
    (pytest keeps a session fixture per module that imports it)."""

    root: Path | None = None
    dsn: str | None = None
    users = 0


def reachable_folder(prefix: str) -> Path:
    """A throwaway folder that the embedded server's own OS user (`pgserver`) can reach,
    removed when the session's process exits.

    Not under pytest's temporary root: that root is private (0700), and every pytest session
    started on the machine makes it private again, which cut a running session's PostgreSQL
    off its data folder ("could not open file global/pg_control: Permission denied") when two
    suites ran side by side."""
    folder = Path(tempfile.mkdtemp(prefix=f"orderflow-{prefix}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def embedded_root() -> Path:
    """The `ORDERFLOW_DATA_DIR` of the session's embedded server."""
    if _Shared.root is None:
        _Shared.root = reachable_folder("test-data")
    return _Shared.root


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_dsn(embedded_root: Path) -> AsyncIterator[str]:
    """DSN of the session's server (its `postgres` database)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield url
        return
    folder = embedded_root / "pg"
    if _Shared.dsn is None:
        _Shared.dsn = await asyncio.to_thread(db.start_embedded, folder)
    _Shared.users += 1
    try:
        yield _Shared.dsn
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            await asyncio.to_thread(db.stop_embedded, folder)
            _Shared.dsn = None


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db_pool(pg_dsn: str, request: pytest.FixtureRequest) -> AsyncIterator[asyncpg.Pool]:
    """A fresh, migrated database for one test module."""
    module = request.module.__name__.rsplit(".", 1)[-1].lower()[:40]
    name = f"t_{module}_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    pool = await db.connect(db.with_database(pg_dsn, name), max_size=20)
    try:
        await db.migrate(pool)
        yield pool
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def demo_pool(db_pool: asyncpg.Pool) -> asyncpg.Pool:
    """The module's database with the demo company loaded."""
    await load_demo(db_pool)
    return db_pool


async def as_role(pool: asyncpg.Pool, pg_dsn: str, role: str) -> asyncpg.Pool:
    """A pool on the database of `pool` whose every connection acts as `role` (a group role of
    the migrations: what a login granted it may do)."""
    database = await pool.fetchval("SELECT current_database()")

    async def init(conn: asyncpg.Connection) -> None:
        for type_name in ("jsonb", "json"):
            await conn.set_type_codec(
                type_name, encoder=db.json_dumps, decoder=json.loads, schema="pg_catalog"
            )

    async def setup(conn: Any) -> None:
        await conn.execute(f"SET ROLE {role}")

    made = await asyncpg.create_pool(
        db.with_database(pg_dsn, database), min_size=1, max_size=2, init=init, setup=setup
    )
    assert made is not None
    return made


def order_id() -> str:
    return str(uuid.uuid4().int % 10**17)


def make_order(
    items: Sequence[tuple[str, int]] = (("G-HSR", 1), ("G-CKW", 2)),
    *,
    oid: str | None = None,
    store: str = "SH-XH-001",
    name: str = "陆(先生)",
    phone: str = "13812345678_1234",
    address: str = "上海市徐汇区天钥桥路100号",
    at: tuple[float, float] | None = NEAR_XUHUI,
    created_at: datetime | None = None,
    shipping: str = "5.00",
    package: str = "0",
    discounts: Sequence[Discount] = (),
    total: Decimal | None = None,
    pickup: bool = False,
    platform_delivery: bool = False,
    price_overrides: dict[str, str] | None = None,
) -> PlatformOrder:
    """An order priced from the demo price list, whose total adds up unless `total` is given."""
    lines = []
    for sku, quantity in items:
        entry = CATALOGUE.get(sku, {"name": sku, "price": "10.00", "box_price": "0.00"})
        title, box = entry["name"], entry["box_price"]
        price = (price_overrides or {}).get(sku, entry["price"])
        lines.append(
            OrderItem(
                sku=sku,
                name=title,
                quantity=quantity,
                unit_price=Decimal(price),
                box_num=quantity if Decimal(box) else 0,
                box_price=Decimal(box),
            )
        )
    expected = (
        sum((i.unit_price * i.quantity + i.box_price * i.box_num for i in lines), Decimal("0"))
        + Decimal(shipping)
        + Decimal(package)
        - sum((d.amount for d in discounts), Decimal("0"))
    )
    return PlatformOrder(
        order_id=oid or order_id(),
        store_code=store,
        customer=Customer(
            name=name,
            phone=phone,
            address=address,
            latitude=at[0] if at else None,
            longitude=at[1] if at else None,
        ),
        items=lines,
        discounts=list(discounts),
        shipping_fee=Decimal(shipping),
        package_fee=Decimal(package),
        total=total if total is not None else expected,
        created_at=created_at or datetime.now(UTC),
        pickup=pickup,
        platform_delivery=platform_delivery,
    )


async def assign_recorded(
    pool: asyncpg.Pool, order: PlatformOrder, record: OrderRecord
) -> Assignee:
    """A recorded order claimed by the best fit, whoever is on shift."""
    return await Assignment(pool, shifts="ignore").assign_order(
        AssignInput(
            order_id=order.order_id,
            order_type=record.order_type,
            store_code=order.store_code,
            region=record.region,
            skills=record.skills,
        )
    )
