"""Migration 0010: customer profiles re-keyed from the relay number to the whole privacy number.

Each test's database is made as the code before the migration made it: migrated up to 0009, and
the real activities record orders, credit events and notices with the old customer id (the
relay number's hash) patched in. The salt is not the default one: the ids come out right only
if the migration computes with the salt the runner hands it.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from activities import orders
from activities.credit import Credit
from activities.orders import OrderRecords
from activities.review import Review
from activities.rules import customer_id_for, customer_key, real_phone
from infra import database as db
from infra.settings import settings
from schemas.order import OrderType
from schemas.records import CreditEvent, CreditEventKind, RecordOrder
from schemas.review import ReviewInput
from starter.db_cli import load_demo
from tests.db_fixtures import embedded_root as embedded_root
from tests.db_fixtures import make_order
from tests.db_fixtures import pg_dsn as pg_dsn

REKEY = "0010_customer_key"
SALT = "test-salt"
SETTINGS = {**db.migration_settings(), "orderflow.customer_salt": SALT}
T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
FRAUD, CANCELLATION, COMPLETED = (
    CreditEventKind.FRAUD,
    CreditEventKind.CANCELLATION,
    CreditEventKind.COMPLETED,
)


def old_id(phone: str) -> str:
    """The id the code before migration 0010 gave: the hash of the relay number alone."""
    return "c-" + hashlib.sha256(f"{SALT}:{real_phone(phone)}".encode()).hexdigest()[:20]


def new_id(phone: str) -> str:
    """The id migration 0010 gave: the salted hash of the whole privacy number."""
    return "c-" + hashlib.sha256(f"{SALT}:{customer_key(phone)}".encode()).hexdigest()[:20]


def current_id(phone: str) -> str:
    """The id of today's code, after migration 0020 re-keyed the profiles under the key."""
    return customer_id_for(phone, settings().business.customer_key)


@dataclass
class OldDatabase:
    pool: asyncpg.Pool
    folder: Path  # the migrations the database has seen
    old_code: pytest.MonkeyPatch  # the old customer key, until `new_code`
    keyed: bool = False  # every later migration applied: ids are today's (0020)

    def new_code(self) -> None:
        self.old_code.undo()

    async def order(self, phone: str, minute: int, name: str = "陆(先生)") -> str:
        order = make_order(phone=phone, name=name, created_at=T0 + timedelta(minutes=minute))
        await OrderRecords(self.pool).record_order(
            RecordOrder(order=order, received_at=order.created_at, source="push")
        )
        return order.order_id

    async def credit(self, order_id: str, kind: CreditEventKind, customer: str = "") -> None:
        customer = customer or await self.customer_of(order_id)
        await Credit(self.pool).record_credit_event(
            CreditEvent(customer_id=customer, order_id=order_id, kind=kind)
        )

    async def notify_customer(self, order_id: str) -> None:
        """As the notifier of the time wrote it: addressed to the order's customer id."""
        await self.pool.execute(
            """
            INSERT INTO notifications (key, order_id, audience, recipient, store_code, subject,
                                       text, channel, sent_at)
            SELECT $1, order_id, 'customer', customer_id, 'SH-XH-001', 'Delivered', 'Enjoy!',
                   'recorded', now()
            FROM orders WHERE order_id = $2
            """,
            f"{order_id}-delivered",
            order_id,
        )

    async def customer_of(self, order_id: str) -> str:
        found = await self.pool.fetchval(
            "SELECT customer_id FROM orders WHERE order_id = $1", order_id
        )
        return str(found)

    async def profile(self, customer_id: str) -> dict[str, Any] | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM customers WHERE customer_id = $1", customer_id
        )
        return dict(row) if row else None

    async def standing(self, phone: str) -> tuple[int, str] | None:
        profile = await self.profile(current_id(phone) if self.keyed else new_id(phone))
        return (profile["credit_score"], profile["status"]) if profile else None

    async def migrate(self, settings: dict[str, str] | None = None) -> list[str]:
        shutil.copy(db.MIGRATIONS_DIR / f"{REKEY}.sql", self.folder)
        return await db.migrate(self.pool, self.folder, settings=settings or SETTINGS)

    async def up_to_date(self) -> None:
        """Every later migration too: what the code of today runs on."""
        for path in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
            shutil.copy(path, self.folder / path.name)
        await db.migrate(self.pool, self.folder, settings=SETTINGS)
        self.keyed = True

    async def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        queries = {
            "customers": "SELECT * FROM customers ORDER BY customer_id",
            "orders": "SELECT order_id, customer_id FROM orders ORDER BY order_id",
            "credit_events": "SELECT order_id, kind, customer_id FROM credit_events ORDER BY 1, 2",
            "notifications": "SELECT key, recipient FROM notifications ORDER BY key",
        }
        return {
            table: [tuple(r) for r in await self.pool.fetch(sql)] for table, sql in queries.items()
        }


async def _no_store_terms(conn: object, store_code: str) -> dict[str, Any]:
    return {}


@pytest_asyncio.fixture
async def old(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[OldDatabase]:
    for path in sorted(db.MIGRATIONS_DIR.glob("*.sql")):
        if path.stem < REKEY:
            shutil.copy(path, tmp_path / path.name)
    name = f"t_rekey_{uuid.uuid4().hex[:8]}"
    await db.ensure_database(pg_dsn, name)
    pool = await db.connect(db.with_database(pg_dsn, name), max_size=4)
    try:
        await db.migrate(pool, tmp_path, settings=SETTINGS)
        await load_demo(pool)
        monkeypatch.setenv("ORDERFLOW_CUSTOMER_SALT", SALT)
        settings.cache_clear()
        with monkeypatch.context() as old_code:
            old_code.setattr(orders, "customer_id_for", lambda phone, salt: old_id(phone))
            monkeypatch.setattr(orders, "_store_terms", _no_store_terms)  # before 0018
            yield OldDatabase(pool, tmp_path, old_code)
    finally:
        await pool.close()
        await db.drop_database(pg_dsn, name)


# --- scenarios: an old database's profiles, and what the migration makes of them ----------------


async def three_behind_one_relay(old: OldDatabase) -> None:
    a, b, c = "13812340000_1111", "+86 138 1234 0000_2222", "(13812340000_3333)"
    a1 = await old.order(a, 0, name="陆先生")
    b1 = await old.order(b, 10)
    await old.order(c, 20)
    a2 = await old.order(a, 60, name="陆(先生)")
    b2 = await old.order(b, 70)
    # One shared profile: 100 -> 100 (at the maximum) -> 50 -> 45 -> 47.
    await old.credit(a1, COMPLETED)
    await old.credit(b1, FRAUD)
    await old.credit(a2, CANCELLATION)
    await old.credit(b2, COMPLETED)
    await old.notify_customer(a1)
    shared = await old.profile(old_id(a))
    assert shared is not None and (shared["credit_score"], shared["status"]) == (47, "restricted")


async def check_three_behind_one_relay(old: OldDatabase) -> None:
    a, b, c = "13812340000_1111", "+86 138 1234 0000_2222", "(13812340000_3333)"
    assert await old.profile(old_id(a)) is None
    assert await old.standing(a) == (95, "good")  # 100 + 0 - 5
    assert await old.standing(b) == (52, "restricted")  # 100 - 50 + 2
    assert await old.standing(c) == (100, "good")
    first_a = await old.profile(new_id(a))
    assert first_a is not None
    assert (first_a["name"], first_a["phone"]) == ("陆(先生)", "13812340000")  # its latest order
    assert (first_a["first_seen_at"], first_a["last_order_at"]) == (T0, T0 + timedelta(hours=1))
    assert await old.pool.fetchval("SELECT recipient FROM notifications") == new_id(a)
    first_b = await old.profile(new_id(b))
    assert first_b is not None and first_b["phone"] == "+86 138 1234 0000"  # as recorded
    assert first_b["first_seen_at"] == T0 + timedelta(minutes=10)


async def two_behind_a_banned_relay(old: OldDatabase) -> None:
    await old.order("13912340000_1111", 0)
    await old.order("13912340000_2222", 5)
    await old.pool.execute(  # a manager's ban: the score is nowhere near the threshold
        "UPDATE customers SET status = 'banned' WHERE customer_id = $1",
        old_id("13912340000_1111"),
    )


async def check_two_behind_a_banned_relay(old: OldDatabase) -> None:
    assert await old.standing("13912340000_1111") == (100, "banned")
    assert await old.standing("13912340000_2222") == (100, "banned")


async def a_fraud_on_a_spent_score(old: OldDatabase) -> None:
    x1 = await old.order("13712340000_1111", 0)
    x2 = await old.order("13712340000_1111", 30)
    y1 = await old.order("13712340000_2222", 60)
    await old.credit(x1, FRAUD)  # 100 -> 50
    await old.credit(x2, FRAUD)  # 50 -> 0
    await old.credit(y1, FRAUD)  # 0 -> 0: the shared score moved by nothing


async def check_a_fraud_on_a_spent_score(old: OldDatabase) -> None:
    assert await old.standing("13712340000_1111") == (0, "banned")
    # Its own fraud in full, not the nothing it moved the spent shared score by.
    assert await old.standing("13712340000_2222") == (50, "restricted")


async def one_behind_its_relay(old: OldDatabase) -> dict[str, Any]:
    r1 = await old.order("13612340000_5555", 0, name="许女士")
    await old.order("13612340000_5555", 40)
    await old.credit(r1, FRAUD)
    profile = await old.profile(old_id("13612340000_5555"))
    assert profile is not None
    return profile


async def check_one_behind_its_relay(old: OldDatabase, before: dict[str, Any]) -> None:
    after = await old.profile(new_id("13612340000_5555"))
    assert after is not None and await old.profile(before["customer_id"]) is None
    kept = ("name", "phone", "credit_score", "status", "first_seen_at", "last_order_at")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}


async def what_the_old_profile_still_holds(old: OldDatabase) -> str:
    """The relay number as a plain number, and a credit event of an order never recorded."""
    await old.order("13512340000", 0)
    q2 = await old.order("13512340000_1111", 10)
    await old.credit(q2, FRAUD)
    await old.order("13412340000_1111", 0)
    await old.order("13412340000_2222", 10)
    await old.credit("never-recorded", COMPLETED, customer=old_id("13412340000_1111"))
    await old.credit("never-recorded", FRAUD, customer=old_id("13412340000_1111"))
    return old_id("13412340000_1111")


async def check_what_the_old_profile_still_holds(old: OldDatabase, orphaned: str) -> None:
    assert old_id("13512340000") == new_id("13512340000")  # a plain number keeps its id
    assert await old.standing("13512340000") == (100, "good")  # its own: no fraud
    assert await old.standing("13512340000_1111") == (50, "restricted")
    # The profile keeps what it still holds, as it was; its orders went to their customers.
    kept = await old.profile(orphaned)
    assert kept is not None and (kept["credit_score"], kept["status"]) == (50, "restricted")
    held = await old.pool.fetch(
        "SELECT DISTINCT customer_id FROM credit_events WHERE order_id = 'never-recorded'"
    )
    assert [r["customer_id"] for r in held] == [orphaned]
    assert await old.standing("13412340000_2222") == (100, "good")


async def each_row_follows_its_order(old: OldDatabase) -> None:
    rows = await old.pool.fetch("SELECT order_id, customer_id, customer_phone FROM orders")
    assert rows and all(r["customer_id"] == new_id(r["customer_phone"]) for r in rows)
    strays = await old.pool.fetchval(
        """
        SELECT count(*) FROM credit_events e JOIN orders o USING (order_id)
        WHERE e.customer_id <> o.customer_id
        """
    )
    assert strays == 0
    notices = await old.pool.fetch(
        """
        SELECT n.recipient, o.customer_id FROM notifications n JOIN orders o USING (order_id)
        WHERE n.audience = 'customer'
        """
    )
    assert all(n["recipient"] == n["customer_id"] for n in notices)


# --- the tests -----------------------------------------------------------------------------------


async def test_customers_behind_one_relay_number_get_a_profile_each(old: OldDatabase) -> None:
    """R5.3.3 each with its own credit: the other's fraud is no longer theirs."""
    await three_behind_one_relay(old)
    assert await old.migrate() == [REKEY]
    await check_three_behind_one_relay(old)
    await each_row_follows_its_order(old)


async def test_a_manual_ban_is_inherited_by_every_split_profile(old: OldDatabase) -> None:
    await two_behind_a_banned_relay(old)
    await old.migrate()
    await check_two_behind_a_banned_relay(old)


async def test_a_penalty_the_shared_score_could_not_take_counts_in_full(
    old: OldDatabase,
) -> None:
    await a_fraud_on_a_spent_score(old)
    await old.migrate()
    await check_a_fraud_on_a_spent_score(old)


async def test_a_profile_of_one_customer_is_renamed_as_it_is(old: OldDatabase) -> None:
    before = await one_behind_its_relay(old)
    plain = await old.order("+86 135 0000 1234", 0)
    await old.credit(plain, COMPLETED)
    untouched = await old.profile(await old.customer_of(plain))
    await old.migrate()
    await check_one_behind_its_relay(old, before)
    assert await old.profile(await old.customer_of(plain)) == untouched
    await each_row_follows_its_order(old)


async def test_an_old_profile_keeps_what_is_still_its_own(old: OldDatabase) -> None:
    orphaned = await what_the_old_profile_still_holds(old)
    await old.migrate()
    await check_what_the_old_profile_still_holds(old, orphaned)


async def test_run_again_the_migration_changes_nothing(old: OldDatabase) -> None:
    await three_behind_one_relay(old)
    await two_behind_a_banned_relay(old)
    await a_fraud_on_a_spent_score(old)
    before = await one_behind_its_relay(old)
    orphaned = await what_the_old_profile_still_holds(old)
    assert await old.migrate() == [REKEY]
    migrated = await old.snapshot()
    await old.pool.execute("DELETE FROM schema_migrations WHERE version = $1", REKEY)
    assert await old.migrate() == [REKEY]
    assert await old.snapshot() == migrated
    assert await old.migrate() == []  # and the runner applies it once
    await check_three_behind_one_relay(old)
    await check_two_behind_a_banned_relay(old)
    await check_a_fraud_on_a_spent_score(old)
    await check_one_behind_its_relay(old, before)
    await check_what_the_old_profile_still_holds(old, orphaned)
    await each_row_follows_its_order(old)


async def test_an_empty_database_needs_no_settings(old: OldDatabase) -> None:
    assert await old.migrate(settings={"orderflow.unrelated": "x"}) == [REKEY]


async def test_a_wrong_salt_stops_it_and_changes_nothing(old: OldDatabase) -> None:
    await three_behind_one_relay(old)
    before = await old.snapshot()
    for given in ({**SETTINGS, "orderflow.customer_salt": "orderflow"}, {"orderflow.x": "x"}):
        with pytest.raises(asyncpg.RaiseError, match="the salt explains none"):
            await old.migrate(given)
    assert await old.snapshot() == before
    assert not await old.pool.fetchval(
        "SELECT count(*) FROM schema_migrations WHERE version = $1", REKEY
    )


async def test_profiles_under_the_new_key_stop_it(old: OldDatabase) -> None:
    await three_behind_one_relay(old)
    await old.pool.execute(
        "INSERT INTO customers (customer_id) VALUES ($1)", new_id("13812340000_1111")
    )
    before = await old.snapshot()
    with pytest.raises(asyncpg.RaiseError, match="under the new key exist"):
        await old.migrate()
    assert await old.snapshot() == before


async def test_orders_in_flight_reach_the_re_keyed_profiles(old: OldDatabase) -> None:
    """An order recorded before the migration carries the old customer id in its workflow;
    its credit and its review go to the profile its record names now (R5.3.3)."""
    await three_behind_one_relay(old)
    b3 = await old.order("13812340000_2222", 80)
    await two_behind_a_banned_relay(old)
    d2 = await old.order("13912340000_1111", 90)
    await old.migrate()
    await old.up_to_date()
    old.new_code()
    await Credit(old.pool).record_credit_event(
        CreditEvent(customer_id=old_id("13812340000_2222"), order_id=b3, kind=FRAUD)
    )
    assert await old.standing("13812340000_2222") == (2, "banned")  # 52 - 50
    assert await old.profile(old_id("13812340000_2222")) is None  # no profile under the old id
    order = make_order(oid=d2, phone="13912340000_1111", created_at=T0 + timedelta(minutes=90))
    stale = ReviewInput(
        order=order, order_type=OrderType.GOODS, customer_id=old_id("13912340000_1111")
    )
    verdict = await Review(old.pool).review_order(stale)
    assert [f.rule for f in verdict.failures] == ["customer_not_banned"]
    fresh = await OrderRecords(old.pool).record_order(
        RecordOrder(order=make_order(phone="13812340000_1111"), received_at=T0, source="push")
    )
    assert fresh.customer_id == current_id("13812340000_1111")
    assert await old.standing("13812340000_1111") == (95, "good")
